"""Callbacks: tell HubSpot how each execution went, in batches per workspace (100 a call).

A completion is recorded only once HubSpot accepted its batch. A batch HubSpot refuses (4xx: one
item expired, or already completed because our record of an earlier send was lost) is sent again
item by item, where HubSpot's answer for an already completed callback (400 "Callback ... is
already completed") counts as done and a refused one is recorded on the row (``callback_error``)
and never sent again. A 5xx or 429 leaves the batch for the drain's next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ...extensions import db
from ...hubspot import errors
from ...models import Enrollment, EnrollmentStatus
from ...models.base import utcnow
from ...models.failures import FailureCode
from .outcome import output_fields

log = logging.getLogger(__name__)

CALLBACK_BATCH = 100  # HubSpot's batch completion endpoint takes 100 at once
# Completions wait up to this long to be sent together: at a portal's ceiling (11 enrollments a
# second) a 3 s wait fills batches of ~33, so completions cost 0.03 calls per enrollment.
CALLBACK_ERROR_MAX = 200


class CallbacksTransient(Exception):
    """HubSpot could not take the completions now (5xx, 429): try again on the next run."""


def _pending(workspace_id: int):
    """Finished rows whose callback is still to be completed (and can be)."""
    return (
        Enrollment.workspace_id == workspace_id,
        Enrollment.finished_at.is_not(None),
        Enrollment.callback_completed_at.is_(None),
        Enrollment.callback_error.is_(None),
        db.or_(
            Enrollment.failure_code.is_(None),
            Enrollment.failure_code != FailureCode.NEEDS_RECONNECT,
        ),
    )


@dataclass
class Pending:
    count: int
    oldest: datetime | None

    def due_in(self, delay: float) -> float | None:
        """Seconds until these should be sent (0: now), None when there are none."""
        if not self.count or self.oldest is None:
            return None
        if self.count >= CALLBACK_BATCH:
            return 0.0
        return max(0.0, (self.oldest + timedelta(seconds=delay) - utcnow()).total_seconds())


def pending(workspace_id: int) -> Pending:
    count, oldest = db.session.execute(
        db.select(db.func.count(), db.func.min(Enrollment.finished_at)).where(
            *_pending(workspace_id)
        )
    ).one()
    return Pending(int(count or 0), oldest)


def _batch(workspace_id: int, after_id: int) -> list[Enrollment]:
    return db.session.scalars(
        db.select(Enrollment)
        .where(*_pending(workspace_id), Enrollment.id > after_id)
        .order_by(Enrollment.id)
        .limit(CALLBACK_BATCH)
    ).all()


def flush(workspace_id: int, client, take_slot=None) -> int:
    """Complete the workspace's pending callbacks, 100 per call; how many were completed.

    ``take_slot()`` is asked before each batch call and may say no (the portal's budget is spent):
    the rest waits for the next run. Raises :class:`CallbacksTransient` on a 5xx or 429.
    """
    completed, after_id = 0, 0
    while True:
        rows = _batch(workspace_id, after_id)
        if not rows or (take_slot is not None and not take_slot()):
            return completed
        after_id = rows[-1].id
        completed += _send(rows, client)


def _send(rows: list[Enrollment], client) -> int:
    try:
        client.complete_callbacks((row.callback_id, output_fields(row)) for row in rows)
    except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
        db.session.rollback()
        raise CallbacksTransient(str(exc)) from exc
    except errors.NeedsReconnect:
        db.session.rollback()
        return 0
    except errors.HubSpotError as exc:
        db.session.rollback()
        log.warning("HubSpot refused a batch of %d completions (%s): one by one", len(rows), exc)
        return sum(complete_one(row, client) for row in rows)
    db.session.execute(
        db.update(Enrollment)
        .where(
            Enrollment.id.in_([row.id for row in rows]),
            Enrollment.callback_completed_at.is_(None),
        )
        .values(callback_completed_at=utcnow())
    )
    db.session.commit()
    return len(rows)


def complete_one(row: Enrollment, client) -> bool:
    """Tell HubSpot how one execution went; True once completed. Never re-enrolls."""
    try:
        client.complete_callback(row.callback_id, output_fields(row))
    except errors.NeedsReconnect:
        db.session.rollback()
        log.warning("callback %s not completed: connection needs reconnecting", row.callback_id)
        return False
    except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
        db.session.rollback()
        raise CallbacksTransient(str(exc)) from exc
    except errors.HubSpotError as exc:
        db.session.rollback()
        message = str(getattr(exc, "message", "") or exc)
        if "already completed" not in message.lower():
            # Expired or unknown to HubSpot: no retry can help; recorded on the row, not retried.
            log.error("callback %s refused by HubSpot: %s", row.callback_id, message)
            row.callback_error = message[:CALLBACK_ERROR_MAX] or "refused"
            db.session.commit()
            return False
    row.callback_completed_at = utcnow()
    db.session.commit()
    return True


def callback_state(row: Enrollment) -> str:
    """``pending``, ``completed``, ``refused`` or ``not_sent`` (the connection needs a reconnect),
    for the enrollment's row and the log."""
    if row.callback_completed_at is not None:
        return "completed"
    if row.callback_error:
        return "refused"
    if row.status == EnrollmentStatus.QUEUED:
        return "pending"
    if row.failure_code == FailureCode.NEEDS_RECONNECT:
        return "not_sent"
    return "pending"
