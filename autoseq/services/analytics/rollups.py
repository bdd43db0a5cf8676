"""Rollups: the finished enrollments counted per UTC bucket, kept exact as rows change.

How they stay exact:

- **Time zones.** A row is counted in the 15-minute UTC bucket (and the UTC day) its ``created_at``
  falls in, never in a local day. Every real zone's midnight is on a 15-minute UTC boundary, so
  the page sums whole buckets into the workspace's local days *at read time*, in whatever zone
  the workspace has now: changing the zone changes nothing stored.
- **Late finishers.** A row counts here once it is finished (``n_ok``: enrolled; ``n_failed``:
  failed or already_enrolled, as the page has always counted a contact already in a sequence), in
  the bucket of its creation. :func:`record_outcome_change` applies the -1/+1 of a change in the
  same transaction as the row's change, so the rollups and the rows commit or roll back together;
  unfinished (queued) rows are few and are read live from the rows (a partial index).
- **Every writer.** A ``before_flush`` hook on the ORM session calls it for every Enrollment
  inserted, changed or deleted through the ORM, reading the old values from the database under
  the row's lock (``FOR UPDATE``), so a stale object cannot skew a count. A drain's outcomes
  (``services/enrollment/outcome.Outcomes``) skip the ORM: one guarded UPDATE of a batch's queued
  rows returns what it changed, and those rows' +1s are applied here in the same transaction.
  Bulk writers (COPY, Core inserts: ``flask demo-data``, the benchmarks) call :func:`rebuild`
  after writing.
- **Rebuilds** run under an exclusive per-workspace advisory lock that every change takes in shared
  mode (PostgreSQL), so a rebuild never interleaves with a change.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import event, func, insert, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ...extensions import db
from ...models import (
    FINISHED_STATUSES,
    STATUS_COUNTERS,
    Dim,
    Enrollment,
    EnrollmentRollup,
    EnrollmentStatus,
    RollupGrain,
)
from ...models.base import utcnow

QUARTER = timedelta(minutes=15)
FINISHED = FINISHED_STATUSES
# The two counters: n_ok (enrolled) and n_failed (failed, and already_enrolled: not enrolled).
OK, NOT_OK = STATUS_COUNTERS[EnrollmentStatus.ENROLLED], STATUS_COUNTERS[EnrollmentStatus.FAILED]
# The projections kept at each grain. 15-minute buckets for the no-entity and single-entity
# projections (the per-day chart, the previous period, the breakdown's edge days); UTC days for
# those and for the pairs (a breakdown by one entity while filtering by another).
ENTITY_DIMS = (Dim.SEQUENCE, Dim.WORKFLOW, Dim.MAILBOX, Dim.ROTATION)
SINGLES = (0, *ENTITY_DIMS, Dim.CODE)
# seq|wf, seq|mb, seq|rot, wf|mb, wf|rot, mb|rot, and each entity with the failure code
PAIRS = tuple(a | b for i, a in enumerate(ENTITY_DIMS) for b in (*ENTITY_DIMS[i + 1 :], Dim.CODE))
PROJECTIONS = {RollupGrain.QUARTER: SINGLES, RollupGrain.DAY: SINGLES + PAIRS}
_LOCK_SPACE = 7_014  # the advisory lock's first key: "analytics rollups"


class Fact(NamedTuple):
    """What a row contributes to the rollups: its key values and its status."""

    workspace_id: int
    created_at: datetime
    status: str
    failure_code: str | None
    sequence_id: int | None
    sequence_name: str | None
    workflow_id: str | None
    mailbox_id: int | None
    rotation_id: int | None

    @property
    def counted(self) -> bool:
        return self.status in FINISHED


TRACKED = Fact._fields


def quarter_of(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return instant.replace(minute=instant.minute - instant.minute % 15, second=0, microsecond=0)


def day_of(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# Each projection as plain values (grain, dims, then which key columns it keeps): IntFlag
# arithmetic per key was a tenth of the rollups' CPU in bench_action.py's profile.
_PLAN = tuple(
    (
        int(grain),
        int(dims),
        bool(dims & Dim.SEQUENCE),
        bool(dims & Dim.WORKFLOW),
        bool(dims & Dim.MAILBOX),
        bool(dims & Dim.ROTATION),
        bool(dims & Dim.CODE),
    )
    for grain, projections in PROJECTIONS.items()
    for dims in projections
)


def _keys(fact: Fact):
    """Every rollup key ``fact`` counts under (as :data:`KEY_COLUMNS`)."""
    buckets = {
        int(RollupGrain.QUARTER): quarter_of(fact.created_at),
        int(RollupGrain.DAY): day_of(fact.created_at),
    }
    code = fact.failure_code or ""
    sequence_id, sequence_name = fact.sequence_id or 0, fact.sequence_name or ""
    workflow_id, mailbox_id, rotation_id = (
        fact.workflow_id or "",
        fact.mailbox_id or 0,
        fact.rotation_id or 0,
    )
    for grain, dims, seq, wf, mb, rot, with_code in _PLAN:
        yield (
            grain,
            dims,
            buckets[grain],
            sequence_id if seq else 0,
            workflow_id if wf else "",
            mailbox_id if mb else 0,
            rotation_id if rot else 0,
            code if with_code else "",
            sequence_name if seq else "",
        )


KEY_COLUMNS = (
    "grain",
    "dims",
    "bucket",
    "sequence_id",
    "workflow_id",
    "mailbox_id",
    "rotation_id",
    "failure_code",
    "sequence_name",
)


def _deltas(changes: Iterable[tuple[Fact | None, Fact | None]]) -> dict[tuple, list[int]]:
    # A drain's batch is mostly alike (one workspace, sequence, mailbox, quarter): the facts are
    # folded first, and each distinct one expands into its keys once.
    folded: dict[Fact, int] = defaultdict(int)
    for old, new in changes:
        for fact, sign in ((old, -1), (new, +1)):
            if fact is not None and fact.counted:
                folded[fact._replace(created_at=quarter_of(fact.created_at))] += sign
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for fact, n in folded.items():
        if not n:
            continue
        slot = 0 if fact.status in OK else 1
        for key in _keys(fact):
            deltas[(fact.workspace_id, *key)][slot] += n
    return {k: v for k, v in deltas.items() if v != [0, 0]}


def _row_dicts(items) -> list[dict]:
    return [
        {
            "workspace_id": k[0],
            **dict(zip(KEY_COLUMNS, k[1:], strict=True)),
            "n_ok": n[0],
            "n_failed": n[1],
        }
        for k, n in items
    ]


def record_outcome_change(
    session: Session, changes: Iterable[tuple[Fact | None, Fact | None]], locked: bool = False
) -> None:
    """Apply what each (before, after) change of an enrollment does to the rollups.

    ``None`` is "no row" (an insert's before, a delete's after). Runs on ``session``'s
    connection, in its transaction: the rollups commit or roll back with the rows. ``locked``:
    the caller holds :func:`hold` for every workspace concerned already.
    """
    deltas = _deltas(changes)
    if not deltas:
        return
    connection = session.connection()
    if not locked:
        hold(connection, {k[0] for k in deltas})
    rows = _row_dicts(sorted(deltas.items()))  # one lock order for every transaction
    connection.execute(_upsert(connection.dialect.name), rows)


def hold(connection, workspace_ids: Iterable[int]) -> None:
    """Take the workspaces' rollup lock in shared mode until the transaction ends (PostgreSQL):
    a :func:`rebuild` never interleaves with a change."""
    if connection.dialect.name != "postgresql":
        return
    for workspace_id in sorted(set(workspace_ids)):
        connection.execute(_SHARED_LOCK, {"space": _LOCK_SPACE, "ws": workspace_id})


_SHARED_LOCK = text("SELECT pg_advisory_xact_lock_shared(:space, :ws)")


@functools.cache
def _upsert(dialect: str):
    """The rollups' upsert (adds each row's counts to its key's), built once per dialect."""
    table = EnrollmentRollup.__table__
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.workspace_id, *(table.c[c] for c in KEY_COLUMNS)],
        set_={
            "n_ok": table.c.n_ok + statement.excluded.n_ok,
            "n_failed": table.c.n_failed + statement.excluded.n_failed,
        },
    )


# -- the ORM hook --------------------------------------------------------------------------------


def _old_facts(session: Session, ids: list[int]) -> dict[int, Fact]:
    """The rows' values as the database has them, under their locks (PostgreSQL)."""
    if not ids:
        return {}
    columns = [getattr(Enrollment, name) for name in TRACKED]
    query = select(Enrollment.id, *columns).where(Enrollment.id.in_(ids)).with_for_update()
    with session.no_autoflush:
        result = session.connection().execute(query).all()
    return {r[0]: Fact(*r[1:]) for r in result}


def _changed(obj: Enrollment) -> dict[str, object]:
    state = db.inspect(obj)
    changed = {}
    for name in TRACKED:
        history = state.attrs[name].history
        if history.added:
            changed[name] = history.added[0]
    return changed


def _new_fact(obj: Enrollment) -> Fact:
    if obj.created_at is None:
        obj.created_at = utcnow()
    if obj.status is None:
        obj.status = EnrollmentStatus.QUEUED.value
    return Fact(*(getattr(obj, name) for name in TRACKED))


def _before_flush(session: Session, flush_context, instances) -> None:
    new = [o for o in session.new if isinstance(o, Enrollment)]
    dirty = {
        o.id: changed
        for o in session.dirty
        if isinstance(o, Enrollment) and o.id is not None and (changed := _changed(o))
    }
    deleted = [o.id for o in session.deleted if isinstance(o, Enrollment) and o.id is not None]
    if not (new or dirty or deleted):
        return
    old = _old_facts(session, sorted({*dirty, *deleted}))
    changes: list[tuple[Fact | None, Fact | None]] = [(None, _new_fact(o)) for o in new]
    for row_id, changed in dirty.items():
        before = old.get(row_id)
        if before is not None:
            changes.append((before, before._replace(**changed)))
    changes.extend((old[i], None) for i in deleted if i in old)
    record_outcome_change(session, changes)


def install() -> None:
    """Keep the rollups with every ORM write of an enrollment (called once, at import)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


install()


# -- rebuilding ------------------------------------------------------------------------------------


def rebuild(workspace_id: int) -> int:
    """Recount the workspace's rollups from its rows (after a bulk write); returns rows written.

    Commits. PostgreSQL: one INSERT ... SELECT per projection; SQLite (demo-sized): in Python.
    """
    session = db.session
    connection = session.connection()
    table = EnrollmentRollup.__table__
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, :ws)"),
            {"space": _LOCK_SPACE, "ws": workspace_id},
        )
    session.execute(table.delete().where(table.c.workspace_id == workspace_id))
    if connection.dialect.name == "postgresql":
        written = _rebuild_postgresql(session, workspace_id)
    else:
        written = _rebuild_python(session, workspace_id)
    session.commit()
    return written


def _rebuild_python(session: Session, workspace_id: int) -> int:
    columns = [getattr(Enrollment, name) for name in TRACKED]
    facts = (
        Fact(*r)
        for r in session.execute(
            select(*columns).where(
                Enrollment.workspace_id == workspace_id, Enrollment.status.in_(FINISHED)
            )
        )
    )
    deltas = _deltas((None, f) for f in facts)
    rows = _row_dicts(deltas.items())
    for start in range(0, len(rows), 5000):
        session.execute(insert(EnrollmentRollup.__table__), rows[start : start + 5000])
    return len(rows)


def _projection_columns(dims: int) -> dict[str, object]:
    """The key columns of projection ``dims`` as expressions over the rows (None: "none")."""
    e = Enrollment
    kept = {
        "sequence_id": (Dim.SEQUENCE, func.coalesce(e.sequence_id, 0), 0),
        "workflow_id": (Dim.WORKFLOW, func.coalesce(e.workflow_id, ""), ""),
        "mailbox_id": (Dim.MAILBOX, func.coalesce(e.mailbox_id, 0), 0),
        "rotation_id": (Dim.ROTATION, func.coalesce(e.rotation_id, 0), 0),
        "failure_code": (Dim.CODE, func.coalesce(e.failure_code, ""), ""),
        "sequence_name": (Dim.SEQUENCE, func.coalesce(e.sequence_name, ""), ""),
    }
    return {name: (expr if dims & flag else none) for name, (flag, expr, none) in kept.items()}


def _rebuild_postgresql(session: Session, workspace_id: int) -> int:
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    origin = literal(datetime(2000, 1, 1, tzinfo=UTC))
    table = EnrollmentRollup.__table__
    for grain, projections in PROJECTIONS.items():
        step = "15 minutes" if grain == RollupGrain.QUARTER else "1 day"
        bucket = func.date_bin(text(f"interval '{step}'"), Enrollment.created_at, origin)
        for dims in projections:
            columns = _projection_columns(dims)
            keys = [bucket, *(c for c in columns.values() if not isinstance(c, int | str))]
            query = (
                select(
                    Enrollment.workspace_id,
                    literal(int(grain)),
                    literal(int(dims)),
                    bucket,
                    *(literal(c) if isinstance(c, int | str) else c for c in columns.values()),
                    func.count().filter(Enrollment.status.in_(OK)),
                    func.count().filter(Enrollment.status.in_(NOT_OK)),
                )
                .where(Enrollment.workspace_id == workspace_id, Enrollment.status.in_(FINISHED))
                .group_by(Enrollment.workspace_id, *keys)
                # in key order: the indexes grow at their ends instead of splitting pages
                .order_by(*keys)
            )
            names = ["workspace_id", "grain", "dims", "bucket", *columns, "n_ok", "n_failed"]
            session.execute(insert(table).from_select(names, query))
    return session.scalar(
        select(func.count()).select_from(table).where(table.c.workspace_id == workspace_id)
    )


def rebuild_all() -> dict[int, int]:
    """:func:`rebuild` for every workspace that has enrollments."""
    ids = db.session.scalars(select(Enrollment.workspace_id).distinct()).all()
    return {workspace_id: rebuild(workspace_id) for workspace_id in sorted(ids)}
