"""An enrollment's outcome: the one place it changes (:func:`finish`), and how it reads.

Every outcome an enrollment ever gets (enrolled, already enrolled, failed with a code) is recorded
by :func:`finish` and nowhere else, so whatever must follow an outcome change (a log line today,
analytics rollups tomorrow) is added here once.
"""

from __future__ import annotations

import logging

from ...extensions import db
from ...models import Enrollment, EnrollmentStatus
from ...models.base import utcnow
from ...models.failures import FailureCode

log = logging.getLogger(__name__)

# The failure codes (models/failures.py) as the workflow history shows them.
REASONS = {
    FailureCode.SEQUENCE_NOT_FOUND: "Sequence not found",
    FailureCode.ALREADY_ENROLLED: "Contact is already enrolled in a sequence",
    FailureCode.UNSUBSCRIBED: "Contact has unsubscribed from email",
    FailureCode.UNSUBSCRIBED_PERSONAL: "Contact has unsubscribed from the sender's emails",
    FailureCode.BOUNCED: "Contact's email address has bounced",
    FailureCode.BLOCKED_ADDRESS: "Contact's email address is blocked",
    FailureCode.BLOCKED_DOMAIN: "Contact's email domain is blocked",
    FailureCode.PREVIOUSLY_MARKED_AS_SPAM: "Contact previously marked email as spam",
    FailureCode.OTHER_SEND_REJECTED: "HubSpot rejected the send",
    FailureCode.PERMISSION_DENIED: "Permission denied",
    FailureCode.NO_CONNECTED_INBOX: "The mailbox is not connected in HubSpot",
    FailureCode.SEND_LIMIT_EXCEEDED: "The mailbox reached its daily sending limit",
    FailureCode.CONTACT_NOT_FOUND: "Contact not found",
    FailureCode.NEEDS_RECONNECT: "HubSpot connection needs reconnecting",
    FailureCode.HUBSPOT_UNAVAILABLE: "HubSpot was unavailable; gave up after retries",
    FailureCode.DAILY_LIMIT: "HubSpot's daily API limit was reached",
    FailureCode.MAILBOX_NOT_FOUND: "Mailbox not found",
    FailureCode.ROTATION_NOT_FOUND: "Rotation not found",
}


def finish(row: Enrollment, outcome: str, code: str | None = None, reason: str | None = None):
    """Record the enrollment's outcome (``enrolled``, ``already_enrolled`` or ``failed``) and
    commit: the one function through which an outcome changes."""
    row.outcome = outcome
    row.status = (
        EnrollmentStatus.ENROLLED.value if outcome == "enrolled" else EnrollmentStatus.FAILED.value
    )
    row.failure_code = None if code is None else str(code)  # FailureCode, or HubSpot's own
    row.failure_reason = reason if reason is not None else (REASONS.get(code) if code else None)
    row.finished_at = utcnow()
    row.job_id = None
    row.due_at = None
    db.session.commit()
    log.info("enrollment %s (callback %s): %s %s", row.id, row.callback_id, outcome, code or "")


def output_fields(row: Enrollment) -> dict:
    """What the workflow sees once the execution completes."""
    succeeded = row.outcome == "enrolled"
    return {
        "hs_execution_state": "SUCCESS" if succeeded else "FAIL_CONTINUE",
        "enrollment_status": row.outcome or "failed",
        "failure_reason": row.failure_reason or "",
        "sender_email": row.sender_email or "",
        "sequence_name": row.sequence_name or "",
    }
