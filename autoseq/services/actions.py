"""The *Enroll in sequence* workflow action: its definition, publishing it, and its dropdowns.

The definition is built from configuration (hubspot-api.md section 4) and published with a
developer OAuth token (dated path) or the developer API key (legacy path). Dropdown options are
answered from the database only: HubSpot waits for them while a person edits a workflow, so they
never call HubSpot.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import BigInteger, Integer, Text, bindparam, func

from ..extensions import db
from ..hubspot.errors import HubSpotError
from ..hubspot.http import Transport
from ..hubspot.versions import ACTIONS_API, LEGACY_ACTIONS_API
from ..models import (
    FINISHED_STATUSES,
    EnrollmentStatus,
    HubSpotConnection,
    HubSpotUser,
    Mailbox,
    PublishedAction,
    Rotation,
    Sequence,
)
from ..models.base import utcnow
from ..models.sequences import sort_key as sequence_sort_key
from . import cursors

log = logging.getLogger(__name__)

ACTION_NAME = "Enroll in sequence"
ENROLL_PATH = "/hubspot/actions/enroll"
OPTIONS_PATH = "/hubspot/actions/options"
PAGE_SIZE = 100
OUTCOMES = FINISHED_STATUSES  # enrolled, already_enrolled, failed: enrollment_status's values
SEND_FROM_OPTIONS = (
    {"label": "One mailbox", "value": "mailbox", "description": "Always send from this inbox"},
    {
        "label": "A rotation of mailboxes",
        "value": "rotation",
        "description": "Spread enrollments over the rotation's mailboxes",
    },
)
STATE_LABELS = {
    "active": "Active",
    "paused": "Paused",
    "draft": "Draft",
    "archived": "Archived",
    "unknown": "State unknown",
}


class PublishError(Exception):
    """Publishing the definition failed; the message says why."""


# The definition follows ``PublicActionDefinitionEgg`` of HubSpot's
# ``hubspot-automation-actions-v4-openapi.json`` (version 2026-09, ``api-evangelist/hubspot``
# ``openapi/_original/``), and constructs as the official ``hubspot-api-client`` models
# (``hubspot.automation.actions.models``), which require a few fields the spec leaves optional
# (``externalOptions``; every field of an ``Option``). tests/actions/test_definition.py checks both.
CONTACT_PROPERTIES = ("firstname", "lastname", "email")
# A deal's, company's and ticket's name, sent with a record workflow's execution (analytics and
# the log show the record an enrollment came from).
RECORD_NAME_PROPERTIES = ("dealname", "name", "subject")
OBJECT_TYPES = ("CONTACT", "DEAL", "COMPANY", "TICKET")
WHEN_ALREADY_ENROLLED_OPTIONS = (
    {
        "label": "Skip",
        "value": "skip",
        "description": "End with enrollment status already_enrolled",
    },
    {
        "label": "Wait and enroll when its sequence ends",
        "value": "wait",
        "description": "Enroll as soon as the current sequence ends, up to the days set below",
    },
)
CONTACTS_TO_ENROLL_OPTIONS = (
    {
        "label": "The primary contact",
        "value": "primary",
        "description": "The contact with the Primary label, else the earliest associated",
    },
    {
        "label": "All associated contacts",
        "value": "all",
        "description": "Every associated contact, up to the maximum set below",
    },
    {
        "label": "Contacts with an association label",
        "value": "label",
        "description": "The associated contacts carrying the chosen label",
    },
)
COUNT_OUTPUTS = ("enrolled_count", "skipped_count", "failed_count")
# The workflow's objectTypeId (options requests) -> the associations API's object type.
OBJECT_TYPE_IDS = {"0-3": "deals", "0-2": "companies", "0-5": "tickets"}


def _option(option: dict, order: int) -> dict:
    """An option as HubSpot's ``Option`` (the SDK model requires all seven fields)."""
    return {
        "label": option["label"],
        "value": option["value"],
        "description": option.get("description", ""),
        "displayOrder": order,
        "doubleData": 0,
        "hidden": False,
        "readOnly": False,
    }


def _select(name: str, options_url: str | None, required: bool, options=()) -> dict:
    """An input dropdown: ``PublicInputFieldDefinition`` (``supportedValueTypes`` from the
    spec's enum STATIC_VALUE | OBJECT_PROPERTY)."""
    type_definition = {
        "name": name,
        "type": "enumeration",
        "fieldType": "select",
        "options": [_option(o, i) for i, o in enumerate(options)],
        "externalOptions": bool(options_url),
    }
    if options_url:
        type_definition["optionsUrl"] = options_url
    return {
        "typeDefinition": type_definition,
        "supportedValueTypes": ["STATIC_VALUE"],
        "isRequired": required,
    }


def _number(name: str) -> dict:
    """A number input (``type`` number, ``fieldType`` number)."""
    return {
        "typeDefinition": {
            "name": name,
            "type": "number",
            "fieldType": "number",
            "options": [],
            "externalOptions": False,
        },
        "supportedValueTypes": ["STATIC_VALUE"],
        "isRequired": False,
    }


def _output(name: str, options=None) -> dict:
    """An output field: ``OutputFieldDefinition`` is ``typeDefinition`` only (no
    ``supportedValueTypes``); its ``FieldTypeDefinition`` requires ``externalOptions``,
    ``name``, ``options``, ``schema``, ``type`` and ``useChirp``. All our outputs are strings."""
    type_definition = {"name": name, "type": "string", "fieldType": "text", "options": []}
    if options is not None:
        type_definition.update(
            type="enumeration",
            fieldType="select",
            options=[
                _option({"label": o.replace("_", " ").capitalize(), "value": o}, i)
                for i, o in enumerate(options)
            ],
        )
    type_definition.update(externalOptions=False, useChirp=False, schema={"type": "STRING"})
    return {"typeDefinition": type_definition}


def _dependency(controlling: str, value: str, dependents: list[str]) -> dict:
    """``PublicConditionalSingleFieldDependency``: dependencyType is SINGLE_FIELD or
    CONDITIONAL_SINGLE_FIELD, nothing else (the spec's oneOf, and the SDK's enum)."""
    return {
        "dependencyType": "CONDITIONAL_SINGLE_FIELD",
        "controllingFieldName": controlling,
        "controllingFieldValue": value,
        "dependentFieldNames": dependents,
    }


def build_definition(public_base_url: str) -> dict:
    """The action definition, exactly as ``publish-action`` POSTs or PATCHes it (and as
    ``publish-action --show`` prints it); the one builder of it."""
    base = public_base_url.rstrip("/")
    options_url = base + OPTIONS_PATH
    return {
        "actionUrl": base + ENROLL_PATH,
        "published": True,
        "objectTypes": list(OBJECT_TYPES),
        # The enrolled contact's properties HubSpot includes in each execution request
        # (``PublicObjectRequestOptions``): the address and the name, at no extra call; in a
        # deal, company or ticket workflow, the record's name.
        "objectRequestOptions": {
            "properties": list(CONTACT_PROPERTIES) + list(RECORD_NAME_PROPERTIES)
        },
        "inputFields": [
            _select("sequence", options_url, True),
            _select("send_from", None, True, SEND_FROM_OPTIONS),
            _select("mailbox", options_url, False),
            _select("rotation", options_url, False),
            _select("contacts_to_enroll", None, False, CONTACTS_TO_ENROLL_OPTIONS),
            _number("max_contacts"),
            _select("association_label", options_url, False),
            _select("when_already_enrolled", None, False, WHEN_ALREADY_ENROLLED_OPTIONS),
            _number("max_wait_days"),
        ],
        "inputFieldDependencies": [
            _dependency("send_from", "mailbox", ["mailbox"]),
            _dependency("send_from", "rotation", ["rotation"]),
            _dependency("contacts_to_enroll", "all", ["max_contacts"]),
            _dependency("contacts_to_enroll", "label", ["association_label"]),
            _dependency("when_already_enrolled", "wait", ["max_wait_days"]),
        ],
        "outputFields": [
            _output("enrollment_status", OUTCOMES),
            _output("failure_reason"),
            _output("sender_email"),
            _output("sequence_name"),
            *[_output(name) for name in COUNT_OUTPUTS],
        ],
        "executionRules": [
            {"labelName": outcome, "conditions": {"enrollment_status": outcome}}
            for outcome in OUTCOMES
        ],
        "labels": {
            "en": {
                "actionName": ACTION_NAME,
                "actionDescription": (
                    "Enroll the contact in a HubSpot sequence, sent from one mailbox or from a "
                    "rotation of mailboxes (by AutoSeq)."
                ),
                "actionCardContent": "Enroll in {{ sequence }}",
                "appDisplayName": "AutoSeq",
                "inputFieldLabels": {
                    "sequence": "Sequence",
                    "send_from": "Send from",
                    "mailbox": "Mailbox",
                    "rotation": "Rotation",
                    "contacts_to_enroll": "Contacts to enroll (deal, company, ticket workflows)",
                    "max_contacts": "Maximum contacts to enroll",
                    "association_label": "Association label",
                    "when_already_enrolled": "When the contact is already in a sequence",
                    "max_wait_days": "Maximum days to wait",
                },
                "inputFieldDescriptions": {
                    "sequence": "Sequences synced from HubSpot, with their state.",
                    "send_from": "One mailbox, or a rotation that spreads enrollments.",
                    "mailbox": "Only mailboxes allowed to send the chosen sequence are listed.",
                    "rotation": "Rotations are managed in AutoSeq.",
                    "contacts_to_enroll": (
                        "Deal, company and ticket workflows only (a contact workflow enrolls its "
                        "contact). The primary contact is the associated contact with the "
                        "Primary label if there is one, else the earliest associated. "
                        "Default: the primary contact."
                    ),
                    "max_contacts": "All associated contacts: at most this many (1 to 100; 10).",
                    "association_label": (
                        "The associated contacts carrying this label (at most 100), from the "
                        "labels of this workflow's object type."
                    ),
                    "when_already_enrolled": (
                        "Skip (the default): the action ends with enrollment status "
                        "already_enrolled. Wait: the contact is enrolled as soon as its current "
                        "sequence ends, up to the maximum days to wait."
                    ),
                    "max_wait_days": "Wait: give up after this many days (up to 90; 14).",
                },
                "outputFieldLabels": {
                    "enrollment_status": "Enrollment status",
                    "failure_reason": "Failure reason",
                    "sender_email": "Sender email",
                    "sequence_name": "Sequence name",
                    "enrolled_count": "Contacts enrolled",
                    "skipped_count": "Contacts skipped (already in a sequence)",
                    "failed_count": "Contacts not enrolled (failed)",
                },
                "executionRules": {
                    EnrollmentStatus.ENROLLED: (
                        "Enrolled in {{ sequence_name }} from {{ sender_email }}"
                    ),
                    EnrollmentStatus.ALREADY_ENROLLED: (
                        "Not enrolled again: the contact is already in a sequence"
                    ),
                    EnrollmentStatus.FAILED: "Not enrolled: {{ failure_reason }}",
                },
            }
        },
        "functions": [],
    }


# -- publishing -----------------------------------------------------------------------------


@dataclass
class PublishResult:
    definition_id: str
    created: bool
    revision: str | None
    action_url: str


class _Developer:
    """Calls to the app's action definitions, through the one HubSpot transport.

    With ``HUBSPOT_DEVELOPER_TOKEN`` (a developer OAuth token with ``developers-write``): the dated
    path, Bearer. Otherwise with ``HUBSPOT_DEVELOPER_API_KEY``: the legacy v4 path, ``?hapikey=``
    (the two security schemes of ``hubspot-automation-actions-v4-openapi.json``).
    """

    def __init__(self, config, app_id: str):
        self.token = config.get("HUBSPOT_DEVELOPER_TOKEN")
        self.key = None if self.token else config.get("HUBSPOT_DEVELOPER_API_KEY")
        if not app_id or not (self.token or self.key):
            raise PublishError(
                "HUBSPOT_APP_ID and HUBSPOT_DEVELOPER_TOKEN (or, for the legacy path, "
                "HUBSPOT_DEVELOPER_API_KEY) must be set"
            )
        self.path = f"{ACTIONS_API if self.token else LEGACY_ACTIONS_API}/{app_id}"
        self.transport = Transport.from_config(config, rate_limited=False)

    def request(self, method: str, suffix: str = "", *, params=None, json=None) -> dict:
        params = dict(params or {})
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        else:
            params["hapikey"] = self.key
        try:
            response = self.transport.request(
                method, self.path + suffix, params=params, json=json, headers=headers
            )
        except HubSpotError as exc:
            raise PublishError(_error_text(exc)) from None
        try:
            return response.json()
        except ValueError:
            raise PublishError(
                f"HubSpot answered {response.status_code} with something that is not JSON"
            ) from None

    def close(self) -> None:
        self.transport.close()


def _error_text(exc: HubSpotError) -> str:
    if exc.status is None:
        return f"HubSpot could not be reached: {exc.message}"
    return f"HubSpot answered {exc.status}: {exc.message}"


def _existing_definitions(developer: _Developer) -> list[dict]:
    found, after = [], None
    while True:
        params = {"limit": 100}
        if after:
            params["after"] = after
        data = developer.request("GET", params=params)
        found.extend(data.get("results") or [])
        after = ((data.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return found


def _is_ours(definition: dict, known_id: str | None, action_url: str) -> bool:
    if known_id and str(definition.get("id")) == known_id:
        return True
    url = str(definition.get("actionUrl") or "")
    name = ((definition.get("labels") or {}).get("en") or {}).get("actionName")
    return url == action_url or (url.endswith(ENROLL_PATH) and name == ACTION_NAME)


def publish_action(config) -> PublishResult:
    """Create or update (idempotently) the action definition for ``HUBSPOT_APP_ID``; record it.

    Lists the app's definitions, PATCHes ours when it exists (by the id published last, else by
    its action URL), POSTs it otherwise, and stores the outcome in :class:`PublishedAction`.
    """
    app_id = str(config.get("HUBSPOT_APP_ID") or "")
    developer = _Developer(config, app_id)
    try:
        body = build_definition(config["PUBLIC_BASE_URL"])
        record = db.session.scalar(db.select(PublishedAction).filter_by(app_id=app_id))
        known_id = record.definition_id if record else None
        existing = [
            d for d in _existing_definitions(developer) if _is_ours(d, known_id, body["actionUrl"])
        ]
        existing.sort(key=lambda d: str(d.get("id")) != known_id)  # the one we published first
        if existing:
            data = developer.request("PATCH", f"/{existing[0]['id']}", json=body)
            created = False
        else:
            data = developer.request("POST", json=body)
            created = True
    finally:
        developer.close()
    definition_id = str(data.get("id"))
    revision = data.get("revisionId")
    if record is None:
        record = PublishedAction(app_id=app_id)
        db.session.add(record)
    record.definition_id = definition_id
    record.action_url = body["actionUrl"]
    record.published = bool(data.get("published", True))
    record.revision = None if revision is None else str(revision)
    record.published_at = utcnow()
    db.session.commit()
    return PublishResult(definition_id, created, record.revision, record.action_url)


def published_action(app_id: str | None) -> PublishedAction | None:
    """What was last published for ``app_id`` (None when never)."""
    if not app_id:
        return None
    return db.session.scalar(db.select(PublishedAction).filter_by(app_id=str(app_id)))


# -- dropdown options -------------------------------------------------------------------------

# The lists a cursor may belong to (a cursor of one list is refused by another).
SEQUENCE_LIST = "options:sequence"
MAILBOX_LIST = "options:mailbox"
ROTATION_LIST = "options:rotation"
_CURSOR_SHAPE = (str, int)  # (sort key, id)
_BIGINT = range(1, 2**63)


def _position(kind: str, after: str | None) -> tuple | None:
    """The (sort key, id) a cursor continues after; None for the first page; BadCursor."""
    return cursors.decode(kind, after, _CURSOR_SHAPE) if after else None


def _like(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@functools.lru_cache(maxsize=256)
def _describe(state: str, sharing: str) -> str:
    return f"{STATE_LABELS.get(state, state.capitalize())} · {sharing}"


def sequence_description(sequence) -> str:
    """e.g. ``Active · team``: the state HubSpot told us (never invented) and the sharing."""
    return _describe(sequence.state, sequence.sharing)


def _page(rows, render, kind: str) -> dict:
    """The options of at most PAGE_SIZE ``rows`` (``render``: rows to options), and a cursor when
    there are more (PAGE_SIZE + 1 rows were read)."""
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    out = {"options": render(rows), "searchable": True}
    if more:
        out["after"] = cursors.encode(kind, (rows[-1].k, rows[-1].id))
    return out


@functools.cache
def _sequence_statement(by_portal: bool, search: bool, after: bool):
    """The sequence dropdown's one statement for a shape of request, built once with bound
    parameters (``portal`` or ``workspace``, ``like``, ``k`` and ``i``).

    By portal, the workspace is a scalar subquery (an InitPlan: one index probe), so a page is one
    round trip. Live sequences in ``ix_sequences_options`` order, read from that index from the
    cursor's position on (a row comparison) and stopped after PAGE_SIZE + 1 rows: nothing sorted.
    """
    key = sequence_sort_key()
    if by_portal:
        workspace = (
            db.select(HubSpotConnection.workspace_id)
            .where(HubSpotConnection.portal_id == bindparam("portal", type_=BigInteger))
            .scalar_subquery()
        )
    else:
        workspace = bindparam("workspace", type_=Integer)
    query = db.select(
        Sequence.workspace_id,
        Sequence.id,
        Sequence.hubspot_id,
        Sequence.name,
        Sequence.state,
        Sequence.sharing,
        key.label("k"),
    ).where(Sequence.workspace_id == workspace, Sequence.removed_at.is_(None))
    if search:
        query = query.where(key.like(bindparam("like", type_=Text), escape="\\"))
    if after:
        query = query.where(
            cursors.beyond(
                (key, Sequence.id), (bindparam("k", type_=Text), bindparam("i", type_=Integer))
            )
        )
    return query.order_by(key, Sequence.id).limit(PAGE_SIZE + 1)


def _read(statement, params: dict) -> list:
    """Rows of a read-only statement on an autocommit connection of the pool: no BEGIN and no
    ROLLBACK around it (two of the dropdown's four round trips; the session is never used)."""
    engines = current_app.extensions.setdefault("autoseq.read_only_engines", {})
    engine = db.engine
    read_only = engines.get(engine)
    if read_only is None:  # one per engine (the app's, and none other in practice)
        read_only = engines[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    with read_only.connect() as connection:
        return connection.execute(statement, params).all()


def _sequence_rows(where: dict, q: str | None, position: tuple | None) -> list:
    params = dict(where)
    if q:
        params["like"] = _like(q)
    if position:
        params["k"], params["i"] = position
    statement = _sequence_statement("portal" in where, bool(q), position is not None)
    return _read(statement, params)


def _render_sequences(rows) -> list[dict]:
    # Unpacked as tuples: a Row's attribute access cost 190 us a page, unpacking 24 us.
    return [
        {"label": name, "value": hubspot_id, "description": _describe(state, sharing)}
        for (_, _, hubspot_id, name, state, sharing, _) in rows
    ]


def sequence_options(workspace_id: int, q: str | None, after: str | None) -> dict:
    """Sequences not removed, sorted by name case-insensitively, searched, 100 per page.

    The order is the ``ix_sequences_options`` index's, so a page is read from it, not sorted.
    A cursor not made for this list raises :class:`cursors.BadCursor`.
    """
    rows = _sequence_rows({"workspace": workspace_id}, q, _position(SEQUENCE_LIST, after))
    return _page(rows, _render_sequences, SEQUENCE_LIST)


def sequence_options_of_portal(portal_id, q: str | None, after: str | None) -> tuple[int, dict]:
    """(workspace id, the sequence dropdown's answer) for the workspace connected to
    ``portal_id``, in one statement (the hot path of HubSpot's workflow editor). An unknown
    portal raises ``enrollment.UnknownPortal``; a bad cursor :class:`cursors.BadCursor`."""
    from .enrollment import workspace_for_portal

    position = _position(SEQUENCE_LIST, after)
    if type(portal_id) is int and portal_id in _BIGINT:
        rows = _sequence_rows({"portal": portal_id}, q, position)
        if rows:
            return rows[0].workspace_id, _page(rows, _render_sequences, SEQUENCE_LIST)
        # Nothing to offer, or no such portal: which one is the workspace lookup's to say.
        return workspace_for_portal(portal_id), _page([], _render_sequences, SEQUENCE_LIST)
    workspace_id = workspace_for_portal(portal_id)  # validates a portal id sent as a string
    return workspace_id, sequence_options(workspace_id, q, after)


def _input_value(input_fields: dict, name: str) -> str | None:
    raw = (input_fields or {}).get(name)
    if isinstance(raw, dict):
        raw = raw.get("value")
    if raw is None or isinstance(raw, (dict, list)):
        return None
    return str(raw).strip() or None


def _keyset_rows(query, order: tuple, position: tuple | None) -> list:
    """A page (PAGE_SIZE + 1 rows) of ``query`` in ``order``, past the cursor's position."""
    if position is not None:
        query = query.where(cursors.beyond(order, position))
    return db.session.execute(query.order_by(*order).limit(PAGE_SIZE + 1)).all()


def mailbox_options(
    workspace_id: int, q: str | None, after: str | None, input_fields: dict
) -> dict:
    """Mailboxes of active users; only those allowed to send the chosen sequence, if one is."""
    key = func.lower(Mailbox.email)
    query = (
        db.select(
            Mailbox.id,
            Mailbox.email,
            Mailbox.status,
            HubSpotUser.first_name,
            HubSpotUser.last_name,
            key.label("k"),
        )
        .join(HubSpotUser, Mailbox.hubspot_user_id == HubSpotUser.id)
        .where(Mailbox.workspace_id == workspace_id, HubSpotUser.active.is_(True))
    )
    sequence_hubspot_id = _input_value(input_fields, "sequence")
    if sequence_hubspot_id:
        sequence = db.session.scalar(
            db.select(Sequence).filter_by(workspace_id=workspace_id, hubspot_id=sequence_hubspot_id)
        )
        if sequence is not None:
            allowed = [str(u) for u in (sequence.sender_user_ids or [])]
            query = query.where(HubSpotUser.hubspot_user_id.in_(allowed))
    if q:
        query = query.where(
            db.or_(
                key.like(_like(q), escape="\\"),
                func.lower(HubSpotUser.first_name + " " + HubSpotUser.last_name).like(
                    _like(q), escape="\\"
                ),
            )
        )
    rows = _keyset_rows(query, (key, Mailbox.id), _position(MAILBOX_LIST, after))

    def render(r):
        name = f"{r.first_name} {r.last_name}".strip()
        parts = [name] if name else []
        if r.status != "ok":
            parts.append(r.status.replace("_", " "))
        return {"label": r.email, "value": str(r.id), "description": " · ".join(parts)}

    return _page(rows, lambda page: [render(r) for r in page], MAILBOX_LIST)


def rotation_options(workspace_id: int, q: str | None, after: str | None) -> dict:
    """Rotations not deleted, sorted by name."""
    key = func.lower(Rotation.name)
    query = db.select(Rotation.id, Rotation.name, Rotation.mode, key.label("k")).where(
        Rotation.workspace_id == workspace_id, Rotation.deleted_at.is_(None)
    )
    if q:
        query = query.where(key.like(_like(q), escape="\\"))
    rows = _keyset_rows(query, (key, Rotation.id), _position(ROTATION_LIST, after))
    return _page(
        rows,
        lambda page: [
            {"label": r.name, "value": str(r.id), "description": r.mode.capitalize()} for r in page
        ],
        ROTATION_LIST,
    )


FIELD_OPTIONS = ("sequence", "mailbox", "rotation", "send_from", "association_label")


def field_options(
    workspace_id: int,
    field: str,
    q: str | None,
    after: str | None,
    input_fields: dict,
    object_type_id=None,
) -> dict:
    """Options for one input field of the action (``field`` in :data:`FIELD_OPTIONS`)."""
    if field == "sequence":
        return sequence_options(workspace_id, q, after)
    if field == "mailbox":
        return mailbox_options(workspace_id, q, after, input_fields)
    if field == "rotation":
        return rotation_options(workspace_id, q, after)
    if field == "send_from":
        return {"options": list(SEND_FROM_OPTIONS), "searchable": False}
    if field == "association_label":
        return association_label_options(workspace_id, object_type_id, q)
    raise ValueError(f"unknown input field {field}")


def association_label_options(workspace_id: int, object_type_id, q: str | None) -> dict:
    """The association labels from the workflow's object type (``objectTypeId`` of the options
    request: ``0-3`` deals, ``0-2`` companies, ``0-5`` tickets) to contacts, read from HubSpot's
    labels API through the rate-limited client (one call). Value: the label's type id. A contact
    workflow, a portal without the scope, or HubSpot unreachable: no options (never an error)."""
    from . import connections

    object_type = OBJECT_TYPE_IDS.get(str(object_type_id or ""))
    if object_type is None:
        return {"options": [], "searchable": False}
    try:
        with connections.for_workspace(workspace_id) as client:
            labels = client.association_labels(object_type)
    except (HubSpotError, RedisError) as exc:
        log.warning("association labels of workspace %s: %s", workspace_id, exc)
        return {"options": [], "searchable": False}
    options = []
    for label in labels:
        text = label.get("label")
        if not isinstance(text, str) or not text.strip():
            continue
        if q and q.lower() not in text.lower():
            continue
        options.append(
            {"label": text.strip()[:200], "value": str(label.get("typeId")), "description": ""}
        )
    return {"options": options, "searchable": True}
