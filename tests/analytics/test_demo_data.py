"""``flask demo-data`` fills a workspace with realistic enrollments."""

from __future__ import annotations

from sqlalchemy import func, select

from autoseq.commands.demo import FAILURES
from autoseq.extensions import db
from autoseq.models import Enrollment, HubSpotConnection, Mailbox, Rotation, Sequence, Workspace


def demo_of(workspace) -> Workspace:
    return db.session.scalar(
        select(Workspace).where(Workspace.is_demo, Workspace.id != workspace.id)
    )


def test_demo_data_inserts_enrollments_and_their_senders(runner, workspace):
    result = runner.invoke(
        args=["demo-data", "--workspace", str(workspace.id), "--count", "1500", "--days", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "Inserted 1,500 enrollments into the demo workspace" in result.output
    demo = demo_of(workspace)
    assert demo.name == f"Demo: {workspace.name}" and not workspace.is_demo
    assert {m.user_id for m in demo.memberships} == {m.user_id for m in workspace.memberships}
    count = db.session.scalar(
        select(func.count()).select_from(Enrollment).filter_by(workspace_id=demo.id)
    )
    assert count == 1500
    for model in (Enrollment, Mailbox, Rotation, Sequence):  # the user's own workspace untouched
        assert not db.session.scalar(
            select(func.count()).select_from(model).filter_by(workspace_id=workspace.id)
        )
    assert "queued" not in set(db.session.scalars(select(Enrollment.status).distinct()))
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


def test_demo_data_is_refused_for_a_workspace_connected_to_real_hubspot(app, runner, workspace):
    db.session.add(
        HubSpotConnection(workspace_id=workspace.id, portal_id=123456, status="connected")
    )
    db.session.commit()
    app.config["HUBSPOT_API_BASE"] = "https://api.hubapi.com"
    result = runner.invoke(args=["demo-data", "--workspace", str(workspace.id), "--count", "10"])
    assert result.exit_code != 0
    assert "connected to HubSpot portal 123456, not the sandbox" in result.output
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 0


def test_a_configuration_error_is_one_readable_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSEQ_", "SECRET_KEY"))}
    env.update(AUTOSEQ_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    env.pop("SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "demo-data", "--count", "1"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "AutoSeq configuration error:" in done.stderr and "Traceback" not in done.stderr


def test_demo_data_twice_reuses_sequences_and_adds_rows(runner, workspace):
    args = ["demo-data", "--workspace", str(workspace.id), "--count", "100", "--seed", "3"]
    assert runner.invoke(args=args).exit_code == 0
    assert runner.invoke(args=args).exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 200
    assert db.session.scalar(select(func.count()).select_from(Sequence)) == 12
