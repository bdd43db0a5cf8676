"""Waiting: "already in a sequence" handled by waiting for the contact's sequence to end.

The action's input ``when_already_enrolled`` is ``skip`` (the default: HubSpot's ALREADY_ENROLLED
refusal finishes the row ``already_enrolled``) or ``wait`` (with ``max_wait_days``, default 14,
at most 90). A waiting row is a queued row with ``wait_until`` set (its deadline: the execution's
arrival plus the days) and ``due_at`` its next check. The workflow's callback stays blocked (the
BLOCK answer's expiration covers the wait: :func:`block_expiration`).

The drain claims fresh rows first and checks waiting rows only with the slots they left, and no
more than ``WAIT_CHECK_SHARE`` of the portal's budget (a limiter of its own, on top of the
portal's). A check is one contact-enrollment read: free, the row goes back into the queue
(``wait_until`` cleared, ``due_at`` now) and is enrolled like any row; still in a sequence, the
next check is scheduled (``WAIT_CHECK_FIRST`` seconds doubling to ``WAIT_CHECK_MAX``, jittered);
past its deadline, the row finishes ``FAIL_CONTINUE`` with ``WAIT_TIMED_OUT``. A check changes
only the row's schedule, so a worker killed mid-check loses nothing; exactly once stays the
row's (claims, attempts, and the look at the contact before a re-send, as for every row).
"""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime, timedelta

from flask import current_app

from ... import queue
from ...extensions import db
from ...hubspot import errors
from ...hubspot.ratelimit import RateLimiter
from ...models import Enrollment, EnrollmentStatus
from ...models.base import utcnow
from ...models.failures import FailureCode
from .claims import claim_rows
from .outcome import finish

log = logging.getLogger(__name__)

SKIP, WAIT = "skip", "wait"
DEFAULT_WAIT_DAYS = 14
MAX_WAIT_DAYS = 90
CHECK_PREFIX = "autoseq:wait-checks:"  # the checks' own limiter (a share of the portal's)
JITTER = 0.2  # each check's delay is the schedule's, times 1 +- this


class InvalidWait(ValueError):
    pass


def wait_days(input_fields: dict | None) -> float | None:
    """The days the execution waits for a sequence to end, None to skip; InvalidWait if the
    inputs are not ones the action offers."""
    fields = input_fields or {}
    choice = fields.get("when_already_enrolled")
    choice = SKIP if choice in (None, "") else str(choice).strip().lower()
    if choice not in (SKIP, WAIT):
        raise InvalidWait("inputFields.when_already_enrolled must be skip or wait")
    if choice == SKIP:
        return None
    raw = fields.get("max_wait_days")
    if raw in (None, ""):
        return float(DEFAULT_WAIT_DAYS)
    try:
        days = float(raw)
    except (TypeError, ValueError):
        raise InvalidWait("inputFields.max_wait_days must be a number") from None
    if not (0 < days <= MAX_WAIT_DAYS) or math.isnan(days):
        raise InvalidWait(f"inputFields.max_wait_days must be above 0 and at most {MAX_WAIT_DAYS}")
    return days


def block_expiration(input_fields: dict | None) -> str:
    """``hs_expiration_duration`` of the BLOCK answer: a day, or the wait plus a day."""
    try:
        days = wait_days(input_fields)
    except InvalidWait:
        days = None
    return "P1D" if days is None else f"P{math.ceil(days) + 1}D"


def should_wait(row: Enrollment) -> bool:
    try:
        return wait_days(row.input_fields) is not None
    except InvalidWait:
        return False


def deadline(row: Enrollment) -> datetime:
    days = wait_days(row.input_fields) or 0.0
    return row.created_at + timedelta(days=days)


def start(row: Enrollment) -> None:
    """HubSpot refused: the contact is in another sequence. Wait (first check scheduled), or
    finish with the timeout when the wait is already over. Commits."""
    now = utcnow()
    until = deadline(row)
    if now >= until:
        finish(row, EnrollmentStatus.FAILED, FailureCode.WAIT_TIMED_OUT)
        return
    row.wait_until = until
    row.wait_checks = 0
    row.due_at = min(until, now + timedelta(seconds=_delay(0)))
    row.job_id = None
    db.session.commit()
    log.info("enrollment %s: contact %s in another sequence; waiting", row.id, row.contact_id)


def _delay(checks: int) -> float:
    cfg = current_app.config
    first, cap = float(cfg["WAIT_CHECK_FIRST"]), float(cfg["WAIT_CHECK_MAX"])
    base = min(cap, first * (2 ** min(checks, 30)))
    return max(0.05, base * random.uniform(1 - JITTER, 1 + JITTER))


def check_limiter() -> RateLimiter:
    """At most ``WAIT_CHECK_SHARE`` of the portal's window goes to checks."""
    cfg = current_app.config
    limit, window = cfg["HUBSPOT_RATE_LIMIT"]
    share = max(1, int(int(limit) * float(cfg["WAIT_CHECK_SHARE"])))
    return RateLimiter(queue.redis_connection(), share, window, prefix=CHECK_PREFIX)


def claim(workspace_id: int, job_id: str, limit: int) -> list[Enrollment]:
    """Claim up to ``limit`` waiting rows whose check is due, the oldest check first
    (:func:`.claims.claim_rows`)."""
    now = utcnow()
    return claim_rows(
        Enrollment,
        due=(
            Enrollment.workspace_id == workspace_id,
            Enrollment.status == EnrollmentStatus.QUEUED.value,
            Enrollment.wait_until.is_not(None),
            Enrollment.due_at <= now,
        ),
        still=(
            Enrollment.status == EnrollmentStatus.QUEUED.value,
            Enrollment.wait_until.is_not(None),
        ),
        order_by=(Enrollment.due_at, Enrollment.id),
        job_id=job_id,
        limit=limit,
        now=now,
    )


def check(row: Enrollment, client) -> str:
    """Look once whether the waiting row's contact is free: ``free`` (back in the queue, due
    now), ``waiting`` (next check scheduled) or ``timed_out`` (finished). Commits."""
    now = utcnow()
    if row.wait_until is not None and now >= row.wait_until:
        finish(row, EnrollmentStatus.FAILED, FailureCode.WAIT_TIMED_OUT)
        return "timed_out"
    try:
        current = client.get_contact_enrollment(row.contact_id)
    except (errors.HubSpotUnavailable, errors.RateLimited):
        db.session.rollback()
        current = {"unknown": True}  # look again at the next check
    except (errors.NeedsReconnect, errors.HubSpotAuthError):
        db.session.rollback()
        finish(row, EnrollmentStatus.FAILED, FailureCode.NEEDS_RECONNECT)
        return "failed"
    if not current:
        row.wait_until = None
        row.due_at = now
        row.job_id = None
        db.session.commit()
        log.info("enrollment %s: contact %s is free; enrolling", row.id, row.contact_id)
        return "free"
    row.wait_checks = (row.wait_checks or 0) + 1
    row.due_at = min(row.wait_until, now + timedelta(seconds=_delay(row.wait_checks)))
    row.job_id = None
    db.session.commit()
    return "waiting"


def waiting_count(workspace_id: int) -> int:
    """Executions waiting for a contact's sequence to end (the pages' small count)."""
    return int(
        db.session.scalar(
            db.select(db.func.count()).where(
                Enrollment.workspace_id == workspace_id,
                Enrollment.status == EnrollmentStatus.QUEUED.value,
                Enrollment.wait_until.is_not(None),
            )
        )
        or 0
    )
