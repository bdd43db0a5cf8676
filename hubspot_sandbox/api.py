"""HubSpot-facing API routes: sequences, owners, users, action definitions, callbacks.

Every portal-authenticated route goes through :func:`portal_route`, which in order
authenticates the Bearer token (401), applies the portal's injected faults (drop,
latency, 429 storm, 5xx), takes a rate-limit slot (429) and checks the scope (403).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import random
import socket
import time
from collections import deque
from functools import wraps
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, jsonify, request

from . import schemas
from .crm import FIRST_USER_TYPE_ID, READ_SCOPES, object_type
from .errors import ApiError, validation_error
from .state import Enrollment, Portal, iso

bp = Blueprint("hubspot_api", __name__)

SCOPE_SEQ_READ = "automation.sequences.read"
SCOPE_ENROLL = "automation.sequences.enrollments.write"
SCOPE_OWNERS = "crm.objects.owners.read"
SCOPE_USERS = "settings.users.read"
SCOPE_CALLBACKS = "automation"
SEQ_PREFIXES = ("/automation/v4/sequences", "/automation/sequences/2026-03")
# Dated and legacy prefixes of the action APIs (hubspot-automation-actions-v4-openapi.json,
# version 2026-09); the legacy ones are listed in LEGACY_PREFIXES.
ACTIONS_DATED = "/automation/actions/2026-09"
ACTIONS_V4 = "/automation/v4/actions"
CALLBACKS_DATED = "/automation/actions/callbacks/2026-09"
CALLBACKS_V4 = "/automation/v4/actions/callbacks"
# What HubSpot labels legacy (v4) or sunsets (OAuth v1, 2027-02-16): refused when
# ``state.refuse_legacy`` is set, and counted in ``state.legacy_calls`` either way.
LEGACY_PREFIXES = ("/oauth/v1/", "/automation/v4/sequences", "/automation/v4/actions")
RATE_MESSAGE = "You have reached your ten_secondly_rolling limit."


def sandbox():
    """The :class:`hubspot_sandbox.Sandbox` context of the current Flask app."""
    return current_app.extensions["hubspot_sandbox"]


# -- paging helpers ---------------------------------------------------------


def encode_cursor(last_id) -> str:
    """Opaque cursor for the item after ``last_id``."""
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(after: str | None) -> int | None:
    """Decode a cursor made by :func:`encode_cursor`; 400 on anything else."""
    if after is None or after == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "v1":
            raise ValueError(raw)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise validation_error(f"Invalid paging cursor 'after': {after}", "after") from None


def parse_limit(default: int, maximum: int) -> int:
    """Read ``limit`` from the query string: default when absent, capped, 400 when bad."""
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(f"Invalid limit: {raw}", "limit") from None
    if value < 1:
        raise validation_error(f"limit must be at least 1, got {value}", "limit")
    return min(value, maximum)


def paged(results: list, has_more: bool, last_id, total: int | None = None) -> dict:
    """Build a list answer with ``paging.next`` only when there is a next page."""
    body: dict = {}
    if total is not None:
        body["total"] = total
    body["results"] = results
    if has_more:
        cursor = encode_cursor(last_id)
        params = {k: v for k, v in request.args.items() if k != "after"}
        params["after"] = cursor
        body["paging"] = {
            "next": {"after": cursor, "link": f"{request.base_url}?{urlencode(params)}"}
        }
    return body


# -- retired paths ---------------------------------------------------------------


@bp.before_app_request
def refuse_retired_paths():
    """Count calls to legacy paths; answer 410 when the sandbox is told to refuse them."""
    path = request.path
    if not path.startswith(LEGACY_PREFIXES):
        return None
    state = sandbox().state
    with state.lock:
        key = f"{request.method} {path}"
        state.legacy_calls[key] = state.legacy_calls.get(key, 0) + 1
        refuse = state.refuse_legacy
    if refuse:
        return ApiError(
            410,
            f"{path} is retired; use HubSpot's date-versioned API",
            "GONE",
            "RETIRED_API_VERSION",
        ).response()
    return None


# -- authentication, faults, rate limits --------------------------------------


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def authenticate():
    """Return the access token record of the request, or raise 401."""
    state = sandbox().state
    token = bearer_token()
    if not token:
        raise ApiError(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            "INVALID_AUTHENTICATION",
        )
    with state.lock:
        rec = state.access_tokens.get(token)
        if rec is None or rec.revoked or rec.portal_id not in state.portals:
            raise ApiError(
                401,
                "Authentication credentials not found or the token was revoked.",
                "INVALID_AUTHENTICATION",
            )
        if time.time() >= rec.expires_at:
            raise ApiError(
                401,
                "The OAuth token used to make this call expired.",
                "EXPIRED_AUTHENTICATION",
            )
        return rec


def drop_connection() -> None:
    """Close the client's socket without an HTTP answer."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ApiError(500, "connection dropped", "INTERNAL_ERROR")


def apply_faults(portal: Portal) -> None:
    """Apply the portal's injected faults to this request."""
    faults = portal.faults
    if faults.drop_rate and random.random() < faults.drop_rate:
        drop_connection()
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000.0)
    now = time.time()
    if faults.storm_until > now:
        with sandbox().state.lock:
            portal.stats_rate_limited += 1
        raise rate_limited_error(max(1, int(faults.storm_until - now + 0.999)))
    if faults.error_rate and random.random() < faults.error_rate:
        raise ApiError(500, "Internal error (injected fault)", "INTERNAL_ERROR")


def rate_limited_error(retry_after: int) -> ApiError:
    err = ApiError(
        429,
        RATE_MESSAGE,
        "RATE_LIMITS",
        headers={"Retry-After": str(retry_after)},
        extra={"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
    )
    err.category = None
    return err


def take_rate_slot(portal: Portal) -> None:
    """Count the request against the portal's rolling budget; 429 when spent."""
    ctx = sandbox()
    limit = ctx.state.effective_rate_limit(portal)
    if limit is None:
        g.rate_headers = None
        return
    count, interval = limit
    allowed, remaining, retry = ctx.limiter.hit(portal.id, count, interval)
    g.rate_headers = (count, remaining, int(interval * 1000))
    if not allowed:
        with ctx.state.lock:
            portal.stats_rate_limited += 1
        raise rate_limited_error(retry)


def missing_scope(scope: str) -> ApiError:
    """HubSpot's 403 for a token without ``scope``."""
    return ApiError(
        403,
        f"This app hasn't been granted all required scopes to make this call. "
        f"Read more about required scopes here: "
        f"https://developers.hubspot.com/scopes. Missing: [{scope}]",
        "MISSING_SCOPES",
        context={"requiredGranularScopes": [scope]},
    )


def portal_route(scope: str | None):
    """Decorator for routes authenticated with a portal's Bearer token."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            token = authenticate()
            state = sandbox().state
            portal = state.portals.get(token.portal_id)
            if portal is None:
                raise ApiError(401, "The portal of this token is gone.", "INVALID_AUTHENTICATION")
            g.portal = portal
            with state.lock:
                portal.stats_requests += 1
                rule = request.url_rule.rule if request.url_rule else request.path
                key = f"{request.method} {rule}"
                portal.stats_by_path[key] = portal.stats_by_path.get(key, 0) + 1
            apply_faults(portal)
            take_rate_slot(portal)
            if scope and scope not in token.scopes:
                raise missing_scope(scope)
            return fn(portal, token, *args, **kwargs)

        return wrapper

    return decorate


@bp.after_app_request
def add_rate_headers(resp):
    """Every HubSpot-API answer carries the rate-limit headers; count statuses per portal."""
    path = request.path
    if path.startswith("/_sandbox") or path.startswith("/oauth/authorize"):
        return resp
    headers = g.get("rate_headers", "unset")
    if headers == "unset":
        limit = sandbox().state.rate_limit
        portal = g.get("portal")
        if portal is not None:
            limit = sandbox().state.effective_rate_limit(portal)
        headers = None if limit is None else (limit[0], limit[0], int(limit[1] * 1000))
    if headers is not None:
        resp.headers["X-HubSpot-RateLimit-Max"] = str(headers[0])
        resp.headers["X-HubSpot-RateLimit-Remaining"] = str(headers[1])
        resp.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(headers[2])
    portal = g.get("portal")
    if portal is not None:
        with sandbox().state.lock:
            key = str(resp.status_code)
            portal.stats_by_status[key] = portal.stats_by_status.get(key, 0) + 1
    return resp


# -- sequences ----------------------------------------------------------------


def require_user(portal: Portal):
    """The ``userId`` query parameter as a user of the portal; 400 when missing/unknown."""
    raw = request.args.get("userId")
    if raw is None or raw == "":
        raise validation_error("userId is required", "userId")
    try:
        uid = int(raw)
    except ValueError:
        raise validation_error(f"Invalid userId: {raw}", "userId") from None
    user = portal.users.get(uid)
    if user is None:
        raise validation_error(f"Unknown userId: {raw}", "userId")
    return user


def sequence_routes(rule: str, **options):
    """Register one view under both the v4 and the 2026-03 sequences prefixes."""

    def decorate(fn):
        for i, prefix in enumerate(SEQ_PREFIXES):
            bp.add_url_rule(prefix + rule, f"{fn.__name__}_{i}", fn, **options)
        return fn

    return decorate


@sequence_routes("", methods=["GET"])
@portal_route(SCOPE_SEQ_READ)
def list_sequences(portal: Portal, token):
    """List the sequences a user sees: own plus team-shared, ordered by id."""
    state = sandbox().state
    schemas.check_query("sequence_list_query", request.args)
    limit = parse_limit(10, 100)
    after = decode_cursor(request.args.get("after"))
    name = (request.args.get("name") or "").strip().lower()
    with state.lock:
        user = require_user(portal)
        if name:
            everything = portal.visible_page(user.id, None, len(portal.sequences) + 1)
            matching = [i for i in everything if name in portal.sequences[str(i)].name.lower()]
            total = len(matching)
            start = 0 if after is None else bisect.bisect_right(matching, after)
            ids = matching[start : start + limit + 1]
        else:
            total = portal.visible_count(user.id)
            ids = portal.visible_page(user.id, after, limit + 1)
        has_more = len(ids) > limit
        ids = ids[:limit]
        results = [portal.sequences[str(i)].to_api(portal.include_state) for i in ids]
    return jsonify(paged(results, has_more, ids[-1] if ids else None, total))


# -- workflows (flows) --------------------------------------------------------


@bp.route("/automation/v4/flows", methods=["GET"])
@portal_route(SCOPE_CALLBACKS)
def list_flows(portal: Portal, token):
    """The portal's workflows, by id, paged (``results[]`` of ``id``, ``name``, ``isEnabled``,
    ``objectTypeId``, ``flowType``, ``revisionId``, ``createdAt``, ``updatedAt``); scope
    ``automation``."""
    schemas.check_query("flows_query", request.args)
    limit = parse_limit(20, 100)
    after = decode_cursor(request.args.get("after"))
    with sandbox().state.lock:
        ids = sorted(int(i) for i in portal.flows)
        start = 0 if after is None else bisect.bisect_right(ids, after)
        page = ids[start : start + limit + 1]
        has_more = len(page) > limit
        page = page[:limit]
        results = [dict(portal.flows[str(i)]) for i in page]
    return jsonify(paged(results, has_more, page[-1] if page else None))


def _steps(seq_id: str) -> list[dict]:
    n = 2 + int(seq_id) % 3
    steps = []
    for i in range(n):
        kind = "AUTOMATED_EMAIL" if i % 2 == 0 else "TASK"
        steps.append(
            {
                "stepOrder": i,
                "delayMillis": 0 if i == 0 else 86400000 * i,
                "actionType": kind,
                "id": f"{seq_id}{i:02d}",
            }
        )
    return steps


@sequence_routes("/<sequence_id>", methods=["GET"])
@portal_route(SCOPE_SEQ_READ)
def get_sequence(portal: Portal, token, sequence_id: str):
    """One sequence with ``steps``, ``dependencies`` and ``settings``; 404 if not visible."""
    state = sandbox().state
    schemas.check_query("sequence_get_query", request.args)
    with state.lock:
        user = require_user(portal)
        seq = portal.sequences.get(sequence_id)
        if seq is None or not portal.visible(seq, user.id):
            raise ApiError(
                404,
                f"Sequence {sequence_id} not found",
                "OBJECT_NOT_FOUND",
                "SEQUENCE_NOT_FOUND",
            )
        body = seq.to_api(portal.include_state)
    body["steps"] = _steps(seq.id)
    body["dependencies"] = []
    body["settings"] = {
        "eligibleFollowUpDays": "BUSINESS_DAYS",
        "individualTaskRemindersEnabled": False,
        "sellingStrategy": "LEAD_BASED",
        "sendWindowStartMinute": 480,
        "sendWindowEndMinute": 1080,
        "taskReminderMinute": 480,
    }
    return jsonify(body)


def enrollment_refusal(status: int, message: str, sub: str) -> ApiError:
    category = {400: "VALIDATION_ERROR", 403: "FORBIDDEN", 404: "OBJECT_NOT_FOUND"}[status]
    return ApiError(status, message, category, sub)


def read_json_object() -> dict:
    """The request body as a JSON object; 400 when it is not one."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(
            400, "Invalid input JSON: the body must be a JSON object", "VALIDATION_ERROR"
        )
    return data


@sequence_routes("/enrollments", methods=["POST"])
@portal_route(SCOPE_ENROLL)
def enroll(portal: Portal, token):
    """Enroll a contact into a sequence, with HubSpot's refusals (subCategory per the contract)."""
    state = sandbox().state
    data = read_json_object()
    schemas.check_query("enrollment_query", request.args)
    schemas.check("enrollment", data)
    alias = data.get("senderAliasAddress")
    contact_id = str(data["contactId"])
    sequence_id = str(data["sequenceId"])
    sender = str(data["senderEmail"])
    with state.lock:
        user = require_user(portal)
        if not user.active:
            raise enrollment_refusal(403, "Permission denied", "PERMISSION_DENIED")
        seq = portal.sequences.get(sequence_id)
        if seq is None:
            raise enrollment_refusal(404, f"Sequence {sequence_id} not found", "SEQUENCE_NOT_FOUND")
        contact = portal.contacts.get(contact_id)
        if contact is None:
            raise enrollment_refusal(404, f"Contact {contact_id} not found", "CONTACT_NOT_FOUND")
        if not user.seat or not portal.visible(seq, user.id):
            raise enrollment_refusal(403, "Permission denied", "PERMISSION_DENIED")
        connected = {e.lower() for e, ok in user.inboxes.items() if ok}
        if sender.lower() not in connected:
            raise enrollment_refusal(
                400,
                f"User {user.id} has no connected inboxes for specified user email",
                "NO_CONNECTED_INBOX",
            )
        if portal.current_enrollment(contact_id) is not None:
            raise enrollment_refusal(
                400, "Contact already enrolled in a sequence", "ALREADY_ENROLLED"
            )
        if contact.unsubscribed:
            raise enrollment_refusal(400, "Contact has unsubscribed from email", "UNSUBSCRIBED")
        if contact.bounced:
            raise enrollment_refusal(400, "Contact's email address has bounced", "BOUNCED")
        now = time.time()
        sends = portal.sends.setdefault(sender.lower(), deque())
        while sends and sends[0] <= now - 86400:
            sends.popleft()
        if len(sends) >= portal.daily_cap:
            raise enrollment_refusal(
                400,
                f"Inbox {sender} has reached its limit of {portal.daily_cap} sequence emails "
                "in 24 hours",
                "SEND_LIMIT_EXCEEDED",
            )
        sends.append(now)
        enrollment = Enrollment(
            id=state.new_enrollment_id(),
            contact_id=contact_id,
            sequence_id=seq.id,
            sequence_name=seq.name,
            user_id=user.id,
            sender_email=sender,
            to_email=contact.email,
            enrolled_at=now,
            sender_alias=alias,
            ends_at=now + portal.enrollment_length if portal.enrollment_length else None,
        )
        portal.enrollments[contact_id] = enrollment
        body = enrollment.to_api()
    return jsonify(body)


@sequence_routes("/enrollments/contact/<contact_id>", methods=["GET"])
@portal_route(SCOPE_SEQ_READ)
def contact_enrollment(portal: Portal, token, contact_id: str):
    """The sequence a contact is enrolled in; 404 when in none."""
    with sandbox().state.lock:
        enrollment = portal.current_enrollment(contact_id)
        if enrollment is None:
            raise ApiError(
                404,
                f"Contact {contact_id} is not enrolled in a sequence",
                "OBJECT_NOT_FOUND",
                "ENROLLMENT_NOT_FOUND",
            )
        return jsonify(enrollment.to_contact_api(enrollment.sender_email))


# -- CRM associations (deal, company and ticket workflows) ------------------------
# hubspot-crm-associations-openapi.json and -schema-openapi.json, version 2026-03: see crm.py.

ASSOC_PREFIXES = ("/crm/v4/objects", "/crm/objects/2026-03")
LABEL_PREFIXES = ("/crm/v4/associations", "/crm/associations/2026-03")
MAX_ASSOCIATIONS_PAGE = 500


def _both(prefixes: tuple[str, ...], rule: str):
    """Register one view under a legacy and a dated prefix."""

    def decorate(fn):
        for i, prefix in enumerate(prefixes):
            bp.add_url_rule(prefix + rule, endpoint=f"{fn.__name__}_{i}", view_func=fn)
        return fn

    return decorate


def _association_type(type_id: int, labels: dict) -> dict:
    category = "HUBSPOT_DEFINED" if type_id < FIRST_USER_TYPE_ID else "USER_DEFINED"
    return {"category": category, "typeId": type_id, "label": labels.get(type_id)}


@_both(ASSOC_PREFIXES, "/<from_type>/<object_id>/associations/<to_type>")
@portal_route(None)
def list_associations(portal: Portal, token, from_type: str, object_id: str, to_type: str):
    """A record's associated contacts with their association types (paged, 500 at most);
    the read scope of the record's object type."""
    from_name, to_name = object_type(from_type), object_type(to_type)
    if READ_SCOPES[from_name] not in token.scopes:
        raise missing_scope(READ_SCOPES[from_name])
    schemas.check_query("associations_query", request.args)
    limit = parse_limit(MAX_ASSOCIATIONS_PAGE, MAX_ASSOCIATIONS_PAGE)
    start = decode_cursor(request.args.get("after")) or 0
    with sandbox().state.lock:
        record = portal.crm.records.get(from_name, {}).get(object_id)
        if record is None:
            raise ApiError(404, f"No {from_name} record with id {object_id}", "OBJECT_NOT_FOUND")
        labels = portal.crm.label_names(from_name)
        items = list(record.contacts.items()) if to_name == "contacts" else []
    dated = request.path.startswith(ASSOC_PREFIXES[1])
    results = [
        {
            # a string on the dated path, int64 on the legacy v4 one (their models say so)
            "toObjectId": cid if dated else int(cid),
            "associationTypes": [_association_type(t, labels) for t in types],
        }
        for cid, types in items[start : start + limit]
    ]
    return jsonify(paged(results, start + limit < len(items), start + limit))


@_both(LABEL_PREFIXES, "/<from_type>/<to_type>/labels")
@portal_route(None)
def list_association_labels(portal: Portal, token, from_type: str, to_type: str):
    """The association types (HubSpot's and the portal's labels) between two object types."""
    from_name, to_name = object_type(from_type), object_type(to_type)
    if READ_SCOPES[from_name] not in token.scopes:
        raise missing_scope(READ_SCOPES[from_name])
    with sandbox().state.lock:
        results = portal.crm.types(from_name) if to_name == "contacts" else []
    return jsonify({"results": results})


# -- owners and users ---------------------------------------------------------


@bp.route("/crm/v3/owners", methods=["GET"])
@bp.route("/crm/v3/owners/", methods=["GET"])
@portal_route(SCOPE_OWNERS)
def list_owners(portal: Portal, token):
    """Owners (one PERSON owner per user). ``archived=true`` lists only deactivated users'."""
    schemas.check_query("owners_query", request.args)
    limit = parse_limit(100, 500)
    after = decode_cursor(request.args.get("after"))
    email = (request.args.get("email") or "").strip().lower()
    archived = (request.args.get("archived") or "false").lower() == "true"
    with sandbox().state.lock:
        owners = sorted(portal.users.values(), key=lambda u: u.owner_id)
        rows = [
            u
            for u in owners
            if (not u.active) == archived
            and (after is None or u.owner_id > after)
            and (not email or u.email.lower() == email)
        ]
        page = rows[:limit]
        results = [
            {
                "id": str(u.owner_id),
                "email": u.email,
                "type": "PERSON",
                "firstName": u.first_name,
                "lastName": u.last_name,
                "userId": u.id,
                "userIdIncludingInactive": u.id,
                "createdAt": "2024-01-15T09:00:00.000Z",
                "updatedAt": "2025-06-01T09:00:00.000Z",
                "archived": not u.active,
                "teams": [{"id": "9001", "name": "Sales", "primary": True}],
            }
            for u in page
        ]
    return jsonify(paged(results, len(rows) > limit, page[-1].owner_id if page else None))


@bp.route("/settings/v3/users", methods=["GET"])
@bp.route("/settings/v3/users/", methods=["GET"])
@portal_route(SCOPE_USERS)
def list_users(portal: Portal, token):
    """Active users of the portal (deactivated users are not listed).

    ``seatNames`` follows the portal's ``seat_names`` setting: ``listed`` (a Sales seat, or
    ``["Core"]`` for a user without one), ``empty`` (always ``[]``) or ``omitted`` (no key):
    HubSpot's newer field is not in every portal's answer (hubspot-api.md section 8).
    """
    schemas.check_query("users_query", request.args)
    limit = parse_limit(100, 100)
    after = decode_cursor(request.args.get("after"))
    with sandbox().state.lock:
        rows = [
            u
            for u in sorted(portal.users.values(), key=lambda u: u.id)
            if u.active and (after is None or u.id > after)
        ]
        page = rows[:limit]
        results = []
        for u in page:
            item = {
                "id": str(u.id),
                "email": u.email,
                "firstName": u.first_name,
                "lastName": u.last_name,
                "roleIds": ["1"] if u.super_admin else [],
                "primaryTeamId": "9001",
                "superAdmin": u.super_admin,
            }
            if portal.seat_names == "listed":
                item["seatNames"] = ["Sales Hub Professional"] if u.seat else ["Core"]
            elif portal.seat_names == "empty":
                item["seatNames"] = []
            results.append(item)
    return jsonify(paged(results, len(rows) > limit, page[-1].id if page else None))


# -- custom workflow actions --------------------------------------------------


def developer_auth(app_id: int) -> None:
    """Authenticate a definitions call; 401/404.

    The dated path takes a developer OAuth token (Bearer, scope ``developers-write``); the legacy
    v4 path the developer API key (``?hapikey=``). Security schemes of
    hubspot-automation-actions-v4-openapi.json.
    """
    state = sandbox().state
    if request.path.startswith(ACTIONS_DATED):
        token = bearer_token()
        if not token or token != state.app.developer_token:
            raise ApiError(
                401,
                "A developer OAuth token with scope developers-write is required.",
                "INVALID_AUTHENTICATION",
            )
    else:
        key = request.args.get("hapikey") or bearer_token()
        if not key or key != state.app.developer_api_key:
            raise ApiError(
                401, "The developer API key is missing or invalid.", "INVALID_AUTHENTICATION"
            )
    if app_id != state.app.app_id:
        raise ApiError(404, f"App {app_id} not found", "OBJECT_NOT_FOUND")
    g.rate_headers = None


def definition_routes(rule: str, **options):
    """Register one view under the dated and the legacy v4 definition paths."""

    def decorate(fn):
        for i, prefix in enumerate((ACTIONS_DATED, ACTIONS_V4)):
            bp.add_url_rule(prefix + rule, f"{fn.__name__}_{i}", fn, **options)
        return fn

    return decorate


DEFINITION_FIELDS = (
    "actionUrl",
    "published",
    "objectTypes",
    "inputFields",
    "outputFields",
    "labels",
    "objectRequestOptions",
    "executionRules",
    "inputFieldDependencies",
    "functions",
    "archivedAt",
)


def validate_definition(data: dict) -> None:
    """What the schema cannot say: labels.en with an actionName (HubSpot needs English)."""
    labels = data.get("labels")
    en = labels.get("en") if isinstance(labels, dict) else None
    if not isinstance(en, dict) or not en.get("actionName"):
        raise validation_error("labels.en.actionName is required", "labels.en.actionName")


@definition_routes("/<int:app_id>", methods=["POST"])
def create_definition(app_id: int):
    """Create an action definition (201)."""
    developer_auth(app_id)
    data = read_json_object()
    schemas.check("definition_create", data)
    validate_definition(data)
    state = sandbox().state
    definition = {k: data[k] for k in DEFINITION_FIELDS if k in data}
    definition.setdefault("outputFields", [])
    definition.setdefault("executionRules", [])
    definition.setdefault("inputFieldDependencies", [])
    definition["id"] = state.new_definition_id()
    definition["revisionId"] = "1"
    with state.lock:
        state.definitions[definition["id"]] = definition
        body = dict(definition)
    return jsonify(body), 201


@definition_routes("/<int:app_id>", methods=["GET"])
def list_definitions(app_id: int):
    """Paged list of the app's action definitions."""
    developer_auth(app_id)
    schemas.check_query("definition_list_query", request.args)
    limit = parse_limit(20, 100)
    after = decode_cursor(request.args.get("after"))
    state = sandbox().state
    with state.lock:
        rows = sorted(state.definitions.values(), key=lambda d: int(d["id"]))
        rows = [dict(d) for d in rows if after is None or int(d["id"]) > after]
    page = rows[:limit]
    return jsonify(paged(page, len(rows) > limit, page[-1]["id"] if page else None))


def _definition(definition_id: str) -> dict:
    definition = sandbox().state.definitions.get(definition_id)
    if definition is None:
        raise ApiError(404, f"Action definition {definition_id} not found", "OBJECT_NOT_FOUND")
    return definition


@definition_routes("/<int:app_id>/<definition_id>", methods=["GET"])
def get_definition(app_id: int, definition_id: str):
    """One action definition."""
    developer_auth(app_id)
    with sandbox().state.lock:
        return jsonify(dict(_definition(definition_id)))


@definition_routes("/<int:app_id>/<definition_id>", methods=["PATCH"])
def patch_definition(app_id: int, definition_id: str):
    """Update fields of a definition; bumps ``revisionId``."""
    developer_auth(app_id)
    data = read_json_object()
    schemas.check("definition_patch", data)
    state = sandbox().state
    with state.lock:
        current = _definition(definition_id)
        merged = dict(current)
        merged.update({k: data[k] for k in DEFINITION_FIELDS if k in data})
        validate_definition(merged)
        merged["revisionId"] = str(int(current["revisionId"]) + 1)
        state.definitions[definition_id] = merged
        return jsonify(dict(merged))


@definition_routes("/<int:app_id>/<definition_id>", methods=["DELETE"])
def delete_definition(app_id: int, definition_id: str):
    """Delete a definition (204)."""
    developer_auth(app_id)
    state = sandbox().state
    with state.lock:
        _definition(definition_id)
        del state.definitions[definition_id]
    return "", 204


# -- callbacks ----------------------------------------------------------------

FINAL_STATES = ("SUCCESS", "FAIL_CONTINUE")


def _complete(portal: Portal, callback_id: str, output_fields, check_only: bool) -> None:
    state = sandbox().state
    cb = state.callbacks.get(callback_id)
    if cb is None or cb.portal_id != portal.id:
        raise ApiError(404, f"Callback {callback_id} not found", "OBJECT_NOT_FOUND")
    if not isinstance(output_fields, dict):
        raise validation_error("outputFields must be an object", "outputFields")
    if output_fields.get("hs_execution_state") not in FINAL_STATES:
        raise validation_error(
            "outputFields.hs_execution_state must be SUCCESS or FAIL_CONTINUE",
            "outputFields.hs_execution_state",
        )
    cb.refresh()
    if cb.completion is not None or cb.status in ("succeeded", "fail_continue", "failed"):
        raise ApiError(400, f"Callback {callback_id} is already completed", "VALIDATION_ERROR")
    if cb.status == "expired":
        raise ApiError(400, f"Callback {callback_id} has expired", "VALIDATION_ERROR")
    if check_only:
        return
    cb.completion = {"outputFields": dict(output_fields), "completedAt": iso(time.time())}
    cb.status = "completed"
    cb.done.set()


@bp.route(f"{CALLBACKS_DATED}/<callback_id>/complete", methods=["POST"])
@bp.route(f"{CALLBACKS_V4}/<callback_id>/complete", methods=["POST"])
@portal_route(SCOPE_CALLBACKS)
def complete_callback(portal: Portal, token, callback_id: str):
    """Complete one blocked execution (204). The dated path requires ``typedOutputs``."""
    data = read_json_object()
    dated = request.path.startswith(CALLBACKS_DATED)
    schemas.check("callback_complete" if dated else "callback_complete_v4", data)
    with sandbox().state.lock:
        _complete(portal, callback_id, data.get("outputFields"), check_only=False)
    return "", 204


@bp.route(f"{CALLBACKS_DATED}/complete", methods=["POST"])
@bp.route(f"{CALLBACKS_V4}/complete", methods=["POST"])
@portal_route(SCOPE_CALLBACKS)
def complete_callbacks_batch(portal: Portal, token):
    """Complete several executions at once (204); all-or-nothing validation."""
    data = read_json_object()
    dated = request.path.startswith(CALLBACKS_DATED)
    schemas.check("callback_complete_batch" if dated else "callback_complete_batch_v4", data)
    inputs = data["inputs"]
    with sandbox().state.lock:
        for item in inputs:
            _complete(portal, item["callbackId"], item.get("outputFields"), check_only=True)
        for item in inputs:
            _complete(portal, item["callbackId"], item.get("outputFields"), check_only=False)
    return "", 204
