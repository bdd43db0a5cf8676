"""Intake: validate an execution, record it once (one row per callback id), answer a redelivery.

The web side of the pipeline: one INSERT ... SELECT per execution and nothing else in the request
(the row is the queue; :func:`..queueing.request_drain` only nudges the workspace's drain).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String, bindparam, func
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Enrollment,
    EnrollmentStatus,
    ExecutionStatus,
    HubSpotConnection,
    Mailbox,
    RecordExecution,
    Rotation,
    SendMode,
    Sequence,
)
from ...models.base import UTCDateTime, utcnow
from ...models.enrollments import SEQUENCE_NAME_MAX
from . import waiting
from .outcome import execution_output_fields, output_fields

MAX_ID_LENGTH = 128
RECORD_TYPES = ("DEAL", "COMPANY", "TICKET")
# The property HubSpot sends with the record (the definition's objectRequestOptions) naming it.
RECORD_NAME_PROPERTY = {"DEAL": "dealname", "COMPANY": "name", "TICKET": "subject"}
CHOICES = ("primary", "all", "label")
DEFAULT_MAX_CONTACTS = 10
MAX_CONTACTS_CAP = 100


class InvalidExecution(ValueError):
    """The execution payload can never succeed (HubSpot must not retry it): answer 400."""


class UnknownPortal(LookupError):
    """No workspace is connected to this portal."""


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
    # A deal, company or ticket workflow's execution: the record, and whom of its contacts to enroll
    record_type: str | None = None  # DEAL, COMPANY or TICKET; None for a contact workflow
    record_id: str | None = None
    record_name: str | None = None
    choose: str = "primary"
    max_contacts: int = 10
    label: str | None = None


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
    object_type = "CONTACT" if object_type is None else str(object_type).upper()
    if object_type != "CONTACT" and object_type not in RECORD_TYPES:
        raise InvalidExecution("object.objectType must be CONTACT, DEAL, COMPANY or TICKET")
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
    try:
        waiting.wait_days({k: _value(v) for k, v in inputs.items() if isinstance(k, str)})
    except waiting.InvalidWait as exc:
        raise InvalidExecution(str(exc)) from None
    workflow = context.get("workflowId")
    definition = origin.get("actionDefinitionId")
    contact_name, contact_email = _contact_details(obj)
    record = {}
    if object_type in RECORD_TYPES:
        record = _record_inputs(object_type, contact_id[:32], obj, inputs)
        contact_id, contact_name, contact_email = "", None, None
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
        **record,
    )


def _record_inputs(object_type: str, object_id: str, obj: dict, inputs: dict) -> dict:
    """A record workflow's execution: the record and whom of its contacts to enroll."""
    props = obj.get("properties") if isinstance(obj.get("properties"), dict) else {}
    name = props.get(RECORD_NAME_PROPERTY[object_type])
    name = " ".join(name.split())[:200] or None if isinstance(name, str) else None
    choose = (_value(inputs.get("contacts_to_enroll")) or "primary").lower()
    if choose not in CHOICES:
        raise InvalidExecution("inputFields.contacts_to_enroll must be primary, all or label")
    raw_max = _value(inputs.get("max_contacts"))
    try:
        max_contacts = int(float(raw_max)) if raw_max is not None else DEFAULT_MAX_CONTACTS
    except (ValueError, OverflowError):
        raise InvalidExecution("inputFields.max_contacts must be a number") from None
    if not 1 <= max_contacts <= MAX_CONTACTS_CAP:
        raise InvalidExecution(f"inputFields.max_contacts must be 1 to {MAX_CONTACTS_CAP}")
    label = _value(inputs.get("association_label"))
    if choose == "label" and not label:
        raise InvalidExecution("inputFields.association_label is required (contacts by label)")
    return {
        "record_type": object_type,
        "record_id": object_id,
        "record_name": name,
        "choose": choose,
        "max_contacts": max_contacts,
        "label": label[:200] if label else None,
    }


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
        "execution_id": bindparam("execution_id", type_=Integer),
        "record_type": bindparam("record_type", type_=String),
        "record_id": bindparam("record_id", type_=String),
        "record_name": bindparam("record_name", type_=String),
        "status": bindparam("status", type_=String),
        "attempts": bindparam("attempts", type_=Integer),
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
        .returning(Enrollment.__table__.c.id, Enrollment.__table__.c.workspace_id)
    )


def _insert_params(execution: Execution, execution_id: int | None = None) -> dict:
    now = utcnow()
    return {
        "execution_id": execution_id,
        "record_type": execution.record_type,
        "record_id": execution.record_id,
        "record_name": execution.record_name,
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
        "created_at": now,
        "updated_at": now,
        "mailbox_ref": int(execution.mailbox_ref) if execution.mailbox_ref else -1,
        "rotation_ref": int(execution.rotation_ref) if execution.rotation_ref else -1,
    }


@dataclass
class Recorded:
    """What the web side needs of an enrollment row (no lazy reload after the commit)."""

    id: int
    workspace_id: int
    callback_id: str
    status: str
    callback_completed_at: datetime | None = None
    failure_code: str | None = None
    record: bool = False  # a RecordExecution (deal, company or ticket workflow), not a row

    @classmethod
    def of(cls, row: Enrollment) -> Recorded:
        return cls(
            row.id,
            row.workspace_id,
            row.callback_id,
            row.status,
            row.callback_completed_at,
            row.failure_code,
        )


def record_execution(execution: Execution) -> tuple[Recorded, bool]:
    """The enrollment row for this callback id and whether this delivery created it.

    Created once, found again on a retried delivery (the unique callback id decides, also when
    two deliveries race). The sequence's HubSpot id and name are copied as they are now. A
    removed sequence, a deleted rotation or an unknown mailbox is still recorded: the drain fails it
    with a readable reason. A record workflow's execution is recorded as a RecordExecution.
    """
    if execution.record_type:
        return _record_record_execution(execution)
    try:
        # A connection of its own, not the ORM session: the row is one Core statement, and the
        # session's bookkeeping around it cost 7% of the endpoint's Python calls.
        with db.engine.begin() as connection:
            new = connection.execute(_insert_template(), _insert_params(execution)).first()
    except IntegrityError:
        # A retried (or racing) delivery of the same callback: the first one's row is the row.
        db.session.rollback()
        existing = db.session.scalar(
            db.select(Enrollment).filter_by(callback_id=execution.callback_id)
        )
        if existing is None:
            raise
        return Recorded.of(existing), False
    if new is None:
        raise UnknownPortal(f"portal {execution.portal_id} is not connected to AutoSeq")
    return Recorded(new[0], new[1], execution.callback_id, EnrollmentStatus.QUEUED.value), True


def _record_record_execution(execution: Execution) -> tuple[Recorded, bool]:
    workspace_id = workspace_for_portal(execution.portal_id)
    sequence_name = db.session.scalar(
        db.select(Sequence.name).filter_by(
            workspace_id=workspace_id, hubspot_id=execution.sequence_hubspot_id
        )
    )
    row = RecordExecution(
        workspace_id=workspace_id,
        callback_id=execution.callback_id,
        portal_id=execution.portal_id,
        workflow_id=execution.workflow_id,
        action_definition_id=execution.action_definition_id,
        record_type=execution.record_type,
        record_id=execution.record_id,
        record_name=execution.record_name,
        choose=execution.choose,
        max_contacts=execution.max_contacts,
        label=execution.label,
        sequence_hubspot_id=execution.sequence_hubspot_id,
        sequence_name=(sequence_name or "")[:SEQUENCE_NAME_MAX],
        send_mode=execution.send_mode,
        mailbox_ref=int(execution.mailbox_ref) if execution.mailbox_ref else None,
        rotation_ref=int(execution.rotation_ref) if execution.rotation_ref else None,
        input_fields=execution.input_fields,
        status=ExecutionStatus.QUEUED.value,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        row = db.session.scalar(
            db.select(RecordExecution).filter_by(callback_id=execution.callback_id)
        )
        if row is None:
            raise
        return _recorded_execution(row), False
    return _recorded_execution(row), True


def _recorded_execution(row: RecordExecution) -> Recorded:
    return Recorded(
        row.id,
        row.workspace_id,
        row.callback_id,
        row.status,
        row.callback_completed_at,
        row.failure_code,
        record=True,
    )


def child_execution(parent: RecordExecution, contact_id: str) -> Execution:
    """What one chosen contact of a record execution asks for: an ordinary enrollment row."""
    callback_id = f"{parent.callback_id}~{contact_id}"
    if len(callback_id) > MAX_ID_LENGTH:
        callback_id = f"~{parent.id}~{contact_id}"
    return Execution(
        callback_id=callback_id,
        portal_id=parent.portal_id,
        workflow_id=parent.workflow_id,
        action_definition_id=parent.action_definition_id,
        contact_id=contact_id,
        sequence_hubspot_id=parent.sequence_hubspot_id,
        send_mode=parent.send_mode,
        mailbox_ref=str(parent.mailbox_ref) if parent.mailbox_ref else None,
        rotation_ref=str(parent.rotation_ref) if parent.rotation_ref else None,
        input_fields=dict(parent.input_fields or {}),
        record_type=parent.record_type,
        record_id=parent.record_id,
        record_name=parent.record_name,
    )


def insert_children(parent: RecordExecution, contact_ids: list[str]) -> None:
    """One queued enrollment row per chosen contact, in the caller's transaction (not
    committed: the caller marks the parent expanded in the same commit)."""
    for contact_id in contact_ids:
        db.session.execute(
            _insert_template(), _insert_params(child_execution(parent, contact_id), parent.id)
        )


def final_answer(recorded: Recorded) -> dict | None:
    """The stored final outputs of an execution delivered again, or None while it is queued.

    HubSpot delivers an execution again when it lost our answer to the first delivery. Answering
    ``BLOCK`` a second time would leave the workflow waiting until the block expires (a day), since
    the callback may already have been completed: the stored outcome (``SUCCESS`` or
    ``FAIL_CONTINUE``, same output fields) completes it at once. HubSpot's custom workflow action
    docs: an execution answered with ``hs_execution_state`` other than BLOCK is complete.
    """
    if recorded.record:
        return _final_record_answer(recorded)
    if recorded.status == EnrollmentStatus.QUEUED:
        return None
    row = db.session.get(Enrollment, recorded.id)
    if row is None or row.status == EnrollmentStatus.QUEUED:
        return None
    return _answered(row, output_fields(row))


def _final_record_answer(recorded: Recorded) -> dict | None:
    row = db.session.get(RecordExecution, recorded.id)
    if row is None or not ExecutionStatus(row.status).finished:
        db.session.commit()
        return None
    return _answered(row, execution_output_fields(row))


def _answered(row: Enrollment | RecordExecution, outputs: dict) -> dict:
    """``outputs`` answer the execution: its callback is complete (the drain has none left to
    send). Commits."""
    if row.callback_completed_at is None:
        model = type(row)
        db.session.execute(
            db.update(model)
            .where(model.id == row.id, model.callback_completed_at.is_(None))
            .values(callback_completed_at=utcnow())
        )
    db.session.commit()
    return outputs
