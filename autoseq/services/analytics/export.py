"""CSV export of the filtered log, streamed in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import (
    select,
)

from ...extensions import db
from ...models import (
    Enrollment,
    EnrollmentStatus,
    Rotation,
)
from .filters import EXPORT_CHUNK, Filters

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
    "callback_error",
    "attempts",
    "finished_at",
    "record_type",
    "record_id",
    "record_name",
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


def _status_cells(status: str) -> tuple[str, str]:
    """The ``status`` and ``outcome`` columns as before the two became one: the page's counter
    (queued, enrolled, failed) and, once finished, the ``enrollment_status`` the workflow got."""
    state = EnrollmentStatus(status)
    return state.counter.value, (state.value if state.finished else "")


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
            Enrollment.failure_code,
            Enrollment.failure_reason,
            Enrollment.callback_error,
            Enrollment.attempts,
            Enrollment.finished_at,
            Enrollment.record_type,
            Enrollment.record_id,
            Enrollment.record_name,
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
                        *_status_cells(r.status),
                        csv_safe(r.failure_code),
                        csv_safe(r.failure_reason),
                        csv_safe(r.callback_error),
                        r.attempts,
                        r.finished_at.astimezone(tz).isoformat() if r.finished_at else "",
                        csv_safe(r.record_type),
                        csv_safe(r.record_id),
                        csv_safe(r.record_name),
                    ]
                )
            yield buffer.getvalue()
    finally:
        result.close()
