"""``flask demo-data`` fills a workspace with realistic enrollments."""

from __future__ import annotations

from sqlalchemy import func, select

from autoseq.commands.demo import FAILURES
from autoseq.extensions import db
from autoseq.models import Enrollment, Mailbox, Rotation, Sequence


def test_demo_data_inserts_enrollments_and_their_senders(runner, workspace):
    result = runner.invoke(
        args=["demo-data", "--workspace", str(workspace.id), "--count", "1500", "--days", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "Inserted 1,500 enrollments" in result.output
    count = db.session.scalar(
        select(func.count()).select_from(Enrollment).filter_by(workspace_id=workspace.id)
    )
    assert count == 1500
    assert db.session.scalar(select(func.count()).select_from(Sequence)) == 12
    assert (
        db.session.scalar(
            select(func.count()).select_from(Sequence).where(Sequence.removed_at.is_not(None))
        )
        == 2
    )
    assert db.session.scalar(select(func.count()).select_from(Mailbox)) == 8
    assert db.session.scalar(select(func.count()).select_from(Rotation)) == 3
    codes = set(db.session.scalars(select(Enrollment.failure_code).distinct()))
    assert codes - {None} <= {code for code, _, _ in FAILURES}
    assert len(codes - {None}) >= 5
    statuses = dict(
        db.session.execute(
            select(Enrollment.status, func.count()).group_by(Enrollment.status)
        ).all()
    )
    assert statuses["enrolled"] > statuses["failed"] > 0
    oldest = db.session.scalar(select(func.min(Enrollment.created_at)))
    newest = db.session.scalar(select(func.max(Enrollment.created_at)))
    assert 25 <= (newest - oldest).days <= 30


def test_demo_data_refuses_an_unknown_workspace(runner, workspace):
    result = runner.invoke(args=["demo-data", "--workspace", "999999", "--count", "10"])
    assert result.exit_code != 0
    assert "no workspace with id 999999" in result.output


def test_demo_data_twice_reuses_sequences_and_adds_rows(runner, workspace):
    args = ["demo-data", "--workspace", str(workspace.id), "--count", "100", "--seed", "3"]
    assert runner.invoke(args=args).exit_code == 0
    assert runner.invoke(args=args).exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 200
    assert db.session.scalar(select(func.count()).select_from(Sequence)) == 12
