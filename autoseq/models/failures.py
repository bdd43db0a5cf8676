"""FailureCode: every failure the product records on an enrollment, in one vocabulary.

Stored as its string value (``enrollments.failure_code``), so rows written before the enum read the
same. HubSpot may answer a refusal (``subCategory``) not listed here: it is stored as HubSpot sent
it, and reads as HubSpot's message.
"""

from __future__ import annotations

import enum


class FailureCode(enum.StrEnum):
    # HubSpot refused the enrollment (the subCategory of its 4xx answer)
    SEQUENCE_NOT_FOUND = "SEQUENCE_NOT_FOUND"
    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    UNSUBSCRIBED_PERSONAL = "UNSUBSCRIBED_PERSONAL"
    BOUNCED = "BOUNCED"
    BLOCKED_ADDRESS = "BLOCKED_ADDRESS"
    BLOCKED_DOMAIN = "BLOCKED_DOMAIN"
    PREVIOUSLY_MARKED_AS_SPAM = "PREVIOUSLY_MARKED_AS_SPAM"
    OTHER_SEND_REJECTED = "OTHER_SEND_REJECTED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NO_CONNECTED_INBOX = "NO_CONNECTED_INBOX"
    SEND_LIMIT_EXCEEDED = "SEND_LIMIT_EXCEEDED"
    CONTACT_NOT_FOUND = "CONTACT_NOT_FOUND"
    HUBSPOT_ERROR = "HUBSPOT_ERROR"  # a refusal without a subCategory
    # HubSpot could not be used
    NEEDS_RECONNECT = "NEEDS_RECONNECT"
    HUBSPOT_UNAVAILABLE = "HUBSPOT_UNAVAILABLE"
    DAILY_LIMIT = "DAILY_LIMIT"
    # the execution's inputs or the senders (services/senders.py refusals)
    MAILBOX_NOT_FOUND = "MAILBOX_NOT_FOUND"
    ROTATION_NOT_FOUND = "ROTATION_NOT_FOUND"
    ROTATION_DELETED = "ROTATION_DELETED"
    ROTATION_EMPTY = "ROTATION_EMPTY"
    ALL_AT_CAP = "ALL_AT_CAP"
    NO_ELIGIBLE_MAILBOX = "NO_ELIGIBLE_MAILBOX"
    MAILBOX_UNAVAILABLE = "MAILBOX_UNAVAILABLE"
    # a deal, company or ticket workflow (services/enrollment/records.py)
    NO_ASSOCIATED_CONTACT = "NO_ASSOCIATED_CONTACT"
    RECORD_NOT_FOUND = "RECORD_NOT_FOUND"
    MISSING_SCOPE = "MISSING_SCOPE"
    # "Already in a sequence: wait": the contact's sequence outlasted the wait
    WAIT_TIMED_OUT = "WAIT_TIMED_OUT"
