"""The *Enroll in sequence* workflow action: its definition, publishing it, and its dropdowns.

The definition is built from configuration (hubspot-api.md section 4) and published with the
developer API key. Dropdown options are answered from the database only: HubSpot waits for them
while a person edits a workflow, so they never call HubSpot.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import requests
from sqlalchemy import func

from ..extensions import db
from ..models import HubSpotUser, Mailbox, PublishedAction, Rotation, Sequence
from ..models.base import utcnow

ACTION_NAME = "Enroll in sequence"
ENROLL_PATH = "/hubspot/actions/enroll"
OPTIONS_PATH = "/hubspot/actions/options"
PAGE_SIZE = 100
OUTCOMES = ("enrolled", "already_enrolled", "failed")
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


def _select(name: str, options_url: str | None, required: bool, options=()) -> dict:
    type_definition = {
        "name": name,
        "type": "enumeration",
        "fieldType": "select",
        "options": list(options),
    }
    if options_url:
        type_definition["optionsUrl"] = options_url
    return {
        "typeDefinition": type_definition,
        "supportedValueTypes": ["STATIC_VALUE"],
        "isRequired": required,
    }


def _output(name: str, options=None) -> dict:
    type_definition = {"name": name, "type": "string", "fieldType": "text"}
    if options is not None:
        type_definition = {
            "name": name,
            "type": "enumeration",
            "fieldType": "select",
            "options": [{"label": o.replace("_", " ").capitalize(), "value": o} for o in options],
        }
    return {"typeDefinition": type_definition, "supportedValueTypes": ["STATIC_VALUE"]}


def build_definition(public_base_url: str) -> dict:
    """The action definition, as POSTed or PATCHed to ``/automation/v4/actions/{appId}``."""
    base = public_base_url.rstrip("/")
    options_url = base + OPTIONS_PATH
    return {
        "actionUrl": base + ENROLL_PATH,
        "published": True,
        "objectTypes": ["CONTACT"],
        "objectRequestOptions": {"properties": ["firstname", "lastname", "email"]},
        "inputFields": [
            _select("sequence", options_url, True),
            _select("send_from", None, True, SEND_FROM_OPTIONS),
            _select("mailbox", options_url, False),
            _select("rotation", options_url, False),
        ],
        "inputFieldDependencies": [
            {
                "dependencyType": "CONDITIONAL",
                "controllingFieldName": "send_from",
                "controllingFieldValue": "mailbox",
                "dependentFieldNames": ["mailbox"],
            },
            {
                "dependencyType": "CONDITIONAL",
                "controllingFieldName": "send_from",
                "controllingFieldValue": "rotation",
                "dependentFieldNames": ["rotation"],
            },
        ],
        "outputFields": [
            _output("enrollment_status", OUTCOMES),
            _output("failure_reason"),
            _output("sender_email"),
            _output("sequence_name"),
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
                },
                "inputFieldDescriptions": {
                    "sequence": "Sequences synced from HubSpot, with their state.",
                    "send_from": "One mailbox, or a rotation that spreads enrollments.",
                    "mailbox": "Only mailboxes allowed to send the chosen sequence are listed.",
                    "rotation": "Rotations are managed in AutoSeq.",
                },
                "outputFieldLabels": {
                    "enrollment_status": "Enrollment status",
                    "failure_reason": "Failure reason",
                    "sender_email": "Sender email",
                    "sequence_name": "Sequence name",
                },
                "executionRules": {
                    "enrolled": "Enrolled in {{ sequence_name }} from {{ sender_email }}",
                    "already_enrolled": (
                        "Not enrolled again: the contact is already in a sequence"
                    ),
                    "failed": "Not enrolled: {{ failure_reason }}",
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


def _developer_request(config, method: str, path: str, **kwargs) -> requests.Response:
    url = config["HUBSPOT_API_BASE"] + path
    params = dict(kwargs.pop("params", {}) or {})
    params["hapikey"] = config["HUBSPOT_DEVELOPER_API_KEY"]
    try:
        return requests.request(method, url, params=params, timeout=15, **kwargs)
    except requests.RequestException as exc:
        raise PublishError(f"HubSpot could not be reached: {type(exc).__name__}") from exc


def _error_text(response: requests.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return f"HubSpot answered {response.status_code}: {message or response.text[:200]}"


def _existing_definitions(config, app_id: str) -> list[dict]:
    found, after = [], None
    while True:
        params = {"limit": 100}
        if after:
            params["after"] = after
        path = f"/automation/v4/actions/{app_id}"
        response = _developer_request(config, "GET", path, params=params)
        if response.status_code != 200:
            raise PublishError(_error_text(response))
        data = response.json()
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
    app_id = config.get("HUBSPOT_APP_ID")
    if not app_id or not config.get("HUBSPOT_DEVELOPER_API_KEY"):
        raise PublishError("HUBSPOT_APP_ID and HUBSPOT_DEVELOPER_API_KEY must both be set")
    app_id = str(app_id)
    body = build_definition(config["PUBLIC_BASE_URL"])
    record = db.session.scalar(db.select(PublishedAction).filter_by(app_id=app_id))
    known_id = record.definition_id if record else None
    existing = [
        d for d in _existing_definitions(config, app_id) if _is_ours(d, known_id, body["actionUrl"])
    ]
    existing.sort(key=lambda d: str(d.get("id")) != known_id)  # the one we published first
    path = f"/automation/v4/actions/{app_id}"
    if existing:
        definition_id = str(existing[0]["id"])
        response = _developer_request(config, "PATCH", f"{path}/{definition_id}", json=body)
        created = False
    else:
        response = _developer_request(config, "POST", path, json=body)
        created = True
    if response.status_code not in (200, 201):
        raise PublishError(_error_text(response))
    data = response.json()
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


def encode_cursor(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def decode_cursor(after: str | None) -> dict | None:
    """The cursor's content, or None for the first page (a garbled cursor restarts the list)."""
    if not after:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(after.encode()))
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _like(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sequence_description(sequence: Sequence) -> str:
    """e.g. ``Active · team``: the state HubSpot told us (never invented) and the sharing."""
    return f"{STATE_LABELS.get(sequence.state, sequence.state.capitalize())} · {sequence.sharing}"


def _keyset_page(query, key_column, id_column, cursor: dict | None):
    """Order by (lower(name), id) and continue after the cursor's key."""
    if cursor and isinstance(cursor.get("k"), str) and isinstance(cursor.get("i"), int):
        query = query.where(
            db.or_(
                key_column > cursor["k"],
                db.and_(key_column == cursor["k"], id_column > cursor["i"]),
            )
        )
    return query.order_by(key_column, id_column).limit(PAGE_SIZE + 1)


def _page(rows, render, key_of) -> dict:
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    out = {"options": [render(r) for r in rows], "searchable": True}
    if more:
        last = rows[-1]
        out["after"] = encode_cursor({"k": key_of(last), "i": last.id})
    return out


def sequence_options(workspace_id: int, q: str | None, after: str | None) -> dict:
    """Sequences not removed, sorted by name case-insensitively, searched, 100 per page."""
    key = func.lower(Sequence.name)
    query = db.select(
        Sequence.id,
        Sequence.hubspot_id,
        Sequence.name,
        Sequence.state,
        Sequence.sharing,
        key.label("k"),
    ).where(Sequence.workspace_id == workspace_id, Sequence.removed_at.is_(None))
    if q:
        query = query.where(key.like(_like(q), escape="\\"))
    rows = db.session.execute(_keyset_page(query, key, Sequence.id, decode_cursor(after))).all()
    return _page(
        rows,
        lambda r: {"label": r.name, "value": r.hubspot_id, "description": sequence_description(r)},
        lambda r: r.k,
    )


def _input_value(input_fields: dict, name: str) -> str | None:
    raw = (input_fields or {}).get(name)
    if isinstance(raw, dict):
        raw = raw.get("value")
    if raw is None or isinstance(raw, (dict, list)):
        return None
    return str(raw).strip() or None


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
    rows = db.session.execute(_keyset_page(query, key, Mailbox.id, decode_cursor(after))).all()

    def render(r):
        name = f"{r.first_name} {r.last_name}".strip()
        parts = [name] if name else []
        if r.status != "ok":
            parts.append(r.status.replace("_", " "))
        return {"label": r.email, "value": str(r.id), "description": " · ".join(parts)}

    return _page(rows, render, lambda r: r.k)


def rotation_options(workspace_id: int, q: str | None, after: str | None) -> dict:
    """Rotations not deleted, sorted by name."""
    key = func.lower(Rotation.name)
    query = db.select(Rotation.id, Rotation.name, Rotation.mode, key.label("k")).where(
        Rotation.workspace_id == workspace_id, Rotation.deleted_at.is_(None)
    )
    if q:
        query = query.where(key.like(_like(q), escape="\\"))
    rows = db.session.execute(_keyset_page(query, key, Rotation.id, decode_cursor(after))).all()
    return _page(
        rows,
        lambda r: {"label": r.name, "value": str(r.id), "description": f"{r.mode.capitalize()}"},
        lambda r: r.k,
    )


FIELD_OPTIONS = ("sequence", "mailbox", "rotation", "send_from")


def field_options(
    workspace_id: int, field: str, q: str | None, after: str | None, input_fields: dict
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
    raise ValueError(f"unknown input field {field}")
