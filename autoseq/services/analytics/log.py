"""The execution log: one keyset-paged page of enrollments, and the names its rows show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ...extensions import db
from ...models import (
    Enrollment,
    Mailbox,
    Rotation,
    Workflow,
)
from .. import cursors
from .filters import LOG_PAGE_SIZE, Filters

# -- execution log (keyset pagination) -------------------------------------------------------


LOG_LIST = "analytics:log"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(created_at: datetime, row_id: int) -> str:
    """A page cursor (:mod:`..cursors`): the row's created_at (microseconds since the epoch)
    and id."""
    return cursors.encode(LOG_LIST, (created_at_micros(created_at), row_id))


def created_at_micros(created_at: datetime) -> int:
    return (created_at - _EPOCH) // timedelta(microseconds=1)


def decode_cursor(value: str) -> tuple[datetime, int]:
    """The (created_at, id) of a cursor made by :func:`encode_cursor`; cursors.BadCursor else."""
    micros, row_id = cursors.decode(LOG_LIST, value, (int, int))
    try:
        return _EPOCH + timedelta(microseconds=micros), row_id
    except OverflowError:
        raise cursors.BadCursor("the cursor does not fit this list") from None


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
    Enrollment.failure_code,
    Enrollment.failure_reason,
    Enrollment.callback_error,
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
    key = (Enrollment.created_at, Enrollment.id)
    query = select(*LOG_COLUMNS).where(*filters.conditions())
    cursor_error = None
    going_back = bool(before)
    try:
        if before:  # newer rows, read oldest first
            query = query.where(cursors.beyond(key, decode_cursor(before)))
        elif after:  # older rows
            query = query.where(cursors.beyond(key, decode_cursor(after), descending=True))
    except cursors.BadCursor as exc:
        # The view answers 400 with this, and the newest rows below it.
        cursor_error = f"That page link is broken ({exc.reason}); showing the newest enrollments."
        going_back = False
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
