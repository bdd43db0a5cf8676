"""The analytics page's figures from the rollups (rollups.py), exact and independent of row count.

Serves every filter combination with at most one of sequence / workflow / mailbox / rotation and
no failure reason (the status is a choice of counters), in any zone whose midnights fall on
15-minute UTC boundaries (every real zone since 1980; :func:`serves` checks). Otherwise the page
reads the rows (aggregates.py): two entity filters, or a reason (its own index), select few rows.

- Days and the previous period: the filter's projection in 15-minute buckets, summed into local
  days here (at most 2 x 96 buckets a day).
- A breakdown over the period: whole UTC days from day buckets, the partial days at each end
  from 15-minute buckets; a breakdown by one entity while filtering by another comes from the
  pair's day buckets plus, for the partial days at the ends, the rows themselves.
- Queued rows (not in the rollups) are read live through a partial index and added.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import DateTime, and_, bindparam, func, or_, select, text, tuple_, union_all
from sqlalchemy.dialects import postgresql

from ...extensions import db
from ...models import (
    Dim,
    Enrollment,
    EnrollmentRollup,
    EnrollmentStatus,
    Mailbox,
    RollupGrain,
    Rotation,
    Sequence,
)
from .filters import Filters, local_midnight
from .rollups import FINISHED, NOT_OK, OK, day_of

# filter attribute, Dim, rollup / row columns of the breakdown named after it
ENTITIES = {
    "sequence": ("sequence_id", Dim.SEQUENCE, ("sequence_id", "sequence_name")),
    "workflow": ("workflow_id", Dim.WORKFLOW, ("workflow_id",)),
    "mailbox": ("mailbox_id", Dim.MAILBOX, ("mailbox_id",)),
    "rotation": ("rotation_id", Dim.ROTATION, ("rotation_id",)),
}
# The breakdowns: the entities' and the failure codes' (filtered on by no rollup).
BREAKDOWNS = {**ENTITIES, "reason": (None, Dim.CODE, ("failure_code",))}
_MODELS = {"sequence": Sequence, "mailbox": Mailbox, "rotation": Rotation}
QUEUED, ENROLLED, FAILED = (
    EnrollmentStatus.QUEUED.value,
    EnrollmentStatus.ENROLLED.value,
    EnrollmentStatus.FAILED.value,
)


def _entity_filter(filters: Filters) -> list[str]:
    return [name for name, (attr, _, _) in ENTITIES.items() if getattr(filters, attr) is not None]


def boundaries(filters: Filters) -> list[datetime]:
    """The starts of the previous period's and this period's days, and the end."""
    return [
        local_midnight(filters.previous_start_date + timedelta(days=i), filters.tz)
        for i in range(2 * filters.days + 1)
    ]


def serves(filters: Filters) -> bool:
    """Whether the rollups give these filters' figures (else the rows do)."""
    if len(_entity_filter(filters)) > 1 or filters.reason is not None:
        return False
    return all(
        b.minute % 15 == 0 and not b.second and not b.microsecond for b in boundaries(filters)
    )


def _pick(filters: Filters, ok, bad) -> tuple[int, int]:
    """(succeeded, failed) of a rollup sum under the status filter."""
    status = filters.status
    return (
        int(ok or 0) if status in (None, ENROLLED) else 0,
        int(bad or 0) if status in (None, FAILED) else 0,
    )


def _rollup(filters: Filters, dims: int, ranges: dict[RollupGrain, list], columns) -> list:
    """Sums (``columns``..., n_ok, n_failed) of one projection over bucket ranges per grain."""
    r = EnrollmentRollup
    spans = [
        and_(r.grain == int(grain), r.bucket >= start, r.bucket < end)
        for grain, pairs in ranges.items()
        for start, end in pairs
        if start < end
    ]
    if not spans:
        return []
    conds = [r.workspace_id == filters.workspace_id, r.dims == int(dims), or_(*spans)]
    for name in _entity_filter(filters):
        attr = ENTITIES[name][0]
        conds.append(getattr(r, attr) == getattr(filters, attr))
    cols = [getattr(r, c) for c in columns]
    return db.session.execute(
        select(*cols, func.sum(r.n_ok), func.sum(r.n_failed)).where(*conds).group_by(*cols)
    ).all()


def _queued_rows(filters: Filters, start: datetime) -> list:
    if filters.status not in (None, QUEUED):
        return []
    conds = filters.conditions(start=start)
    return db.session.execute(
        select(
            Enrollment.created_at,
            Enrollment.sequence_id,
            Enrollment.sequence_name,
            Enrollment.workflow_id,
            Enrollment.mailbox_id,
            Enrollment.rotation_id,
        ).where(*conds, Enrollment.status == QUEUED)
    ).all()


# -- the days and the previous period ---------------------------------------------------------


def days_and_previous(filters: Filters, queued: list) -> tuple[list[list[int]], list[int]]:
    """[total, ok, failed] per day of the period, and of the previous period."""
    marks = boundaries(filters)
    dims = _dims(_entity_filter(filters))
    if db.engine.dialect.name == "postgresql":
        rows = _day_sums_postgresql(filters, dims, marks)
    else:
        rows = [
            (bisect_right(marks, bucket) - 1, n_ok, n_bad)
            for bucket, n_ok, n_bad in _rollup(
                filters, dims, {RollupGrain.QUARTER: [(marks[0], marks[-1])]}, ["bucket"]
            )
        ]
    per_day = [[0, 0, 0] for _ in range(2 * filters.days)]
    for index, n_ok, n_bad in rows:
        ok, bad = _pick(filters, n_ok, n_bad)
        slot = per_day[index]
        slot[0] += ok + bad
        slot[1] += ok
        slot[2] += bad
    for row in queued:
        per_day[bisect_right(marks, row.created_at) - 1][0] += 1
    previous = [sum(day[i] for day in per_day[: filters.days]) for i in range(3)]
    return per_day[filters.days :], previous


def _day_sums_postgresql(filters: Filters, dims: int, marks: list[datetime]) -> list:
    """(day index, n_ok, n_failed) per local day: ``width_bucket`` over the days' starts numbers
    each 15-minute bucket's day in the one range scan (a few hundred rows back, not thousands)."""
    r = EnrollmentRollup
    conds = [
        r.workspace_id == filters.workspace_id,
        r.grain == int(RollupGrain.QUARTER),
        r.dims == dims,
        r.bucket >= marks[0],
        r.bucket < marks[-1],
    ]
    for name in _entity_filter(filters):
        attr = ENTITIES[name][0]
        conds.append(getattr(r, attr) == getattr(filters, attr))
    starts = bindparam("day_starts", marks, type_=postgresql.ARRAY(DateTime(timezone=True)))
    day = func.width_bucket(r.bucket, starts)
    rows = db.session.execute(
        select(day, func.sum(r.n_ok), func.sum(r.n_failed)).where(*conds).group_by(day)
    ).all()
    return [(int(i) - 1, ok, bad) for i, ok, bad in rows]


def _dims(names) -> int:
    dims = 0
    for name in names:
        dims |= BREAKDOWNS[name][1]
    return dims


# -- the breakdowns --------------------------------------------------------------------------------


def _spans(filters: Filters) -> tuple[list, list]:
    """(whole UTC days, partial days at the ends) of the period, as [start, end) pairs."""
    start, end = filters.start, filters.end
    first = day_of(start) if day_of(start) == start else day_of(start) + timedelta(days=1)
    last = day_of(end)
    if first >= last:
        return [], [(start, end)]
    return [(first, last)], [(start, first), (last, end)]


def _edge_rows(filters: Filters, edges: list, names: list[str]) -> dict[str, list]:
    """The partial days' finished rows grouped for each breakdown in ``names`` (the pairs):
    {name: [(*columns, n_ok, n_failed)]}.

    Each edge is its own index range (an OR of the edges under the period's bounds scanned the
    whole period: 90,000 rows read for 8,000 kept at 10M enrollments), and on PostgreSQL every
    breakdown comes from one GROUPING SETS pass over them (four GROUP BYs before).
    """
    parts = [
        select(*(getattr(Enrollment, c) for c in KEY_COLUMNS), Enrollment.status).where(
            *filters.conditions(start=a, end=b), Enrollment.status.in_(FINISHED)
        )
        for a, b in edges
        if a < b
    ]
    if not parts or not names:
        return {}
    rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    ok = func.count().filter(rows.c.status.in_(OK))
    bad = func.count().filter(rows.c.status.in_(NOT_OK))
    if db.engine.dialect.name != "postgresql":
        return {
            name: db.session.execute(
                select(*(cols := [rows.c[c] for c in BREAKDOWNS[name][2]]), ok, bad).group_by(*cols)
            ).all()
            for name in names
        }
    sets = [tuple_(*(rows.c[c] for c in BREAKDOWNS[name][2])) for name in names]
    flags = [func.grouping(rows.c[BREAKDOWNS[name][2][0]]) for name in names]
    used = [c for c in KEY_COLUMNS if any(c in BREAKDOWNS[name][2] for name in names)]
    result = db.session.execute(
        select(*flags, *(rows.c[c] for c in used), ok, bad).group_by(func.grouping_sets(*sets))
    ).all()
    out: dict[str, list] = {name: [] for name in names}
    for row in result:
        name = names[list(row[: len(names)]).index(0)]
        values = dict(zip(used, row[len(names) : -2], strict=True))
        out[name].append((*(values[c] for c in BREAKDOWNS[name][2]), row[-2], row[-1]))
    return out


def _normal(name: str, key: tuple) -> tuple:
    """A rollup's "none" (0, '') as the rows have it (NULL); a sequence's name stays a string."""
    if name == "sequence":
        return (key[0] or None, key[1] or "")
    return (key[0] or None,)


KEY_COLUMNS = (
    "sequence_id",
    "sequence_name",
    "workflow_id",
    "mailbox_id",
    "rotation_id",
    "failure_code",
)


def _breakdown_rows(filters: Filters) -> dict[str, list]:
    """Every breakdown's rollup sums in ONE query: {name: [(*columns, n_ok, n_failed)]}.

    Whole UTC days come from day buckets; the partial days at the ends from 15-minute buckets of
    the single projections, and from the rows themselves for the pairs.
    """
    days, edges = _spans(filters)
    filtered = _entity_filter(filters)
    dims_of = {name: _dims({name, *filtered}) for name in BREAKDOWNS}
    singles = [d for n, d in dims_of.items() if not filtered or n in filtered]
    r = EnrollmentRollup
    spans = [and_(r.grain == int(RollupGrain.DAY), r.bucket >= a, r.bucket < b) for a, b in days]
    spans += [
        and_(r.grain == int(RollupGrain.QUARTER), r.dims.in_(singles), r.bucket >= a, r.bucket < b)
        for a, b in edges
        if a < b
    ]
    conds = [r.workspace_id == filters.workspace_id, r.dims.in_(set(dims_of.values()))]
    for name in filtered:
        attr = ENTITIES[name][0]
        conds.append(getattr(r, attr) == getattr(filters, attr))
    cols = [r.dims, *(getattr(r, c) for c in KEY_COLUMNS)]
    result = db.session.execute(
        select(*cols, func.sum(r.n_ok), func.sum(r.n_failed))
        .where(*conds, or_(*spans))
        .group_by(*cols)
    ).all()
    by_dims = {d: n for n, d in dims_of.items()}
    out: dict[str, list] = {name: [] for name in BREAKDOWNS}
    for row in result:
        name = by_dims[row[0]]
        values = dict(zip(KEY_COLUMNS, row[1:], strict=False))
        out[name].append((*(values[c] for c in BREAKDOWNS[name][2]), row[-2], row[-1]))
    pairs = [name for name in BREAKDOWNS if filtered and name not in filtered]
    for name, rows in _edge_rows(filters, edges, pairs).items():
        out[name] += rows
    return out


def breakdown(filters: Filters, name: str, rows: list, queued: list) -> list[tuple]:
    """(*keys, total, succeeded, failed) per value of ``name``, biggest first."""
    columns = BREAKDOWNS[name][2]
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    width = len(columns)
    for row in rows:
        ok, bad = _pick(filters, *row[width:])
        slot = sums[_normal(name, tuple(row[:width]))]
        slot[0] += ok + bad
        slot[1] += ok
        slot[2] += bad
    start = filters.start
    for row in queued:
        if row.created_at >= start:
            sums[_normal(name, tuple(getattr(row, c) for c in columns))][0] += 1
    sums = _forget_deleted(filters, name, sums)
    result = [(*key, *counts) for key, counts in sums.items() if counts[0]]
    result.sort(key=lambda r: -r[width])
    return result


def _forget_deleted(filters: Filters, name: str, sums: dict) -> dict:
    """Ids whose row is gone (a deleted mailbox: its rows' column became NULL) count as none."""
    model = _MODELS.get(name)
    ids = {key[0] for key in sums if key[0] is not None}
    # SQLite does not enforce foreign keys here: its rows keep the id, and so do the rollups.
    if model is None or not ids or db.engine.dialect.name != "postgresql":
        return sums
    known = set(
        db.session.scalars(
            select(model.id).where(model.workspace_id == filters.workspace_id, model.id.in_(ids))
        )
    )
    merged: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for key, counts in sums.items():
        key = key if key[0] is None or key[0] in known else (None, *key[1:])
        for i in range(3):
            merged[key][i] += counts[i]
    return merged


def by_reason(filters: Filters, rows: list) -> list[tuple]:
    """(code, failed, 0, failed, None) per failure code of the failed rows, biggest first."""
    rows = [(r[0], r[3], 0, r[3], None) for r in breakdown(filters, "reason", rows, []) if r[3]]
    rows.sort(key=lambda r: -r[1])
    return rows


def figures(filters: Filters):
    """(days, previous, breakdowns) for :func:`aggregates.report`."""
    if db.engine.dialect.name == "postgresql":
        # The planner over-estimates the rollup rows of a period (grain and dims are correlated)
        # and would spend 50-200 ms JIT-compiling queries that sum a few thousand rows.
        # It also guesses too many groups for the default 4 MB and would sort instead of hash.
        db.session.execute(text("SET LOCAL jit = off"))
        db.session.execute(text("SET LOCAL work_mem = '32MB'"))
    queued = _queued_rows(filters, local_midnight(filters.previous_start_date, filters.tz))
    days, previous = days_and_previous(filters, queued)
    rows = _breakdown_rows(filters)
    groups = {name: breakdown(filters, name, rows[name], queued) for name in ENTITIES}
    groups["reason"] = by_reason(filters, rows["reason"])
    return days, previous, groups
