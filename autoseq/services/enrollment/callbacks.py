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
from ...models import Enrollment, EnrollmentStatus, RecordExecution
from ...models.base import utcnow
from ...models.failures import FailureCode
from .outcome import execution_output_fields, output_fields

log = logging.getLogger(__name__)

CALLBACK_BATCH = 100  # HubSpot's batch completion endpoint takes 100 at once
# Completions wait up to this long to be sent together: at a portal's ceiling (11 enrollments a
# second) a 3 s wait fills batches of ~33, so completions cost 0.03 calls per enrollment.
CALLBACK_ERROR_MAX = 200


class CallbacksTransient(Exception):
    """HubSpot could not take the completions now (5xx, 429): try again on the next run."""


def _pending(workspace_id: int, model=Enrollment):
    """Finished rows whose callback is still to be completed (and can be). ``model``: the
    enrollment rows, or the record executions (whose own rows have no callback of their own)."""
    conds = (
        model.workspace_id == workspace_id,
        model.finished_at.is_not(None),
        model.callback_completed_at.is_(None),
        model.callback_error.is_(None),
        db.or_(
            model.failure_code.is_(None),
            model.failure_code != FailureCode.NEEDS_RECONNECT,
        ),
    )
    if model is Enrollment:
        conds += (Enrollment.execution_id.is_(None),)
    return conds


def _outputs(row) -> dict:
    if isinstance(row, RecordExecution):
        return execution_output_fields(row)
    return output_fields(row)


def _mark_completed(rows) -> None:
    """Record the completions (not committed). A record execution's rows are completed with it."""
    for model in (Enrollment, RecordExecution):
        ids = [row.id for row in rows if isinstance(row, model)]
        if not ids:
            continue
        now = utcnow()
        db.session.execute(
            db.update(model)
            .where(model.id.in_(ids), model.callback_completed_at.is_(None))
            .values(callback_completed_at=now)
        )
        if model is RecordExecution:
            db.session.execute(
                db.update(Enrollment)
                .where(Enrollment.execution_id.in_(ids), Enrollment.callback_completed_at.is_(None))
                .values(callback_completed_at=now)
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
    """How many completions wait, and since when (enrollments and record executions, in one
    query: the drain asks after every batch)."""
    counts = db.session.execute(
        db.union_all(
            db.select(db.func.count(), db.func.min(Enrollment.finished_at)).where(
                *_pending(workspace_id)
            ),
            db.select(db.func.count(), db.func.min(RecordExecution.finished_at)).where(
                *_pending(workspace_id, RecordExecution)
            ),
        )
    ).all()
    oldest = min((first for _, first in counts if first is not None), default=None)
    return Pending(sum(int(n or 0) for n, _ in counts), oldest)


def _batch(workspace_id: int, after_id: int, model=Enrollment) -> list:
    return db.session.scalars(
        db.select(model)
        .where(*_pending(workspace_id, model), model.id > after_id)
        .order_by(model.id)
        .limit(CALLBACK_BATCH)
    ).all()


def flush(workspace_id: int, client, take_slot=None) -> int:
    """Complete the workspace's pending callbacks, 100 per call; how many were completed.

    ``take_slot()`` is asked before each batch call and may say no (the portal's budget is spent):
    the rest waits for the next run. Raises :class:`CallbacksTransient` on a 5xx or 429.
    """
    completed = 0
    for model in (Enrollment, RecordExecution):
        after_id = 0
        while True:
            rows = _batch(workspace_id, after_id, model)
            if not rows:
                break
            if take_slot is not None and not take_slot():
                return completed
            after_id = rows[-1].id
            completed += _send(rows, client)
    return completed


def _send(rows: list[Enrollment], client) -> int:
    try:
        client.complete_callbacks((row.callback_id, _outputs(row)) for row in rows)
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
    _mark_completed(rows)
    db.session.commit()
    return len(rows)


def complete_one(row: Enrollment, client) -> bool:
    """Tell HubSpot how one execution went; True once completed. Never re-enrolls."""
    try:
        client.complete_callback(row.callback_id, _outputs(row))
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
    _mark_completed([row])
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
