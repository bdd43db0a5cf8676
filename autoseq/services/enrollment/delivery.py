"""Delivery: enroll one claimed row's contact through the rate-limited client; record the outcome.

Exactly once: the row is claimed by one drain at a time, its attempts counter is committed before
each enroll call, and before re-sending an attempt that may have reached HubSpot (attempts > 0)
the contact's current enrollment is looked at.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam
from sqlalchemy.orm.attributes import set_committed_value

from ...extensions import db
from ...hubspot import errors
from ...models import Enrollment, EnrollmentStatus, SendMode, Sequence
from ...models.base import utcnow
from ...models.failures import FailureCode
from .. import senders
from . import waiting
from .outcome import REASONS, Outcomes, finish

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=60)
# A transient failure (5xx, 429, timeout) waits this long before the row is tried again; after the
# last one the enrollment fails with HUBSPOT_UNAVAILABLE (the workflow is told, never left hanging).
RETRY_BACKOFF = (5, 30, 120, 600)  # seconds


class Transient(Exception):
    """HubSpot could not be reached or asked us to slow down: try the row again later."""


def final_retry(row: Enrollment) -> bool:
    return (row.retries or 0) >= len(RETRY_BACKOFF)


def deliver(
    row: Enrollment,
    client,
    cache: senders.SenderCache | None = None,
    outcomes: Outcomes | None = None,
) -> str | None:
    """Enroll one queued row and record its outcome; return the outcome.

    Raises :class:`Transient` (after recording nothing final) when HubSpot should be tried again
    later; on the row's last retry the enrollment is failed instead. ``cache``: the sender
    lookups of the drain's batch (:class:`senders.SenderCache`); ``outcomes``: the batch's
    outcomes, recorded together (:class:`.outcome.Outcomes`; None: now, committed).
    """
    try:
        _enroll(row, client, cache, outcomes)
    except (errors.NeedsReconnect, errors.HubSpotAuthError):
        db.session.rollback()
        finish(row, EnrollmentStatus.FAILED, FailureCode.NEEDS_RECONNECT, batch=outcomes)
    except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
        db.session.rollback()
        if isinstance(exc, errors.RateLimited) and _is_daily(exc):
            finish(row, EnrollmentStatus.FAILED, FailureCode.DAILY_LIMIT, batch=outcomes)
        elif final_retry(row):
            finish(row, EnrollmentStatus.FAILED, FailureCode.HUBSPOT_UNAVAILABLE, batch=outcomes)
        else:
            raise Transient(str(exc)) from exc
    return row.status if EnrollmentStatus(row.status).finished else None


def fail_unreachable(row: Enrollment, outcomes: Outcomes | None = None) -> None:
    """The workspace's connection needs reconnecting: the row fails without a call."""
    finish(row, EnrollmentStatus.FAILED, FailureCode.NEEDS_RECONNECT, batch=outcomes)


def _sub_category(exc) -> str | None:
    sub = getattr(exc, "sub_category", None)
    return str(sub).upper() if sub else None


def _is_daily(exc) -> bool:
    for attr in ("policy_name", "policy", "message"):
        value = getattr(exc, attr, None)
        if value and "DAILY" in str(value).upper():
            return True
    context = getattr(exc, "context", None) or {}
    return "DAILY" in str(context).upper()


def _sequence(row: Enrollment) -> Sequence | None:
    sequence = db.session.get(Sequence, row.sequence_id) if row.sequence_id else None
    if sequence is None:
        sequence = db.session.scalar(
            db.select(Sequence).filter_by(
                workspace_id=row.workspace_id, hubspot_id=row.sequence_hubspot_id
            )
        )
        if sequence is not None:
            row.sequence_id, row.sequence_name = sequence.id, sequence.name
    return sequence


def _unsendable(row: Enrollment, sequence: Sequence | None) -> str | None:
    """Why the row can never be sent (a failure code), or None."""
    if sequence is None or sequence.removed_at is not None:
        return FailureCode.SEQUENCE_NOT_FOUND
    if row.send_mode == SendMode.MAILBOX and row.mailbox_id is None:
        return FailureCode.MAILBOX_NOT_FOUND
    if row.send_mode == SendMode.ROTATION and row.rotation_id is None:
        return FailureCode.ROTATION_NOT_FOUND
    return None


def _enroll(row: Enrollment, client, cache, outcomes: Outcomes | None) -> None:
    sequence = _sequence(row)
    code = _unsendable(row, sequence)
    if code:
        finish(row, EnrollmentStatus.FAILED, code, batch=outcomes)
        return
    if row.attempts > 0 and _already_in_sequence(row, client, outcomes):
        return
    excluded: list[int] = []
    while True:
        try:
            choice = senders.choose_sender(
                row.workspace_id,
                sequence,
                mailbox_id=row.mailbox_id if row.send_mode == SendMode.MAILBOX else None,
                rotation_id=row.rotation_id if row.send_mode == SendMode.ROTATION else None,
                exclude_mailbox_ids=tuple(excluded),
                cache=cache,
            )
        except senders.NoSender as exc:
            reason = getattr(exc, "message", None) or str(exc)
            finish(row, EnrollmentStatus.FAILED, exc.code, reason, batch=outcomes)
            return
        if not _attempt(row, client, choice, excluded, outcomes):
            return


def _attempt(row: Enrollment, client, choice, excluded: list[int], outcomes) -> bool:
    """One enroll call with ``choice``; True to try the next mailbox of the rotation."""
    _count_attempt(row, choice.mailbox.id, choice.alias or choice.sender_email)
    try:
        result = client.enroll(
            user_id=choice.hubspot_user.hubspot_user_id,
            contact_id=row.contact_id,
            sequence_id=row.sequence_hubspot_id,
            sender_email=choice.sender_email,
            sender_alias=choice.alias,
        )
    except (
        errors.HubSpotUnavailable,
        errors.RateLimited,
        errors.NeedsReconnect,
        errors.HubSpotAuthError,
    ):
        senders.release(choice)
        raise
    except errors.HubSpotError as exc:
        senders.release(choice)
        return _refused(row, client, choice, excluded, exc, outcomes)
    enrollment_id = str((result or {}).get("id") or "") or None
    finish(row, EnrollmentStatus.ENROLLED, batch=outcomes, hubspot_enrollment_id=enrollment_id)
    return False


def _count_attempt(row: Enrollment, mailbox_id: int, sender_email: str) -> None:
    """Commit the attempt (and its sender) before HubSpot is called: a killed worker leaves
    attempts > 0 behind. One prepared UPDATE, not an ORM flush: a queued row is in no analytics
    rollup, so the flush hook's locked read of the row's old values has nothing to count here
    (with the ORM this commit was an eighth of a drain's CPU, bench_action.py's profile)."""
    values = {
        "mailbox_id": mailbox_id,
        "sender_email": sender_email,
        "attempts": (row.attempts or 0) + 1,
    }
    params = {"row_id": row.id, "updated_at": utcnow(), **values}
    db.session.connection().execute(_attempt_update(), params)
    for name, value in values.items():
        set_committed_value(row, name, value)
    db.session.commit()


@functools.cache
def _attempt_update():
    table = Enrollment.__table__
    return (
        db.update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            mailbox_id=bindparam("mailbox_id"),
            sender_email=bindparam("sender_email"),
            attempts=bindparam("attempts"),
            updated_at=bindparam("updated_at"),
        )
    )


def _refused(row: Enrollment, client, choice, excluded: list[int], exc, outcomes) -> bool:
    """HubSpot refused the enrollment: fail over, recognise our own earlier success, or fail."""
    code = _sub_category(exc)
    if code is None and getattr(exc, "status", None) == 404:
        code = FailureCode.SEQUENCE_NOT_FOUND
    if code == FailureCode.NO_CONNECTED_INBOX:
        senders.mark_disconnected(choice.mailbox.id, getattr(exc, "message", str(exc)))
        if row.send_mode == SendMode.ROTATION and not excluded:
            excluded.append(choice.mailbox.id)
            return True  # fail over to the next mailbox of the rotation, once
    if code == FailureCode.ALREADY_ENROLLED:
        # A retried POST (ours or the transport's) may have enrolled it already.
        if not _already_in_sequence(row, client, outcomes):
            if waiting.should_wait(row):
                waiting.start(row)  # "wait": checked until the contact's sequence ends
            else:
                finish(row, EnrollmentStatus.ALREADY_ENROLLED, code, batch=outcomes)
        return False
    reason = REASONS.get(code or "") or (getattr(exc, "message", None) or str(exc))
    finish(row, EnrollmentStatus.FAILED, code or FailureCode.HUBSPOT_ERROR, reason, batch=outcomes)
    return False


def _already_in_sequence(row: Enrollment, client, outcomes: Outcomes | None = None) -> bool:
    """A previous attempt may have reached HubSpot: is the contact in this very sequence?"""
    current = client.get_contact_enrollment(row.contact_id)
    if not current or str(current.get("sequenceId")) != str(row.sequence_hubspot_id):
        return False
    enrolled_at = _parse_time(current.get("enrolledAt"))
    # Enrolled into this sequence before this execution arrived: someone else's enrollment.
    if enrolled_at is None or enrolled_at >= row.created_at - CLOCK_SKEW:
        values = {"hubspot_enrollment_id": str(current.get("id") or "") or None}
        if current.get("enrolledByEmail") and not row.sender_email:
            values["sender_email"] = current["enrolledByEmail"]
        finish(row, EnrollmentStatus.ENROLLED, batch=outcomes, **values)
        return True
    return False


def _parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_queued(row: Enrollment) -> bool:
    return row.status == EnrollmentStatus.QUEUED
