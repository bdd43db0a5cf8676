"""Analytics aggregates read from the rows: the headline, the days and the breakdowns.

Everything here reads the ``enrollments`` table with SQL aggregates (GROUP BY + COUNT/SUM(CASE))
over its ``(workspace_id, [dimension,] created_at)`` indexes; rows are never loaded into Python to
be counted. Days are the workspace's local days, their starts computed here with zoneinfo (exact
across DST):

- PostgreSQL: ``width_bucket`` over the days' starts numbers each row's day, both periods in one
  index range scan; the breakdowns come from one GROUPING SETS scan beside it; the indexes
  INCLUDE the grouped columns, so both scans are index-only (migrations 0002 and 0010).
- SQLite: each timestamp is shifted by the zone's UTC offset over the (few) constant-offset
  stretches of the period; one GROUP BY per breakdown.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql

from ...extensions import db
from ...models import (
    Enrollment,
    EnrollmentStatus,
    Mailbox,
    Rotation,
    Sequence,
)
from . import rollup_reads
from .filters import FAILURE_TEXT, Filters, local_midnight
from .log import workflow_names
from .rollups import NOT_OK, OK

# -- aggregates --------------------------------------------------------------------------------


@dataclass
class Counts:
    """Enrollments, split by status; ``rate`` is succeeded over finished (queued left out)."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def queued(self) -> int:
        return self.total - self.succeeded - self.failed

    @property
    def rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


@dataclass
class Row:
    """One line of a breakdown table."""

    key: object
    label: str
    counts: Counts
    link_args: dict[str, str] | None = None
    badge: str | None = None
    detail: str | None = None


@dataclass
class Day:
    day: date
    counts: Counts


@dataclass
class Report:
    filters: Filters
    current: Counts
    previous: Counts
    days: list[Day]
    sequences: list[Row]
    workflows: list[Row]
    mailboxes: list[Row]
    rotations: list[Row]
    reasons: list[Row]


def _succeeded():
    return func.sum(case((Enrollment.status.in_(OK), 1), else_=0))


def _failed():
    return func.sum(case((Enrollment.status.in_(NOT_OK), 1), else_=0))


def _counts(total, succeeded, failed) -> Counts:
    return Counts(int(total or 0), int(succeeded or 0), int(failed or 0))


def headline(filters: Filters) -> tuple[Counts, Counts]:
    """(this period, the previous period of equal length), in one scan over both periods."""
    start, prev_start = filters.start, local_midnight(filters.previous_start_date, filters.tz)
    in_current = Enrollment.created_at >= start
    ok = Enrollment.status.in_(OK)
    bad = Enrollment.status.in_(NOT_OK)
    row = db.session.execute(
        select(
            func.sum(case((in_current, 1), else_=0)),
            func.sum(case((and_(in_current, ok), 1), else_=0)),
            func.sum(case((and_(in_current, bad), 1), else_=0)),
            func.sum(case((in_current, 0), else_=1)),
            func.sum(case((and_(~in_current, ok), 1), else_=0)),
            func.sum(case((and_(~in_current, bad), 1), else_=0)),
        ).where(*filters.conditions(start=prev_start))
    ).one()
    return _counts(*row[:3]), _counts(*row[3:])


def offset_segments(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The constant-UTC-offset stretches of ``tz`` over [start, end): (from instant, seconds).

    The first stretch starts at ``start``; each further one at an exact offset change (found by
    bisecting the day in which it happens to the second).
    """

    def offset(instant: datetime) -> int:
        return int(instant.astimezone(tz).utcoffset().total_seconds())

    segments = [(start, offset(start))]
    cursor = start
    while cursor < end:
        step = min(cursor + timedelta(days=1), end)
        if offset(step) != segments[-1][1]:
            low, high = cursor, step  # offset(low) == current, offset(high) differs
            while (high - low) > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if offset(mid) == segments[-1][1]:
                    low = mid
                else:
                    high = mid
            segments.append((high.replace(microsecond=0), offset(high)))
        cursor = step
    return segments


def local_day_expression(filters: Filters):
    """SQLite: the local day ('YYYY-MM-DD') of ``Enrollment.created_at`` in the workspace zone.

    Each constant-offset stretch of the period shifts by its own offset, so days stay exact
    across a DST change.
    """
    segments = offset_segments(filters.tz, filters.start, filters.end)
    # SQLite rounds fractional seconds to milliseconds (23:59:59.9999 would become the next
    # day), so the shift works on the whole seconds of the stored 'YYYY-MM-DD HH:MM:SS.ffffff'.
    whole_seconds = func.substr(Enrollment.created_at, 1, 19)

    def shifted(seconds: int):
        return func.date(whole_seconds, literal(f"{seconds:+d} seconds"))

    if len(segments) == 1:
        return shifted(segments[0][1])
    whens = [
        (Enrollment.created_at < segments[i + 1][0], shifted(seconds))
        for i, (_, seconds) in enumerate(segments[:-1])
    ]
    return case(*whens, else_=shifted(segments[-1][1]))


def day_starts(filters: Filters) -> list[datetime]:
    """The UTC instants at which each local day of the period starts, and the end."""
    return [
        local_midnight(filters.start_date + timedelta(days=i), filters.tz)
        for i in range(filters.days + 1)
    ]


def per_day(filters: Filters, rows=None) -> list[Day]:
    """Enrollments per local day over the period, every day present (zeros included)."""
    if rows is None:
        rows = _per_day_rows(filters)
    by_day = {}
    for day, total, succeeded, failed in rows:
        key = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
        by_day[key] = _counts(total, succeeded, failed)
    return [
        Day(
            filters.start_date + timedelta(days=i),
            by_day.get(filters.start_date + timedelta(days=i), Counts()),
        )
        for i in range(filters.days)
    ]


def _per_day_rows(filters: Filters):
    """(day, total, succeeded, failed) per local day that has enrollments."""
    if db.engine.dialect.name == "postgresql":
        return _per_day_rows_postgresql(filters)
    inner = (
        select(local_day_expression(filters).label("day"), Enrollment.status.label("status"))
        .where(*filters.conditions())
        .subquery()
    )
    ok = inner.c.status.in_(OK)
    bad = inner.c.status.in_(NOT_OK)
    return db.session.execute(
        select(
            inner.c.day,
            func.count(),
            func.sum(case((ok, 1), else_=0)),
            func.sum(case((bad, 1), else_=0)),
        ).group_by(inner.c.day)
    ).all()


def _per_day_rows_postgresql(filters: Filters):
    sums = _day_sums_postgresql(filters, day_starts(filters))
    return [
        (filters.start_date + timedelta(days=i), *sums[i]) for i in range(filters.days) if i in sums
    ]


def _day_sums_postgresql(filters: Filters, marks: list[datetime]) -> dict[int, tuple]:
    """{day index: (total, succeeded, failed)} over the local days starting at ``marks`` (the
    last mark is the end), in ONE index range scan: ``width_bucket`` numbers each row's day by a
    binary search in the days' starts (computed with zoneinfo, so exact across DST).

    Joining a table of [start, end) days instead, the planner chose a nested loop that tested
    every row against every day: 2.9 s for 171,545 rows over 90 days at 10M enrollments, where
    the index scan itself took 96 ms.
    """
    starts = bindparam("day_starts", marks, type_=postgresql.ARRAY(DateTime(timezone=True)))
    day = func.width_bucket(Enrollment.created_at, starts)
    _no_jit(db.session)
    rows = db.session.execute(
        select(day, func.count(), _succeeded(), _failed())
        .where(*filters.conditions(start=marks[0], end=marks[-1]))
        .group_by(day)
    ).all()
    return {int(i) - 1: (total, ok, bad) for i, total, ok, bad in rows}


def _no_jit(connection) -> None:
    # These scans are short: PostgreSQL's JIT compiles each of them for ~100 ms (measured at
    # 10M rows), longer than most of them run.
    connection.execute(text("SET LOCAL jit = off"))


# The breakdown tables: their GROUP BY columns.
DIMENSIONS = {
    "sequence": (Enrollment.sequence_id, Enrollment.sequence_name),
    "workflow": (Enrollment.workflow_id,),
    "mailbox": (Enrollment.mailbox_id,),
    "rotation": (Enrollment.rotation_id,),
    "reason": (Enrollment.failure_code,),
}


def grouping_sets_rows(filters: Filters, engine=None) -> dict[str, list[tuple]]:
    """PostgreSQL: every breakdown's groups in ONE scan of the period (GROUPING SETS).

    Returns, per dimension, tuples shaped as the separate queries return them:
    (*keys, total, succeeded, failed); for "reason" (code, failed, 0, failed, None), failed
    rows only. Every column read is in the covering index on (workspace_id, created_at), so
    the scan is index-only. With ``engine`` it runs on a connection of its own (no session,
    no app context), so :func:`report` can run it beside the per-day query.
    """
    names = tuple(DIMENSIONS)
    keys = DIMENSIONS
    query = select(
        *(func.grouping(keys[n][0]).label(f"g_{n}") for n in names),
        *(col for n in names for col in keys[n]),
        func.count(),
        _succeeded(),
        _failed(),
    ).where(*filters.conditions())
    query = query.group_by(func.grouping_sets(*(tuple_(*keys[n]) for n in names)))
    # The planner multiplies sequence ids by names to guess the groups and, within the default
    # 4 MB, would sort the period on disk instead of hashing it; the hash tables need ~2 MB.
    work_mem = text("SET LOCAL work_mem = '32MB'")
    if engine is None:
        db.session.execute(work_mem)
        _no_jit(db.session)
        result = db.session.execute(query).all()
    else:
        with engine.begin() as connection:
            connection.execute(work_mem)
            _no_jit(connection)
            result = connection.execute(query).all()
    out: dict[str, list[tuple]] = {n: [] for n in names}
    width = len(names)
    for row in result:
        flags, values = row[:width], row[width:]
        name = names[flags.index(0)]
        offset = sum(len(keys[n]) for n in names[: names.index(name)])
        key = tuple(values[offset : offset + len(keys[name])])
        total, succeeded, failed = values[-3:]
        if name == "reason":
            if failed:
                out[name].append((*key, failed, 0, failed, None))
        else:
            out[name].append((*key, total, succeeded, failed))
    for name, rows in out.items():  # biggest first, as the separate queries order them
        rows.sort(key=lambda r, at=len(keys[name]): -r[at])
    return out


def _grouped(filters: Filters, *keys, extra=(), only_failed: bool = False):
    conds = filters.conditions()
    if only_failed:
        conds.append(Enrollment.status.in_(NOT_OK))
    return db.session.execute(
        select(*keys, func.count(), _succeeded(), _failed(), *extra)
        .where(*conds)
        .group_by(*keys)
        .order_by(func.count().desc())
    ).all()


def by_sequence(filters: Filters, rows=None) -> list[Row]:
    """Per sequence, under the name it had when enrolled; removed sequences keep their history."""
    if rows is None:
        rows = _grouped(filters, *DIMENSIONS["sequence"])
    ids = {r[0] for r in rows if r[0] is not None}
    removed = set()
    if ids:
        removed = set(
            db.session.scalars(
                select(Sequence.id).where(
                    Sequence.workspace_id == filters.workspace_id,
                    Sequence.id.in_(ids),
                    Sequence.removed_at.is_not(None),
                )
            )
        )
    return [
        Row(
            key=seq_id,
            label=name or "(unnamed sequence)",
            counts=_counts(t, s, f),
            link_args=filters.query_args(sequence=seq_id) if seq_id is not None else None,
            badge="removed" if seq_id in removed else None,
        )
        for seq_id, name, t, s, f in rows
    ]


def by_workflow(filters: Filters, rows=None) -> list[Row]:
    """Per HubSpot workflow, by its name as last synced (its id until a sync has read it)."""
    if rows is None:
        rows = _grouped(filters, *DIMENSIONS["workflow"])
    names = workflow_names(filters.workspace_id, [r[0] for r in rows if r[0]])
    return [
        Row(
            key=wf,
            label=(names.get(wf) or f"Workflow {wf}") if wf else "(no workflow id)",
            detail=wf,
            counts=_counts(t, s, f),
            link_args=filters.query_args(workflow=wf) if wf else None,
        )
        for wf, t, s, f in rows
    ]


def by_mailbox(filters: Filters, rows=None) -> list[Row]:
    """Per sending mailbox (the one chosen, directly or by a rotation)."""
    if rows is None:
        rows = _grouped(filters, *DIMENSIONS["mailbox"])
    ids = [r[0] for r in rows if r[0] is not None]
    emails = dict(
        db.session.execute(
            select(Mailbox.id, Mailbox.email).where(
                Mailbox.workspace_id == filters.workspace_id, Mailbox.id.in_(ids)
            )
        ).all()
    )
    return [
        Row(
            key=mid,
            label=emails.get(mid, f"mailbox #{mid}") if mid is not None else "(no mailbox chosen)",
            counts=_counts(t, s, f),
            link_args=filters.query_args(mailbox=mid) if mid is not None else None,
        )
        for mid, t, s, f in rows
    ]


def by_rotation(filters: Filters, rows=None) -> list[Row]:
    """Per rotation; enrollments sent from a single mailbox share the "direct" line."""
    if rows is None:
        rows = _grouped(filters, *DIMENSIONS["rotation"])
    ids = [r[0] for r in rows if r[0] is not None]
    rotations = {
        r.id: r
        for r in db.session.execute(
            select(Rotation.id, Rotation.name, Rotation.deleted_at).where(
                Rotation.workspace_id == filters.workspace_id, Rotation.id.in_(ids)
            )
        ).all()
    }
    result = []
    for rid, t, s, f in rows:
        rotation = rotations.get(rid)
        result.append(
            Row(
                key=rid,
                label=(rotation.name if rotation else f"rotation #{rid}")
                if rid is not None
                else "(direct mailbox, no rotation)",
                counts=_counts(t, s, f),
                link_args=filters.query_args(rotation=rid) if rid is not None else None,
                badge="deleted" if rotation and rotation.deleted_at else None,
            )
        )
    return result


def by_reason(filters: Filters, rows=None) -> list[Row]:
    """Failed enrollments per failure code, with one of the readable reasons recorded for it."""
    if rows is None:
        rows = _grouped(
            filters,
            *DIMENSIONS["reason"],
            extra=(func.max(Enrollment.failure_reason),),
            only_failed=True,
        )
    return [
        Row(
            key=code,
            label=code or "(no code)",
            counts=_counts(t, s, f),
            link_args=filters.query_args(status=EnrollmentStatus.FAILED.value, reason=code)
            if code
            else None,
            detail=FAILURE_TEXT.get(code or "") or reason,
        )
        for code, t, s, f, reason in rows
    ]


def report(filters: Filters) -> Report | None:
    """Everything the analytics page shows, or None when the filters have errors."""
    if not filters.ok:
        return None
    if rollup_reads.serves(filters):
        days, current, previous, groups = _from_rollups(filters)
    elif db.engine.dialect.name == "postgresql":
        days, current, previous, groups = _from_rows_postgresql(filters)
    else:
        days = per_day(filters)
        current, previous = headline(filters)
        groups = dict.fromkeys(DIMENSIONS)
    return Report(
        filters=filters,
        current=current,
        previous=previous,
        days=days,
        sequences=by_sequence(filters, groups["sequence"]),
        workflows=by_workflow(filters, groups["workflow"]),
        mailboxes=by_mailbox(filters, groups["mailbox"]),
        rotations=by_rotation(filters, groups["rotation"]),
        reasons=by_reason(filters, groups["reason"]),
    )


def _from_rollups(filters: Filters):
    per_day_counts, previous, groups = rollup_reads.figures(filters)
    days = [
        Day(filters.start_date + timedelta(days=i), _counts(*counts))
        for i, counts in enumerate(per_day_counts)
    ]
    return days, _sum_days(days), _counts(*previous), groups


def _sum_days(days: list[Day]) -> Counts:
    return Counts(
        sum(d.counts.total for d in days),
        sum(d.counts.succeeded for d in days),
        sum(d.counts.failed for d in days),
    )


def _from_rows_postgresql(filters: Filters):
    # The breakdowns' scan runs on a second connection while this one reads the days of both
    # periods in one scan: PostgreSQL works on both at once.
    marks = rollup_reads.boundaries(filters)  # the previous period's days, this one's, the end
    with ThreadPoolExecutor(max_workers=1) as pool:
        breakdowns = pool.submit(grouping_sets_rows, filters, db.engine)
        sums = _day_sums_postgresql(filters, marks)
        groups = breakdowns.result()
    n = filters.days
    days = per_day(
        filters,
        [
            (filters.start_date + timedelta(days=i - n), *sums[i])
            for i in range(n, 2 * n)
            if i in sums
        ],
    )
    previous = _counts(
        *(sum(int(sums[i][k] or 0) for i in range(n) if i in sums) for k in range(3))
    )
    return days, _sum_days(days), previous, groups
