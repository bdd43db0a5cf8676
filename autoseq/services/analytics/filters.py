"""Analytics filters: the query parameters of a page, checked against one workspace."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    func,
    select,
)

from ...extensions import db
from ...models import (
    STATUS_COUNTERS,
    Enrollment,
    Mailbox,
    Rotation,
    Sequence,
    Workspace,
)
from ..enrollment import REASONS

# What each failure code means, as the enrollment service words it (the table shows this,
# and the log shows each row's own recorded reason).
FAILURE_TEXT = REASONS

PERIODS = ("7", "30", "90", "custom")
DEFAULT_PERIOD = "30"
MAX_RANGE_DAYS = 366
# The status filter's choices: the page's counters (failed takes in already_enrolled).
STATUSES = tuple(STATUS_COUNTERS)
LOG_PAGE_SIZE = 50
EXPORT_CHUNK = 2000

_WORKFLOW_RE = re.compile(r"^[0-9]{1,32}$")
_REASON_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
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
            statuses = STATUS_COUNTERS[self.status]
            conds.append(
                Enrollment.status == statuses[0]
                if len(statuses) == 1
                else Enrollment.status.in_(statuses)
            )
        if self.reason is not None:
            conds.append(Enrollment.failure_code == self.reason)
        return conds


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
