"""The analytics page's figures from the rollups, compared with counts computed here from the rows.

Rows arrive every way the product writes them: ORM inserts (the hook), a bulk demo fill (then a
rebuild), late finishes, a retried failure that succeeds, a changed failure code, a deleted row, a
deleted mailbox; and the workspace changes its time zone (a half-hour and a quarter-hour zone).
Runs on SQLite and on PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from autoseq.commands.demo import generate
from autoseq.extensions import db
from autoseq.models import Enrollment, EnrollmentRollup
from autoseq.services import analytics
from autoseq.services.analytics import Filters, rollup_reads, rollups

ZONES = ("America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
# What the page has always counted each state as (a contact already in a sequence: not enrolled).
COUNTED_AS = {
    "queued": "queued",
    "enrolled": "enrolled",
    "already_enrolled": "failed",
    "failed": "failed",
}


def _rows(workspace_id):
    return db.session.execute(
        select(
            Enrollment.created_at,
            Enrollment.status,
            Enrollment.failure_code,
            Enrollment.sequence_id,
            Enrollment.sequence_name,
            Enrollment.workflow_id,
            Enrollment.mailbox_id,
            Enrollment.rotation_id,
        ).where(Enrollment.workspace_id == workspace_id)
    ).all()


def _matches(r, f: Filters) -> bool:
    wanted = (
        (f.sequence_id, r.sequence_id),
        (f.workflow_id, r.workflow_id),
        (f.mailbox_id, r.mailbox_id),
        (f.rotation_id, r.rotation_id),
        (f.status, COUNTED_AS[r.status]),
        (f.reason, r.failure_code),
    )
    return all(want is None or want == have for want, have in wanted)


def _add(slot, r):
    slot[0] += 1
    slot[1] += r.status == "enrolled"
    slot[2] += COUNTED_AS[r.status] == "failed"


def expected(rows, f: Filters) -> dict:
    """Every figure of the page, counted from the rows in Python."""
    days = {f.start_date + timedelta(days=i): [0, 0, 0] for i in range(f.days)}
    previous, groups = [0, 0, 0], defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for r in rows:
        if not _matches(r, f):
            continue
        local = r.created_at.astimezone(f.tz).date()
        if f.previous_start_date <= local <= f.previous_end_date:
            _add(previous, r)
        if local not in days:
            continue
        _add(days[local], r)
        _add(groups["sequence"][(r.sequence_id, r.sequence_name or "(unnamed sequence)")], r)
        _add(groups["workflow"][r.workflow_id], r)
        _add(groups["mailbox"][r.mailbox_id], r)
        _add(groups["rotation"][r.rotation_id], r)
        if COUNTED_AS[r.status] == "failed":
            _add(groups["reason"][r.failure_code], r)
    return {
        "days": [(d, tuple(c)) for d, c in days.items()],
        "current": tuple(map(sum, zip(*days.values(), strict=True))) if days else (0, 0, 0),
        "previous": tuple(previous),
        **{name: [(k, tuple(c)) for k, c in g.items()] for name, g in groups.items()},
    }


def _c(counts):
    return counts.total, counts.succeeded, counts.failed


def shown(report) -> dict:
    """The same figures as the page's report has them."""
    return {
        "days": [(d.day, _c(d.counts)) for d in report.days],
        "current": _c(report.current),
        "previous": _c(report.previous),
        "sequence": [((r.key, r.label), _c(r.counts)) for r in report.sequences],
        "workflow": [(r.key, _c(r.counts)) for r in report.workflows],
        "mailbox": [(r.key, _c(r.counts)) for r in report.mailboxes],
        "rotation": [(r.key, _c(r.counts)) for r in report.rotations],
        "reason": [(r.key, _c(r.counts)) for r in report.reasons],
    }


def _compare(workspace, args: dict):
    filters = Filters.parse(args, workspace)
    assert filters.ok, filters.errors
    report = analytics.report(filters)
    got = shown(report)
    want = expected(_rows(workspace.id), filters)
    for name in ("sequence", "workflow", "mailbox", "rotation", "reason"):
        got[name] = sorted(got[name], key=repr)
        want[name] = sorted(want.get(name, []), key=repr)
    assert got == want, args
    return filters, report


@pytest.fixture
def busy(workspace, make_sequence, make_mailbox, make_rotation, make_enrollment):
    """A workspace with rows from a bulk fill (rebuilt) and from the ORM, some still queued."""
    seqs = [make_sequence(workspace, n) for n in ("Alpha", "Beta")]
    boxes = [make_mailbox(workspace) for _ in range(3)]
    rotation = make_rotation(workspace)
    generate(workspace.id, days=70, count=400, sequences=4, workflows=3, mailboxes=3, seed=5)
    rng = random.Random(17)
    now = datetime.now(UTC)
    rows = []
    for _ in range(250):
        status = rng.choice(
            ["enrolled"] * 5 + ["failed"] * 3 + ["queued"] * 2 + ["already_enrolled"]
        )
        extra = (
            {"failure_code": rng.choice(["BOUNCED", "UNSUBSCRIBED"])} if status == "failed" else {}
        )
        rows.append(
            make_enrollment(
                workspace,
                # on the quarter hours and near local midnights too
                created_at=now
                - timedelta(minutes=15 * rng.randint(1, 70 * 96), seconds=rng.choice((0, 1, 899))),
                sequence=rng.choice(seqs),
                status=status,
                workflow_id=rng.choice(["101", "202", None]),
                mailbox_id=rng.choice(boxes).id,
                rotation_id=rng.choice([None, rotation.id]),
                commit=False,
                **extra,
            )
        )
    db.session.commit()
    return {"seqs": seqs, "boxes": boxes, "rotation": rotation, "rows": rows}


def _combos(busy):
    seq, box, rotation = busy["seqs"][0].id, busy["boxes"][0].id, busy["rotation"].id
    return [
        {},
        {"period": "7"},
        {"period": "90"},
        {"status": "failed"},
        {"status": "queued"},
        {"status": "enrolled", "period": "90"},
        {"reason": "BOUNCED"},
        {"sequence": seq},
        {"sequence": seq, "status": "failed"},
        {"workflow": "101", "period": "90"},
        {"mailbox": box, "reason": "UNSUBSCRIBED"},
        {"rotation": rotation, "status": "enrolled"},
        {"sequence": seq, "mailbox": box},  # two entities: read from the rows
        {"period": "custom", "from": (datetime.now(UTC) - timedelta(days=50)).date().isoformat()},
    ]


def test_every_figure_matches_the_rows_across_changes(workspace, busy):
    rows = busy["rows"]
    # Late finishes, a retry that succeeds, a changed code, a deleted row.
    queued = [r for r in rows if r.status == "queued"]
    failed = [r for r in rows if r.status == "failed"]
    for row in queued[:10]:
        row.status, row.failure_code = "failed", "PERMISSION_DENIED"
    for row in queued[10:20]:
        row.status = "enrolled"
    failed[0].status, failed[0].failure_code = "enrolled", None
    skipped = [r for r in rows if r.status == "already_enrolled"]
    for row in queued[20:25]:  # HubSpot: already in a sequence
        row.status, row.failure_code = "already_enrolled", "ALREADY_ENROLLED"
    skipped[0].status, skipped[0].failure_code = "enrolled", None  # a wait that ended
    failed[3].status = "already_enrolled"
    failed[1].failure_code = "SEND_LIMIT_EXCEEDED"
    failed[2].sequence_name = "Renamed while failed"
    db.session.delete(rows[0])
    db.session.commit()
    # A row changed by an object that did not load it (the hook reads the old values itself).
    stale = db.session.get(Enrollment, queued[30].id)
    db.session.expire(stale)
    stale.status = "enrolled"
    db.session.commit()

    for zone in ZONES:
        workspace.timezone = zone
        db.session.commit()
        for args in _combos(busy):
            filters, _ = _compare(workspace, {k: str(v) for k, v in args.items()})
            # two entity filters, or a reason, read the rows; everything else the rollups
            rows_read = bool(filters.sequence_id and filters.mailbox_id) or bool(filters.reason)
            assert rollup_reads.serves(filters) is not rows_read, (zone, args)


def test_a_deleted_mailbox_and_the_rebuild_agree(workspace, busy):
    box = busy["boxes"][1]
    db.session.delete(box)
    db.session.commit()
    db.session.expire_all()
    for args in ({}, {"period": "90"}, {"rotation": str(busy["rotation"].id)}):
        _compare(workspace, args)

    def table():
        return sorted(
            tuple(r)
            for r in db.session.execute(
                select(EnrollmentRollup.__table__).where(
                    EnrollmentRollup.workspace_id == workspace.id,
                    (EnrollmentRollup.n_ok != 0) | (EnrollmentRollup.n_failed != 0),
                )
            )
        )

    kept = table()
    assert kept, "the hook wrote nothing"
    rollups.rebuild(workspace.id)
    rebuilt = table()
    if db.engine.dialect.name == "postgresql":  # the rows' mailbox became NULL, the kept keys not
        assert len(rebuilt) <= len(kept)
    else:
        assert rebuilt == kept


def test_a_rolled_back_change_leaves_the_rollups(workspace, busy):
    filters = Filters.parse({"period": "90"}, workspace)
    before = shown(analytics.report(filters))
    row = next(r for r in busy["rows"] if r.status == "queued" and r in db.session)
    row.status = "enrolled"
    db.session.flush()
    db.session.rollback()
    assert shown(analytics.report(filters)) == before


@pytest.mark.parametrize("state", ["queued", "enrolled", "already_enrolled", "failed"])
def test_each_state_counts_where_the_page_always_counted_it(workspace, make_enrollment, state):
    """One row per state: the headline, the status filter and a rebuild agree (already_enrolled
    among the failed, queued read live)."""
    for other in ("enrolled", "failed"):
        make_enrollment(workspace, status=other)
    row = make_enrollment(workspace, status=state)
    assert row.status == state
    counts = {}
    for status in ("", "queued", "enrolled", "failed"):
        report = analytics.report(Filters.parse({"status": status}, workspace))
        counts[status] = _c(report.current)
    ok, bad = 1 + (state == "enrolled"), 1 + (COUNTED_AS[state] == "failed")
    assert counts[""] == (3, ok, bad)
    assert counts["queued"] == (int(state == "queued"), 0, 0)
    assert counts["enrolled"] == (ok, ok, 0)
    assert counts["failed"] == (bad, 0, bad)

    def table():
        rows = db.session.execute(
            select(EnrollmentRollup.__table__).where(EnrollmentRollup.workspace_id == workspace.id)
        )
        return sorted(tuple(r) for r in rows)

    kept = table()
    rollups.rebuild(workspace.id)
    assert table() == [r for r in kept if r[-2] or r[-1]]
