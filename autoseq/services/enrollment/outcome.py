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

log = logging.getLogger(__name__)

# HubSpot's refusals (subCategory) and ours, as the workflow history shows them.
REASONS = {
    "SEQUENCE_NOT_FOUND": "Sequence not found",
    "ALREADY_ENROLLED": "Contact is already enrolled in a sequence",
    "UNSUBSCRIBED": "Contact has unsubscribed from email",
    "UNSUBSCRIBED_PERSONAL": "Contact has unsubscribed from the sender's emails",
    "BOUNCED": "Contact's email address has bounced",
    "BLOCKED_ADDRESS": "Contact's email address is blocked",
    "BLOCKED_DOMAIN": "Contact's email domain is blocked",
    "PREVIOUSLY_MARKED_AS_SPAM": "Contact previously marked email as spam",
    "OTHER_SEND_REJECTED": "HubSpot rejected the send",
    "PERMISSION_DENIED": "Permission denied",
    "NO_CONNECTED_INBOX": "The mailbox is not connected in HubSpot",
    "SEND_LIMIT_EXCEEDED": "The mailbox reached its daily sending limit",
    "CONTACT_NOT_FOUND": "Contact not found",
    "NEEDS_RECONNECT": "HubSpot connection needs reconnecting",
    "HUBSPOT_UNAVAILABLE": "HubSpot was unavailable; gave up after retries",
    "DAILY_LIMIT": "HubSpot's daily API limit was reached",
    "MAILBOX_NOT_FOUND": "Mailbox not found",
    "ROTATION_NOT_FOUND": "Rotation not found",
}


def finish(row: Enrollment, outcome: str, code: str | None = None, reason: str | None = None):
    """Record the enrollment's outcome (``enrolled``, ``already_enrolled`` or ``failed``) and
    commit: the one function through which an outcome changes."""
    row.outcome = outcome
    row.status = (
        EnrollmentStatus.ENROLLED.value if outcome == "enrolled" else EnrollmentStatus.FAILED.value
    )
    row.failure_code = code
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
