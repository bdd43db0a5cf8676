"""Analytics: what every enrollment did, by sequence, workflow, sender, failure reason and day.

Everything here reads the ``enrollments`` table with SQL aggregates (GROUP BY + COUNT/SUM(CASE))
over its ``(workspace_id, [dimension,] created_at)`` indexes; rows are never loaded into Python to
be counted. Days are the workspace's local days, their starts computed here with zoneinfo (exact
across DST):

- PostgreSQL: the days are a table of [start, end) instants joined to the enrollments (one index
  range scan per day); the breakdowns come from one GROUPING SETS scan; the (workspace_id,
  created_at) index INCLUDEs the grouped columns, so both scans are index-only (migration 0002).
- SQLite: each timestamp is shifted by the zone's UTC offset over the (few) constant-offset
  stretches of the period; one GROUP BY per breakdown.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

from ..extensions import db
from ..models import (
    Enrollment,
    EnrollmentStatus,
    Mailbox,
    Rotation,
    Sequence,
    Workflow,
    Workspace,
)
from .enrollment import REASONS

# What each failure code means, as the enrollment service words it (the table shows this,
# and the log shows each row's own recorded reason).
FAILURE_TEXT = REASONS

PERIODS = ("7", "30", "90", "custom")
DEFAULT_PERIOD = "30"
MAX_RANGE_DAYS = 366
STATUSES = tuple(s.value for s in EnrollmentStatus)
LOG_PAGE_SIZE = 50
EXPORT_CHUNK = 2000

_WORKFLOW_RE = re.compile(r"^[0-9]{1,32}$")
_REASON_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CURSOR_RE = re.compile(r"^(-?[0-9]{1,20})_([0-9]{1,20})$")
# The filter parameters, in the order they appear in URLs.
FILTER_KEYS = (
    "period",
    "from",
    "to",
    "sequence",
    "workflow",
    "mailbox",
    "rotation",
    "status",
    "reason",
)


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    """The workspace's time zone, UTC when unset or unknown."""
    try:
        return ZoneInfo(workspace.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` starts in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@dataclass
class Filters:
    """The analytics filters of one request, validated against one workspace.

    ``errors`` maps a parameter name to a message to show beside that filter; when it is not
    empty, no query is run and the page shows an empty result.
    """

    workspace_id: int
    tz: ZoneInfo
    period: str = DEFAULT_PERIOD
    start_date: date = field(default_factory=date.today)
    end_date: date = field(default_factory=date.today)
    sequence_id: int | None = None
    workflow_id: str | None = None
    mailbox_id: int | None = None
    rotation_id: int | None = None
    status: str | None = None
    reason: str | None = None
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, args: Mapping[str, str], workspace: Workspace, today: date | None = None
    ) -> Filters:
        """Read and check query parameters; never raises on bad input, records ``errors``."""
        tz = workspace_zone(workspace)
        today = today or datetime.now(tz).date()
        raw = {k: (args.get(k) or "").strip()[:200] for k in FILTER_KEYS}
        f = cls(workspace_id=workspace.id, tz=tz, raw=raw)

        period = raw["period"] or ("custom" if raw["from"] or raw["to"] else DEFAULT_PERIOD)
        if period not in PERIODS:
            f.errors["period"] = "Choose one of the listed periods."
            period = DEFAULT_PERIOD
        f.period = period
        if period == "custom":
            f._parse_custom(raw, today)
        else:
            f.end_date = today
            f.start_date = today - timedelta(days=int(period) - 1)

        f.sequence_id = f._parse_owned_id("sequence", Sequence, "No such sequence here.")
        f.mailbox_id = f._parse_owned_id("mailbox", Mailbox, "No such mailbox here.")
        f.rotation_id = f._parse_owned_id("rotation", Rotation, "No such rotation here.")
        if raw["workflow"]:
            if _WORKFLOW_RE.match(raw["workflow"]):
                f.workflow_id = raw["workflow"]
            else:
                f.errors["workflow"] = "A workflow id is a number, as in HubSpot's workflow URL."
        if raw["status"]:
            if raw["status"] in STATUSES:
                f.status = raw["status"]
            else:
                f.errors["status"] = "Choose queued, enrolled or failed."
        if raw["reason"]:
            if _REASON_RE.match(raw["reason"]):
                f.reason = raw["reason"]
            else:
                f.errors["reason"] = "Not a failure code."
        return f

    def _parse_custom(self, raw: dict[str, str], today: date) -> None:
        # An empty end means today, an empty start 30 days before the end: choosing "custom"
        # starts from the current default range instead of an error.
        start = self._parse_date("from", raw["from"]) if raw["from"] else None
        end = self._parse_date("to", raw["to"]) if raw["to"] else None
        if "from" in self.errors or "to" in self.errors:
            self.start_date, self.end_date = today - timedelta(days=29), today
            return
        end = end or today
        start = start or end - timedelta(days=29)
        if end < start:
            self.errors["to"] = "The end date is before the start date."
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            self.errors["to"] = f"Choose at most {MAX_RANGE_DAYS} days."
        self.start_date, self.end_date = start, end

    def _parse_date(self, name: str, value: str) -> date | None:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            self.errors[name] = "Not a date (use YYYY-MM-DD)."
            return None
        if not 1900 < parsed.year < 9000:
            self.errors[name] = "Not a plausible date."
            return None
        return parsed

    def _parse_owned_id(self, name: str, model, message: str) -> int | None:
        value = self.raw[name]
        if not value:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > 9:
            self.errors[name] = message
            return None
        found = db.session.scalar(
            select(model.id).where(model.id == int(value), model.workspace_id == self.workspace_id)
        )
        if found is None:
            self.errors[name] = message
            return None
        return found

    # -- derived ---------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def start(self) -> datetime:
        return local_midnight(self.start_date, self.tz)

    @property
    def end(self) -> datetime:
        """Exclusive end: the start of the day after ``end_date``."""
        return local_midnight(self.end_date + timedelta(days=1), self.tz)

    @property
    def previous_start_date(self) -> date:
        return self.start_date - timedelta(days=self.days)

    @property
    def previous_end_date(self) -> date:
        return self.start_date - timedelta(days=1)

    def query_args(self, **overrides) -> dict[str, str]:
        """The filters as URL parameters (only those set), with ``overrides`` applied."""
        args: dict[str, str] = {"period": self.period}
        if self.period == "custom":
            args["from"] = self.start_date.isoformat()
            args["to"] = self.end_date.isoformat()
        for key, value in (
            ("sequence", self.sequence_id),
            ("workflow", self.workflow_id),
            ("mailbox", self.mailbox_id),
            ("rotation", self.rotation_id),
            ("status", self.status),
            ("reason", self.reason),
        ):
            if value is not None:
                args[key] = str(value)
        if self.errors:  # keep what the user typed, so the form shows it beside the message
            args = {k: v for k, v in self.raw.items() if v}
        for key, value in overrides.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = str(value)
        return args

    def conditions(self, start: datetime | None = None, end: datetime | None = None) -> list:
        """WHERE clauses for these filters over [start, end) (default: the chosen period)."""
        conds = [
            Enrollment.workspace_id == self.workspace_id,
            Enrollment.created_at >= (start or self.start),
            Enrollment.created_at < (end or self.end),
        ]
        if self.sequence_id is not None:
            conds.append(Enrollment.sequence_id == self.sequence_id)
        if self.workflow_id is not None:
            conds.append(Enrollment.workflow_id == self.workflow_id)
        if self.mailbox_id is not None:
            conds.append(Enrollment.mailbox_id == self.mailbox_id)
        if self.rotation_id is not None:
            conds.append(Enrollment.rotation_id == self.rotation_id)
        if self.status is not None:
            conds.append(Enrollment.status == self.status)
        if self.reason is not None:
            conds.append(Enrollment.failure_code == self.reason)
        return conds


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
    return func.sum(case((Enrollment.status == EnrollmentStatus.ENROLLED.value, 1), else_=0))


def _failed():
    return func.sum(case((Enrollment.status == EnrollmentStatus.FAILED.value, 1), else_=0))


def _counts(total, succeeded, failed) -> Counts:
    return Counts(int(total or 0), int(succeeded or 0), int(failed or 0))


def headline(filters: Filters) -> tuple[Counts, Counts]:
    """(this period, the previous period of equal length), in one scan over both periods."""
    start, prev_start = filters.start, local_midnight(filters.previous_start_date, filters.tz)
    in_current = Enrollment.created_at >= start
    ok = Enrollment.status == EnrollmentStatus.ENROLLED.value
    bad = Enrollment.status == EnrollmentStatus.FAILED.value
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
    ok = inner.c.status == EnrollmentStatus.ENROLLED.value
    bad = inner.c.status == EnrollmentStatus.FAILED.value
    return db.session.execute(
        select(
            inner.c.day,
            func.count(),
            func.sum(case((ok, 1), else_=0)),
            func.sum(case((bad, 1), else_=0)),
        ).group_by(inner.c.day)
    ).all()


def _per_day_rows_postgresql(filters: Filters):
    # The local days as a table of [start, end) instants (computed with zoneinfo, so exact
    # across DST) joined to the enrollments: one index range scan per day, already in day
    # order, where grouping on an AT TIME ZONE expression would sort or hash every row of
    # the period under a planner estimate of "one group per row".
    starts = day_starts(filters)
    stamps = postgresql.ARRAY(DateTime(timezone=True))
    days = (
        func.unnest(
            bindparam("day_start", starts[:-1], type_=stamps),
            bindparam("day_end", starts[1:], type_=stamps),
        )
        .table_valued("day_start", "day_end", with_ordinality="day_index")
        .render_derived(name="days")
    )
    rows = db.session.execute(
        select(days.c.day_index, func.count(), _succeeded(), _failed())
        .select_from(days)
        .join(
            Enrollment,
            and_(
                Enrollment.created_at >= days.c.day_start,
                Enrollment.created_at < days.c.day_end,
            ),
        )
        .where(*filters.conditions())
        .group_by(days.c.day_index)
    ).all()
    return [
        (filters.start_date + timedelta(days=int(i) - 1), total, ok, bad)
        for i, total, ok, bad in rows
    ]


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
        result = db.session.execute(query).all()
    else:
        with engine.begin() as connection:
            connection.execute(work_mem)
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
        conds.append(Enrollment.status == EnrollmentStatus.FAILED.value)
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
            link_args=filters.query_args(status="failed", reason=code) if code else None,
            detail=FAILURE_TEXT.get(code or "") or reason,
        )
        for code, t, s, f, reason in rows
    ]


def report(filters: Filters) -> Report | None:
    """Everything the analytics page shows, or None when the filters have errors."""
    if not filters.ok:
        return None
    groups: dict[str, list | None] = dict.fromkeys(DIMENSIONS)
    if db.engine.dialect.name == "postgresql":
        # The breakdowns' scan (the longest) runs on a second connection while this one reads
        # the days and the previous period: PostgreSQL works on both at once.
        with ThreadPoolExecutor(max_workers=1) as pool:
            breakdowns = pool.submit(grouping_sets_rows, filters, db.engine)
            days = per_day(filters)
            groups = breakdowns.result()
        # The period's totals are the sum of its days: only the previous period needs a scan.
        current = Counts(
            sum(d.counts.total for d in days),
            sum(d.counts.succeeded for d in days),
            sum(d.counts.failed for d in days),
        )
        prev_start = local_midnight(filters.previous_start_date, filters.tz)
        previous = _counts(
            *db.session.execute(
                select(func.count(), _succeeded(), _failed()).where(
                    *filters.conditions(start=prev_start, end=filters.start)
                )
            ).one()
        )
    else:
        days = per_day(filters)
        current, previous = headline(filters)
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


# -- chart -------------------------------------------------------------------------------------


@dataclass
class Bar:
    x: float
    width: float
    y_ok: float
    h_ok: float
    y_failed: float
    h_failed: float
    y_queued: float
    h_queued: float
    day: Day


@dataclass
class Chart:
    width: int
    height: int
    top: int
    bottom: int
    left: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    labels: list[tuple[float, str]]
    empty: bool


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def chart(days: list[Day], width: int = 760, height: int = 220) -> Chart:
    """The geometry of a stacked bar chart (succeeded, failed, queued) per day, for inline SVG."""
    left, top, bottom, right = 44, 10, 24, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d.counts.total for d in days), default=0)
    ymax = _nice_max(peak)
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.8, 1)

    def h(n: int) -> float:
        return round(plot_h * n / ymax, 2)

    bars = []
    for i, d in enumerate(days):
        x = round(left + i * slot + (slot - bar_w) / 2, 2)
        h_ok, h_failed, h_queued = h(d.counts.succeeded), h(d.counts.failed), h(d.counts.queued)
        base = top + plot_h
        y_ok = base - h_ok
        y_failed = y_ok - h_failed
        y_queued = y_failed - h_queued
        bars.append(Bar(x, round(bar_w, 2), y_ok, h_ok, y_failed, h_failed, y_queued, h_queued, d))
    ticks = [(round(top + plot_h - plot_h * k / 4, 2), int(ymax * k / 4)) for k in range(5)]
    every = max(1, round(len(days) / 8))
    labels = [
        (round(left + i * slot + slot / 2, 2), d.day.strftime("%b %-d"))
        for i, d in enumerate(days)
        if i % every == 0
    ]
    return Chart(width, height, top, bottom, left, bars, ticks, labels, empty=peak == 0)


# -- execution log (keyset pagination) -------------------------------------------------------


def encode_cursor(created_at: datetime, row_id: int) -> str:
    """A page cursor: the row's (created_at in microseconds since the epoch, id)."""
    micros = (created_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{micros}_{row_id}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    """The (created_at, id) of a cursor, or None when absent or malformed."""
    match = _CURSOR_RE.match(value or "")
    if not match:
        return None
    try:
        created = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(match.group(1)))
    except OverflowError:
        return None
    return created, int(match.group(2))


@dataclass
class LogPage:
    rows: list
    next_cursor: str | None
    prev_cursor: str | None
    cursor_error: str | None = None


LOG_COLUMNS = (
    Enrollment.id,
    Enrollment.created_at,
    Enrollment.portal_id,
    Enrollment.contact_id,
    Enrollment.contact_name,
    Enrollment.contact_email,
    Enrollment.sequence_id,
    Enrollment.sequence_hubspot_id,
    Enrollment.sequence_name,
    Enrollment.workflow_id,
    Enrollment.mailbox_id,
    Enrollment.rotation_id,
    Enrollment.sender_email,
    Enrollment.status,
    Enrollment.outcome,
    Enrollment.failure_code,
    Enrollment.failure_reason,
    Enrollment.attempts,
    Enrollment.finished_at,
    Enrollment.record_type,
    Enrollment.record_id,
    Enrollment.record_name,
)


def log_page(
    filters: Filters,
    after: str | None = None,
    before: str | None = None,
    size: int = LOG_PAGE_SIZE,
) -> LogPage:
    """One page of the log, newest first, keyset-paged on (created_at, id).

    ``after`` continues past a row (older rows); ``before`` goes back (newer rows). Each page is
    an index range scan of ``size + 1`` rows, as fast on page 5,000 as on page 1.
    """
    if not filters.ok:
        return LogPage([], None, None)
    key = tuple_(Enrollment.created_at, Enrollment.id)
    query = select(*LOG_COLUMNS).where(*filters.conditions())
    cursor_error = None
    going_back = False
    if before:
        position = decode_cursor(before)
        if position is None:
            cursor_error = "That page link is broken; showing the newest enrollments."
        else:
            going_back = True
            query = query.where(
                key > tuple_(literal(position[0], Enrollment.created_at.type), literal(position[1]))
            )
    elif after:
        position = decode_cursor(after)
        if position is None:
            cursor_error = "That page link is broken; showing the newest enrollments."
        else:
            query = query.where(
                key < tuple_(literal(position[0], Enrollment.created_at.type), literal(position[1]))
            )
    if going_back:
        query = query.order_by(Enrollment.created_at.asc(), Enrollment.id.asc())
    else:
        query = query.order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
    rows = db.session.execute(query.limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    if going_back:
        rows.reverse()
    has_newer = going_back and more or (not going_back and bool(after) and cursor_error is None)
    has_older = (not going_back and more) or going_back
    return LogPage(
        rows=rows,
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if rows and has_older else None,
        prev_cursor=encode_cursor(rows[0].created_at, rows[0].id) if rows and has_newer else None,
        cursor_error=cursor_error,
    )


def workflow_names(workspace_id: int, ids) -> dict[str, str]:
    """HubSpot workflow id -> name, for the ids given (names come with the sync)."""
    ids = sorted({str(i) for i in ids if i})
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(Workflow.hubspot_id, Workflow.name).where(
                Workflow.workspace_id == workspace_id, Workflow.hubspot_id.in_(ids)
            )
        )
        .tuples()
        .all()
    )


def sender_names(workspace_id: int, rows) -> tuple[dict[int, str], dict[int, str]]:
    """Mailbox emails and rotation names for the ids on a page (two small keyed lookups)."""

    def names(column, label):
        ids = {getattr(r, column) for r in rows if getattr(r, column) is not None}
        if not ids:
            return {}
        model = label.class_
        query = select(model.id, label).where(model.workspace_id == workspace_id, model.id.in_(ids))
        return dict(db.session.execute(query).all())

    return names("mailbox_id", Mailbox.email), names("rotation_id", Rotation.name)


# -- CSV export ---------------------------------------------------------------------------------

EXPORT_HEADER = (
    "created_at",
    "enrollment_id",
    "contact_id",
    "sequence_hubspot_id",
    "sequence_name",
    "workflow_id",
    "sender_email",
    "rotation",
    "status",
    "outcome",
    "failure_code",
    "failure_reason",
    "attempts",
    "finished_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection: prefix with ')."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def export_rows(filters: Filters) -> Iterator[str]:
    """The filtered log as CSV text, chunk by chunk, oldest first, in constant memory.

    Rows come through a server-side cursor (``yield_per``: PostgreSQL streams them) and each
    chunk of CSV is yielded as soon as it is written.
    """
    rotations = dict(
        db.session.execute(
            select(Rotation.id, Rotation.name).where(Rotation.workspace_id == filters.workspace_id)
        ).all()
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    yield buffer.getvalue()
    if not filters.ok:
        return
    query = (
        select(
            Enrollment.created_at,
            Enrollment.id,
            Enrollment.contact_id,
            Enrollment.sequence_hubspot_id,
            Enrollment.sequence_name,
            Enrollment.workflow_id,
            Enrollment.sender_email,
            Enrollment.rotation_id,
            Enrollment.status,
            Enrollment.outcome,
            Enrollment.failure_code,
            Enrollment.failure_reason,
            Enrollment.attempts,
            Enrollment.finished_at,
        )
        .where(*filters.conditions())
        .order_by(Enrollment.created_at, Enrollment.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    tz = filters.tz
    result = db.session.execute(query)
    try:
        for chunk in result.partitions():
            buffer.seek(0)
            buffer.truncate()
            for r in chunk:
                writer.writerow(
                    [
                        r.created_at.astimezone(tz).isoformat(),
                        r.id,
                        csv_safe(r.contact_id),
                        csv_safe(r.sequence_hubspot_id),
                        csv_safe(r.sequence_name),
                        csv_safe(r.workflow_id),
                        csv_safe(r.sender_email),
                        csv_safe(rotations.get(r.rotation_id, "")),
                        r.status,
                        csv_safe(r.outcome),
                        csv_safe(r.failure_code),
                        csv_safe(r.failure_reason),
                        r.attempts,
                        r.finished_at.astimezone(tz).isoformat() if r.finished_at else "",
                    ]
                )
            yield buffer.getvalue()
    finally:
        result.close()


def filter_choices(workspace_id: int) -> dict[str, list]:
    """The options of the filter dropdowns: the workspace's sequences, mailboxes and rotations."""
    sequences = db.session.execute(
        select(Sequence.id, Sequence.name, Sequence.removed_at)
        .where(Sequence.workspace_id == workspace_id)
        .order_by(Sequence.removed_at.is_not(None), func.lower(Sequence.name))
    ).all()
    mailboxes = db.session.execute(
        select(Mailbox.id, Mailbox.email)
        .where(Mailbox.workspace_id == workspace_id)
        .order_by(Mailbox.email)
    ).all()
    rotations = db.session.execute(
        select(Rotation.id, Rotation.name, Rotation.deleted_at)
        .where(Rotation.workspace_id == workspace_id)
        .order_by(func.lower(Rotation.name))
    ).all()
    return {"sequences": sequences, "mailboxes": mailboxes, "rotations": rotations}
