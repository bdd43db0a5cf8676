"""Enrollment: record a workflow execution once, enroll the contact once, complete the callback.

The web side (:func:`parse_execution`, :func:`record_execution`, :func:`ensure_enqueued`) is
fast and touches only the database and Redis. The worker side (:func:`process_enrollment`) picks
the sender and calls HubSpot through the rate-limited client; the callbacks it finishes are
completed together, per workspace, by :func:`flush_callbacks` (HubSpot's batch endpoint, 100 a
call), so an enrollment costs about one HubSpot call instead of two.

Exactly once: one row per callback id (unique constraint), one job id per row, the attempts
counter committed before each call to HubSpot, and, before re-sending an attempt that may have
reached HubSpot, a look at the contact's current enrollment.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.utils import current_timestamp
from sqlalchemy import JSON, BigInteger, Integer, String, bindparam, func
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..jobs import ALIVE_TTL, enqueue, get_queue, job_alive, redis_connection
from ..models import (
    Enrollment,
    EnrollmentStatus,
    HubSpotConnection,
    Mailbox,
    Rotation,
    SendMode,
    Sequence,
)
from ..models.base import UTCDateTime, utcnow
from ..models.enrollments import SEQUENCE_NAME_MAX

log = logging.getLogger(__name__)

JOB_FUNC = "autoseq.jobs.enrollments.enroll_contact"
FLUSH_FUNC = "autoseq.jobs.enrollments.complete_callbacks"
# Completions wait this long to be sent together (HubSpot's batch endpoint takes 100 at once): a
# steady stream then costs one enroll call per contact plus a batch call per second per portal.
CALLBACK_FLUSH_DELAY = 1.0  # seconds (config CALLBACK_FLUSH_DELAY; 0 sends at once)
CALLBACK_BATCH = 100
FLUSH_RETRY = (5, (2, 10, 30, 120, 600))  # a flush refused by a 5xx/429 is tried again
QUEUE = "enrollments"
MAX_ID_LENGTH = 128
CLOCK_SKEW = timedelta(seconds=60)
ENQUEUE_MARKER_TTL = 60  # seconds

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


class InvalidExecution(ValueError):
    """The execution payload can never succeed (HubSpot must not retry it): answer 400."""


class UnknownPortal(LookupError):
    """No workspace is connected to this portal."""


class Transient(Exception):
    """HubSpot could not be reached or asked us to slow down: retry the job later."""


@dataclass
class Execution:
    callback_id: str
    portal_id: int
    workflow_id: str | None
    action_definition_id: str | None
    contact_id: str
    sequence_hubspot_id: str
    send_mode: str
    mailbox_ref: str | None
    rotation_ref: str | None
    input_fields: dict = field(default_factory=dict)
    contact_name: str | None = None
    contact_email: str | None = None


def _contact_details(obj: dict) -> tuple[str | None, str | None]:
    """The contact's name and email from ``object.properties`` (the definition asks HubSpot for
    ``firstname``, ``lastname`` and ``email``); anything missing or odd is simply left out."""
    props = obj.get("properties")
    if not isinstance(props, dict):
        return None, None

    def text(key: str, limit: int) -> str | None:
        value = props.get(key)
        if not isinstance(value, str):
            return None
        value = " ".join(value.split())
        return value[:limit] or None

    parts = [p for p in (text("firstname", 100), text("lastname", 100)) if p]
    return (" ".join(parts)[:200] or None), text("email", 254)


def _value(raw):
    """An input value as HubSpot sends it: a plain value or ``{"type", "value"}``."""
    if isinstance(raw, dict):
        raw = raw.get("value")
    if raw is None or isinstance(raw, (dict, list, bool)):
        return None
    text = str(raw).strip()
    return text or None


def _ascii_digits(text: str) -> bool:
    """Only 0-9 (``str.isdigit`` also takes '²' and other digits ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _id_text(raw, name: str, required: bool = True) -> str | None:
    if raw is None or raw == "":
        if required:
            raise InvalidExecution(f"{name} is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InvalidExecution(f"{name} must be a string or an integer")
    text = str(raw).strip()
    if not text or len(text) > MAX_ID_LENGTH:
        raise InvalidExecution(f"{name} is empty or too long")
    return text


def parse_execution(data: dict) -> Execution:
    """Validate an execution request (hubspot-api.md section 4); unknown keys are ignored."""
    callback_id = _id_text(data.get("callbackId"), "callbackId")
    origin = data.get("origin")
    if not isinstance(origin, dict):
        raise InvalidExecution("origin is required")
    portal = _id_text(origin.get("portalId"), "origin.portalId")
    if not _ascii_digits(portal) or len(portal) > 18:
        raise InvalidExecution("origin.portalId must be a number")
    context = data.get("context") if isinstance(data.get("context"), dict) else {}
    obj = data.get("object")
    if not isinstance(obj, dict):
        raise InvalidExecution("object is required")
    object_type = obj.get("objectType")
    if object_type is not None and str(object_type).upper() != "CONTACT":
        raise InvalidExecution("object.objectType must be CONTACT")
    contact_id = _id_text(obj.get("objectId"), "object.objectId")
    inputs = data.get("inputFields")
    if not isinstance(inputs, dict):
        raise InvalidExecution("inputFields is required")
    sequence = _value(inputs.get("sequence"))
    if not sequence:
        raise InvalidExecution("inputFields.sequence is required")
    mailbox = _value(inputs.get("mailbox"))
    rotation = _value(inputs.get("rotation"))
    send_from = _value(inputs.get("send_from"))
    if send_from is None:
        send_from = "rotation" if rotation and not mailbox else "mailbox"
    if send_from not in (SendMode.MAILBOX, SendMode.ROTATION):
        raise InvalidExecution("inputFields.send_from must be mailbox or rotation")
    chosen = mailbox if send_from == SendMode.MAILBOX else rotation
    if not chosen:
        raise InvalidExecution(f"inputFields.{send_from} is required (send_from is {send_from})")
    if not _ascii_digits(chosen) or len(chosen) > 9:
        raise InvalidExecution(f"inputFields.{send_from} must be an AutoSeq {send_from} id")
    workflow = context.get("workflowId")
    definition = origin.get("actionDefinitionId")
    contact_name, contact_email = _contact_details(obj)
    return Execution(
        callback_id=callback_id,
        portal_id=int(portal),
        workflow_id=None if workflow is None else str(workflow)[:32],
        action_definition_id=None if definition is None else str(definition)[:64],
        contact_id=contact_id[:32],
        sequence_hubspot_id=sequence[:32],
        send_mode=send_from,
        mailbox_ref=chosen if send_from == SendMode.MAILBOX else None,
        rotation_ref=chosen if send_from == SendMode.ROTATION else None,
        input_fields={k: _value(v) for k, v in inputs.items() if isinstance(k, str)},
        contact_name=contact_name,
        contact_email=contact_email,
    )


def workspace_for_portal(portal_id) -> int:
    """The workspace connected to ``portal_id`` (any connection status); UnknownPortal if none."""
    if isinstance(portal_id, str) and _ascii_digits(portal_id.strip()):
        portal_id = int(portal_id)
    if isinstance(portal_id, bool) or not isinstance(portal_id, int):
        raise UnknownPortal("origin.portalId is missing or not a number")
    if not 0 < portal_id < 2**63:  # the column is a bigint
        raise UnknownPortal("origin.portalId is out of range")
    pid = portal_id
    workspace_id = db.session.scalar(
        db.select(HubSpotConnection.workspace_id).filter_by(portal_id=pid)
    )
    if workspace_id is None:
        raise UnknownPortal(f"portal {pid} is not connected to AutoSeq")
    return workspace_id


@functools.cache
def _insert_template():
    """INSERT ... SELECT: the row and its lookups (workspace, sequence, mailbox, rotation) in one
    statement, RETURNING the new id; inserts nothing when the portal is not connected. Built once
    with bound parameters (the endpoint is hot)."""
    connection = HubSpotConnection
    values = {
        "workspace_id": connection.workspace_id,
        "callback_id": bindparam("callback_id", type_=String),
        "portal_id": bindparam("portal_id", type_=BigInteger),
        "workflow_id": bindparam("workflow_id", type_=String),
        "action_definition_id": bindparam("action_definition_id", type_=String),
        "contact_id": bindparam("contact_id", type_=String),
        "contact_name": bindparam("contact_name", type_=String),
        "contact_email": bindparam("contact_email", type_=String),
        "sequence_id": Sequence.id,
        "sequence_hubspot_id": bindparam("sequence_hubspot_id", type_=String),
        "sequence_name": func.substr(func.coalesce(Sequence.name, ""), 1, SEQUENCE_NAME_MAX),
        "send_mode": bindparam("send_mode", type_=String),
        "mailbox_id": Mailbox.id,
        "rotation_id": Rotation.id,
        "input_fields": bindparam("input_fields", type_=JSON),
        "status": bindparam("status", type_=String),
        "attempts": bindparam("attempts", type_=Integer),
        "job_id": bindparam("job_id", type_=String),
        "created_at": bindparam("created_at", type_=UTCDateTime),
        "updated_at": bindparam("updated_at", type_=UTCDateTime),
    }
    select = (
        db.select(*[v.label(k) for k, v in values.items()])
        .select_from(connection)
        .outerjoin(
            Sequence,
            db.and_(
                Sequence.workspace_id == connection.workspace_id,
                Sequence.hubspot_id == bindparam("sequence_hubspot_id", type_=String),
            ),
        )
        .outerjoin(
            Mailbox,
            db.and_(
                Mailbox.workspace_id == connection.workspace_id,
                Mailbox.id == bindparam("mailbox_ref", type_=Integer),
            ),
        )
        .outerjoin(
            Rotation,
            db.and_(
                Rotation.workspace_id == connection.workspace_id,
                Rotation.id == bindparam("rotation_ref", type_=Integer),
            ),
        )
        .where(connection.portal_id == bindparam("portal_id", type_=BigInteger))
    )
    return (
        db.insert(Enrollment.__table__)  # Core, not an ORM bulk insert of the parameters
        .from_select(list(values), select, include_defaults=False)
        .returning(Enrollment.__table__.c.id)
    )


def _insert_params(execution: Execution) -> dict:
    now = utcnow()
    return {
        "callback_id": execution.callback_id,
        "portal_id": execution.portal_id,
        "workflow_id": execution.workflow_id,
        "action_definition_id": execution.action_definition_id,
        "contact_id": execution.contact_id,
        "contact_name": execution.contact_name,
        "contact_email": execution.contact_email,
        "sequence_hubspot_id": execution.sequence_hubspot_id,
        "send_mode": execution.send_mode,
        "input_fields": execution.input_fields,
        "status": EnrollmentStatus.QUEUED.value,
        "attempts": 0,
        "job_id": default_job_id(execution.callback_id),
        "created_at": now,
        "updated_at": now,
        "mailbox_ref": int(execution.mailbox_ref) if execution.mailbox_ref else -1,
        "rotation_ref": int(execution.rotation_ref) if execution.rotation_ref else -1,
    }


@dataclass
class Recorded:
    """What the web side needs of an enrollment row (no lazy reload after the commit)."""

    id: int
    callback_id: str
    job_id: str | None
    status: str
    callback_completed_at: datetime | None = None
    failure_code: str | None = None

    @classmethod
    def of(cls, row: Enrollment) -> Recorded:
        return cls(
            row.id,
            row.callback_id,
            row.job_id,
            row.status,
            row.callback_completed_at,
            row.failure_code,
        )


def record_execution(execution: Execution) -> tuple[Recorded, bool]:
    """The enrollment row for this callback id and whether this delivery created it.

    Created once, found again on a retried delivery (the unique callback id decides, also when
    two deliveries race). The sequence's HubSpot id and name are copied as they are now. A
    removed sequence, a deleted rotation or an unknown mailbox is still recorded: the job fails it
    with a readable reason.
    """
    try:
        new_id = db.session.execute(_insert_template(), _insert_params(execution)).scalar()
        db.session.commit()
    except IntegrityError:
        # A retried (or racing) delivery of the same callback: the first one's row is the row.
        db.session.rollback()
        existing = db.session.scalar(
            db.select(Enrollment).filter_by(callback_id=execution.callback_id)
        )
        if existing is None:
            raise
        return Recorded.of(existing), False
    if new_id is None:
        raise UnknownPortal(f"portal {execution.portal_id} is not connected to AutoSeq")
    job_id = default_job_id(execution.callback_id)
    return Recorded(new_id, execution.callback_id, job_id, EnrollmentStatus.QUEUED.value), True


def final_answer(recorded: Recorded) -> dict | None:
    """The stored final outputs of an execution delivered again, or None while it is queued.

    HubSpot delivers an execution again when it lost our answer to the first delivery. Answering
    ``BLOCK`` a second time would leave the workflow waiting until the block expires (a day), since
    the callback may already have been completed: the stored outcome (``SUCCESS`` or
    ``FAIL_CONTINUE``, same output fields) completes it at once. HubSpot's custom workflow action
    docs: an execution answered with ``hs_execution_state`` other than BLOCK is complete.
    """
    if recorded.status == EnrollmentStatus.QUEUED:
        return None
    row = db.session.get(Enrollment, recorded.id)
    if row is None or row.status == EnrollmentStatus.QUEUED:
        return None
    outputs = output_fields(row)
    if row.callback_completed_at is None:
        # This answer completes the execution: the worker has no callback left to send.
        db.session.execute(
            db.update(Enrollment)
            .where(Enrollment.id == row.id, Enrollment.callback_completed_at.is_(None))
            .values(callback_completed_at=utcnow())
        )
    db.session.commit()
    return outputs


# -- queueing ---------------------------------------------------------------------------------

LIVE_STATUSES = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def default_job_id(callback_id: str) -> str:
    """The job id of an execution: derived from its callback id, so it is known before enqueue."""
    return "enroll-" + hashlib.sha256(callback_id.encode("utf-8")).hexdigest()[:24]


def _job_state(job_id: str | None, heartbeat_grace: float | None = None) -> str:
    """``live`` (waiting, or running and heartbeating), ``dead`` (exists, done or abandoned) or
    ``absent``.

    A running job is live while its worker renews the job's alive key (every 5 s, 15 s TTL), or
    for the key's first 15 s. ``heartbeat_grace`` instead judges it by RQ's own timestamps (tests
    that have just killed a worker pass 0).
    """
    if not job_id:
        return "absent"
    connection = redis_connection()
    try:
        job = Job.fetch(job_id, connection=connection)
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        return "absent"
    if status in LIVE_STATUSES:
        return "live"
    if status == JobStatus.STARTED:
        if heartbeat_grace is None and job_alive(connection, job_id):
            return "live"
        grace = ALIVE_TTL if heartbeat_grace is None else heartbeat_grace
        beat = job.last_heartbeat or job.started_at
        if beat is None:
            return "live"
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        if datetime.now(UTC) - beat < timedelta(seconds=grace):
            return "live"
    return "dead"


def job_is_live(job_id: str | None, heartbeat_grace: float | None = None) -> bool:
    """True when ``job_id`` is waiting or running (a started job must still be heartbeating)."""
    return _job_state(job_id, heartbeat_grace) == "live"


def needs_job(row: Enrollment | Recorded) -> bool:
    """Queued, or finished with the callback still to complete (and completable)."""
    if row.status == EnrollmentStatus.QUEUED:
        return True
    return row.callback_completed_at is None and row.failure_code != "NEEDS_RECONNECT"


def ensure_enqueued(
    row: Enrollment | Recorded,
    *,
    fresh: bool = False,
    force_new: bool = False,
    heartbeat_grace: float | None = None,
) -> bool:
    """Enqueue the job of an enrollment unless a live job has it; True when enqueued.

    The job id is derived from the callback id (a re-enqueue after a dead job adds a suffix). A
    short-lived Redis marker per job id (SET NX) lets exactly one of several concurrent deliveries
    enqueue it. ``fresh``: the row was just created, so no job can exist yet (one round trip less).
    """
    if not needs_job(row):
        return False
    connection = redis_connection()
    job_id = row.job_id or default_job_id(row.callback_id)
    if not fresh:
        state = _job_state(job_id, heartbeat_grace)
        if state == "live":
            return False
        if force_new or state == "dead":
            stamp = int(datetime.now(UTC).timestamp() * 1000)
            job_id = f"{default_job_id(row.callback_id)}-{stamp}"
    if row.job_id != job_id:
        db.session.execute(
            db.update(Enrollment).where(Enrollment.id == row.id).values(job_id=job_id)
        )
        db.session.commit()
        row.job_id = job_id
    marker = f"autoseq:enrollment-enqueued:{job_id}"
    # Once the job exists its state answers; the marker only covers the moments before that.
    if not connection.set(marker, "1", nx=True, ex=ENQUEUE_MARKER_TTL):
        return False
    try:
        enqueue(JOB_FUNC, row.id, queue=QUEUE, job_id=job_id)
    except RedisError:
        with contextlib.suppress(RedisError):
            connection.delete(marker)
        raise
    return True


def enqueue_due_retries() -> int:
    """Move enrollment retries whose backoff is over from RQ's scheduled registry to the queue.

    RQ keeps a retry with a backoff interval in its scheduled registry until a worker running
    RQ's scheduler moves it; when no such worker holds the queue's scheduler lock, this does it
    (the sweep calls it), so a retry is never stranded. Returns how many were moved.
    """
    connection = redis_connection()
    if connection.exists(RQScheduler.get_locking_key(QUEUE)):
        return 0  # a worker's RQ scheduler is on duty
    queue = get_queue(QUEUE)
    registry = ScheduledJobRegistry(queue=queue)
    job_ids = registry.get_jobs_to_schedule(current_timestamp())
    if not job_ids:
        return 0
    with connection.pipeline() as pipeline:
        for job in Job.fetch_many(job_ids, connection=connection):
            if job is not None:
                queue._enqueue_job(job, pipeline=pipeline, at_front=job.should_enqueue_at_front())
        for job_id in job_ids:
            registry.remove(job_id, pipeline=pipeline)
        pipeline.execute()
    log.info("moved %d due enrollment retries to the queue", len(job_ids))
    return len(job_ids)


def requeue_stuck(
    older_than: timedelta = timedelta(minutes=3), heartbeat_grace: float | None = None
) -> int:
    """Re-enqueue rows still queued (or finished but not yet completed) with no live job; first
    move retries that are due (:func:`enqueue_due_retries`)."""
    moved = enqueue_due_retries()
    cutoff = utcnow() - older_than
    rows = db.session.scalars(
        db.select(Enrollment)
        .where(
            db.or_(
                Enrollment.status == EnrollmentStatus.QUEUED.value,
                db.and_(
                    Enrollment.finished_at.is_not(None),
                    Enrollment.callback_completed_at.is_(None),
                    db.or_(
                        Enrollment.failure_code.is_(None),
                        Enrollment.failure_code != "NEEDS_RECONNECT",
                    ),
                    Enrollment.finished_at > utcnow() - timedelta(hours=23),
                ),
            ),
            Enrollment.updated_at < cutoff,
        )
        .order_by(Enrollment.id)
        .limit(1000)
    ).all()
    count = 0
    connection = redis_connection()
    for row in rows:
        if row.status != EnrollmentStatus.QUEUED:
            # Finished, callback not yet completed: the workspace's flush sends it.
            if not connection.exists(_refused_key(row.id)):
                request_callback_flush(row.workspace_id)
                count += 1
            continue
        if job_is_live(row.job_id, heartbeat_grace):
            continue
        if ensure_enqueued(row, force_new=True, heartbeat_grace=heartbeat_grace):
            count += 1
    if count:
        log.warning("re-enqueued %d stuck enrollments", count)
    return count + moved


# -- the worker side --------------------------------------------------------------------------


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


def _finish(row: Enrollment, outcome: str, code: str | None = None, reason: str | None = None):
    row.outcome = outcome
    row.status = (
        EnrollmentStatus.ENROLLED.value if outcome == "enrolled" else EnrollmentStatus.FAILED.value
    )
    row.failure_code = code
    row.failure_reason = reason if reason is not None else (REASONS.get(code) if code else None)
    row.finished_at = utcnow()
    db.session.commit()
    log.info("enrollment %s (callback %s): %s %s", row.id, row.callback_id, outcome, code or "")


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


def _client_for(workspace_id: int):
    from .connections import for_workspace

    return for_workspace(workspace_id)


def process_enrollment(enrollment_id: int, *, final_attempt: bool = False) -> str | None:
    """Enroll one recorded execution and complete its callback; return the outcome.

    Raises :class:`Transient` (after recording nothing final) when HubSpot should be tried again
    later; with ``final_attempt`` the enrollment is failed instead.
    """
    from ..hubspot import errors

    row = db.session.get(Enrollment, enrollment_id)
    if row is None:
        log.warning("enrollment %s no longer exists", enrollment_id)
        return None
    if row.status != EnrollmentStatus.QUEUED:
        if row.callback_completed_at is None and row.failure_code != "NEEDS_RECONNECT":
            request_callback_flush(row.workspace_id)
        return row.outcome
    try:
        client = _client_for(row.workspace_id)
    except errors.NeedsReconnect:
        _finish(row, "failed", "NEEDS_RECONNECT")
        return row.outcome
    try:
        return _process(row, client, errors, final_attempt)
    finally:
        client.close()


def _process(row: Enrollment, client, errors, final_attempt: bool) -> str | None:
    try:
        _enroll(row, client, errors)
    except errors.NeedsReconnect:
        db.session.rollback()
        _finish(row, "failed", "NEEDS_RECONNECT")
        return row.outcome
    except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
        db.session.rollback()
        if isinstance(exc, errors.RateLimited) and _is_daily(exc):
            _finish(row, "failed", "DAILY_LIMIT")
        elif final_attempt:
            _finish(row, "failed", "HUBSPOT_UNAVAILABLE")
        else:
            raise Transient(str(exc)) from exc
    except errors.HubSpotAuthError:
        db.session.rollback()
        _finish(row, "failed", "NEEDS_RECONNECT")
        return row.outcome
    if row.status != EnrollmentStatus.QUEUED:
        request_callback_flush(row.workspace_id)
    return row.outcome


def _enroll(row: Enrollment, client, errors) -> None:
    from . import senders

    sequence = db.session.get(Sequence, row.sequence_id) if row.sequence_id else None
    if sequence is None:
        sequence = db.session.scalar(
            db.select(Sequence).filter_by(
                workspace_id=row.workspace_id, hubspot_id=row.sequence_hubspot_id
            )
        )
        if sequence is not None:
            row.sequence_id, row.sequence_name = sequence.id, sequence.name
    if sequence is None or sequence.removed_at is not None:
        _finish(row, "failed", "SEQUENCE_NOT_FOUND")
        return
    if row.send_mode == SendMode.MAILBOX and row.mailbox_id is None:
        _finish(row, "failed", "MAILBOX_NOT_FOUND")
        return
    if row.send_mode == SendMode.ROTATION and row.rotation_id is None:
        _finish(row, "failed", "ROTATION_NOT_FOUND")
        return
    if row.attempts > 0 and _already_in_sequence(row, client):
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
            )
        except senders.NoSender as exc:
            _finish(row, "failed", exc.code, getattr(exc, "message", None) or str(exc))
            return
        row.mailbox_id = choice.mailbox.id
        row.sender_email = choice.alias or choice.sender_email
        row.attempts = (row.attempts or 0) + 1
        db.session.commit()  # before HubSpot: a killed worker leaves attempts > 0 behind
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
            code = _sub_category(exc)
            if code is None and getattr(exc, "status", None) == 404:
                code = "SEQUENCE_NOT_FOUND"
            senders.release(choice)
            if code == "NO_CONNECTED_INBOX":
                senders.mark_disconnected(choice.mailbox.id, getattr(exc, "message", str(exc)))
                if row.send_mode == SendMode.ROTATION and not excluded:
                    excluded.append(choice.mailbox.id)
                    continue  # fail over to the next mailbox of the rotation, once
            if code == "ALREADY_ENROLLED":
                # A retried POST (ours or the transport's) may have enrolled it already.
                if _already_in_sequence(row, client):
                    return
                _finish(row, "already_enrolled", code)
                return
            reason = REASONS.get(code or "") or (getattr(exc, "message", None) or str(exc))
            _finish(row, "failed", code or "HUBSPOT_ERROR", reason)
            return
        row.hubspot_enrollment_id = str((result or {}).get("id") or "") or None
        _finish(row, "enrolled")
        return


def _already_in_sequence(row: Enrollment, client) -> bool:
    """A previous attempt may have reached HubSpot: is the contact in this very sequence?"""
    current = client.get_contact_enrollment(row.contact_id)
    if not current or str(current.get("sequenceId")) != str(row.sequence_hubspot_id):
        return False
    enrolled_at = _parse_time(current.get("enrolledAt"))
    # Enrolled into this sequence before this execution arrived: someone else's enrollment.
    if enrolled_at is None or enrolled_at >= row.created_at - CLOCK_SKEW:
        row.hubspot_enrollment_id = str(current.get("id") or "") or None
        if current.get("enrolledByEmail") and not row.sender_email:
            row.sender_email = current["enrolledByEmail"]
        _finish(row, "enrolled")
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


def _refused_key(enrollment_id: int) -> str:
    return f"autoseq:enrollment-callback-refused:{enrollment_id}"


# -- completing callbacks, in batches per workspace ---------------------------------------------


def _flush_marker(workspace_id: int) -> str:
    return f"autoseq:callbacks-flush-queued:{workspace_id}"


def request_callback_flush(workspace_id: int) -> bool:
    """Make sure a flush of the workspace's finished callbacks is on its way; True if enqueued.

    One flush waits at a time per workspace (a Redis marker, SET NX): everything that finishes
    before it starts rides in its batch. The flush clears the marker as it starts, so a row that
    finishes after its query asks for the next one. The marker expires, so a flush lost with its
    job is asked for again (the sweep does so for rows left uncompleted).
    """
    connection = redis_connection()
    if not connection.set(_flush_marker(workspace_id), "1", nx=True, ex=ENQUEUE_MARKER_TTL):
        return False
    delay = current_app.config.get("CALLBACK_FLUSH_DELAY", CALLBACK_FLUSH_DELAY)
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    try:
        enqueue(
            FLUSH_FUNC,
            workspace_id,
            queue=QUEUE,
            job_id=f"flush-callbacks-{workspace_id}-{stamp}",
            delay=delay,
            at_front=True,
            retry=Retry(max=FLUSH_RETRY[0], interval=list(FLUSH_RETRY[1])),
        )
    except RedisError:
        with contextlib.suppress(RedisError):
            connection.delete(_flush_marker(workspace_id))
        raise
    return True


def _uncompleted(workspace_id: int, after_id: int, limit: int) -> list[Enrollment]:
    return db.session.scalars(
        db.select(Enrollment)
        .where(
            Enrollment.workspace_id == workspace_id,
            Enrollment.id > after_id,
            Enrollment.status != EnrollmentStatus.QUEUED.value,
            Enrollment.callback_completed_at.is_(None),
            db.or_(
                Enrollment.failure_code.is_(None),
                Enrollment.failure_code != "NEEDS_RECONNECT",
            ),
        )
        .order_by(Enrollment.id)
        .limit(limit)
    ).all()


def flush_callbacks(workspace_id: int, *, final_attempt: bool = False) -> int:
    """Complete the workspace's finished, uncompleted callbacks, 100 per HubSpot call.

    A completion is recorded only once HubSpot accepted its batch. A batch HubSpot refuses (4xx:
    one item expired, or already completed because our record of an earlier send was lost) is
    sent again item by item, where an already completed callback counts as done and a refused one
    is set aside. A 5xx or 429 raises :class:`Transient` so RQ retries the flush. Returns how
    many callbacks were completed.
    """
    from ..hubspot import errors

    connection = redis_connection()
    connection.delete(_flush_marker(workspace_id))
    try:
        client = _client_for(workspace_id)
    except errors.NeedsReconnect:
        log.warning("callbacks of workspace %s not completed: reconnect HubSpot", workspace_id)
        return 0
    completed, after_id = 0, 0
    try:
        while True:
            rows = _uncompleted(workspace_id, after_id, CALLBACK_BATCH)
            if not rows:
                return completed
            after_id = rows[-1].id
            with connection.pipeline() as pipeline:
                for row in rows:
                    pipeline.exists(_refused_key(row.id))
                refused = pipeline.execute()
            batch = [row for row, gone in zip(rows, refused, strict=True) if not gone]
            if not batch:
                continue
            try:
                client.complete_callbacks((row.callback_id, output_fields(row)) for row in batch)
            except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
                db.session.rollback()
                if final_attempt:
                    log.error("callbacks of workspace %s not completed: %s", workspace_id, exc)
                    return completed
                raise Transient(str(exc)) from exc
            except errors.NeedsReconnect:
                db.session.rollback()
                return completed
            except errors.HubSpotError as exc:
                db.session.rollback()
                log.warning(
                    "HubSpot refused a batch of %d completions (%s): one by one", len(batch), exc
                )
                completed += sum(
                    complete_callback(row, client=client, final_attempt=final_attempt)
                    for row in batch
                )
                continue
            db.session.execute(
                db.update(Enrollment)
                .where(
                    Enrollment.id.in_([row.id for row in batch]),
                    Enrollment.callback_completed_at.is_(None),
                )
                .values(callback_completed_at=utcnow())
            )
            db.session.commit()
            completed += len(batch)
    finally:
        client.close()


def complete_callback(row: Enrollment, client=None, *, final_attempt: bool = False) -> bool:
    """Tell HubSpot how the execution went; True once completed. Never re-enrolls."""
    from ..hubspot import errors

    own_client = client is None
    try:
        client = client or _client_for(row.workspace_id)
        client.complete_callback(row.callback_id, output_fields(row))
    except errors.NeedsReconnect:
        db.session.rollback()
        log.warning("callback %s not completed: connection needs reconnecting", row.callback_id)
        return False
    except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
        db.session.rollback()
        if final_attempt:
            log.error("callback %s not completed, giving up: %s", row.callback_id, exc)
            return False
        raise Transient(str(exc)) from exc
    except errors.HubSpotError as exc:
        db.session.rollback()
        message = str(getattr(exc, "message", "") or exc).lower()
        if "already completed" not in message:
            # Expired or unknown to HubSpot: no retry can help; stop the sweep from trying again.
            log.error("callback %s refused by HubSpot: %s", row.callback_id, exc)
            redis_connection().set(_refused_key(row.id), message[:200], ex=2 * 24 * 3600)
            return False
    finally:
        if own_client and client is not None:
            client.close()
    row.callback_completed_at = utcnow()
    db.session.commit()
    return True
