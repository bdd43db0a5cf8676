"""Admin API (JSON, under ``/_sandbox/``) and the server-rendered admin page.

No authentication: the sandbox is a local test tool. Bad input answers 400 with the
error JSON and a reason.
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from .api import read_json_object, sandbox
from .crm import parse_contacts
from .errors import ApiError, validation_error
from .runner import RunnerError
from .state import SEAT_NAMES_MODES, SEQUENCE_STATES, Portal, Sequence, User, parse_rate_limit

bp = Blueprint("admin", __name__, url_prefix="/_sandbox")


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", "OBJECT_NOT_FOUND")


def get_portal(pid: int) -> Portal:
    portal = sandbox().state.portals.get(pid)
    if portal is None:
        raise not_found(f"Portal {pid}")
    return portal


def get_user(portal: Portal, uid: int) -> User:
    user = portal.users.get(uid)
    if user is None:
        raise not_found(f"User {uid}")
    return user


def get_sequence(portal: Portal, sid: str) -> Sequence:
    seq = portal.sequences.get(sid)
    if seq is None:
        raise not_found(f"Sequence {sid}")
    return seq


def _bool(data: dict, key: str, default=None):
    value = data.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise validation_error(f"{key} must be a boolean", key)
    return value


def _str(data: dict, key: str, required: bool = False, allow_none: bool = True):
    value = data.get(key)
    if value is None:
        if required:
            raise validation_error(f"{key} is required", key)
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise validation_error(f"{key} must be a non-empty string", key)
    return value


def _int(data: dict, key: str, required: bool = False, minimum: int | None = None):
    value = data.get(key)
    if value is None:
        if required:
            raise validation_error(f"{key} is required", key)
        return None
    if isinstance(value, bool):
        raise validation_error(f"{key} must be an integer", key)
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise validation_error(f"{key} must be an integer", key) from None
    if minimum is not None and value < minimum:
        raise validation_error(f"{key} must be >= {minimum}", key)
    return value


# -- app, portals -------------------------------------------------------------


@bp.route("/app", methods=["GET"])
def app_info():
    """The developer app credentials."""
    return jsonify(sandbox().state.app.to_dict())


@bp.route("/legacy", methods=["GET", "PATCH"])
def legacy_paths():
    """``{refuse: bool}`` refuses HubSpot's legacy/retired paths with 410 (or serves them
    again); the answer also counts the calls each legacy path received."""
    state = sandbox().state
    if request.method == "PATCH":
        data = read_json_object()
        if not isinstance(data.get("refuse"), bool):
            raise validation_error("refuse must be a boolean", "refuse")
        with state.lock:
            state.refuse_legacy = data["refuse"]
    with state.lock:
        return jsonify({"refuse": state.refuse_legacy, "calls": dict(state.legacy_calls)})


@bp.route("/portals", methods=["GET"])
def list_portals():
    """Summaries of every portal."""
    state = sandbox().state
    with state.lock:
        return jsonify({"results": [p.summary() for p in state.portals.values()]})


@bp.route("/portals", methods=["POST"])
def create_portal():
    """Create a portal: ``{id?, domain?, users?: [...], sequences?: [...], contacts?: n}``."""
    data = read_json_object()
    state = sandbox().state
    pid = _int(data, "id", minimum=1)
    domain = _str(data, "domain")
    with state.lock:
        if pid is not None and pid in state.portals:
            raise validation_error(f"portal {pid} already exists", "id")
        payload = dict(data)
        payload["id"] = pid
        payload["domain"] = domain
        # reuse the seed loader without touching the remembered seed spec
        spec = state.seed_spec
        before = set(state.portals)
        try:
            portal = state.load_seed({"portals": [payload]})[0]
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            for new_id in set(state.portals) - before:
                del state.portals[new_id]
            raise validation_error(f"invalid portal: {exc!r}") from None
        finally:
            state.seed_spec = spec
        return jsonify(_portal_detail(portal)), 201


def _portal_detail(portal: Portal) -> dict:
    state = sandbox().state
    out = portal.summary()
    out["settings"] = portal.settings_dict(state.token_ttl, state.rate_limit)
    out["faults"] = portal.faults.to_dict()
    out["users"] = [u.to_admin() for u in sorted(portal.users.values(), key=lambda u: u.id)]
    return out


@bp.route("/portals/<int:pid>", methods=["GET"])
def portal_detail(pid: int):
    """A portal with its users (and their inboxes), settings and faults."""
    with sandbox().state.lock:
        return jsonify(_portal_detail(get_portal(pid)))


@bp.route("/portals/<int:pid>", methods=["DELETE"])
def delete_portal(pid: int):
    """Delete a portal (its tokens stop working)."""
    state = sandbox().state
    with state.lock:
        get_portal(pid)
        state.revoke_portal(pid)
        del state.portals[pid]
    return "", 204


# -- sequences ----------------------------------------------------------------


@bp.route("/portals/<int:pid>/sequences", methods=["GET"])
def list_sequences(pid: int):
    """All sequences of the portal (admin view, with ``shared`` and ``state``)."""
    with sandbox().state.lock:
        portal = get_portal(pid)
        rows = sorted(portal.sequences.values(), key=lambda s: int(s.id))
        return jsonify({"results": [s.to_admin() for s in rows]})


def _check_state(data: dict):
    value = data.get("state")
    if value is not None and value not in SEQUENCE_STATES:
        raise validation_error(f"state must be one of {', '.join(SEQUENCE_STATES)}", "state")
    return value


@bp.route("/portals/<int:pid>/sequences", methods=["POST"])
def create_sequence(pid: int):
    """Create ``{name, userId, shared, folderId?, state?}`` (201)."""
    data = read_json_object()
    state = sandbox().state
    name = _str(data, "name", required=True)
    uid = _int(data, "userId", required=True)
    shared = _bool(data, "shared", True)
    folder = data.get("folderId")
    if folder is not None and not isinstance(folder, (str, int)):
        raise validation_error("folderId must be a string", "folderId")
    seq_state = _check_state(data) or "active"
    with state.lock:
        portal = get_portal(pid)
        if uid not in portal.users:
            raise validation_error(f"unknown userId {uid}", "userId")
        seq = state.add_sequence(
            portal,
            name,
            uid,
            shared=shared,
            folder_id=None if folder is None else str(folder),
            state=seq_state,
        )
        return jsonify(seq.to_admin()), 201


@bp.route("/portals/<int:pid>/sequences/<sid>", methods=["PATCH"])
def patch_sequence(pid: int, sid: str):
    """Change ``name``, ``shared``, ``state``, ``folderId`` (null removes) or ``userId``."""
    data = read_json_object()
    state = sandbox().state
    changes: dict = {}
    if "name" in data:
        changes["name"] = _str(data, "name", required=True)
    if "shared" in data:
        changes["shared"] = _bool(data, "shared")
        if changes["shared"] is None:
            raise validation_error("shared must be a boolean", "shared")
    if "state" in data:
        changes["state"] = _check_state(data)
    if "folderId" in data:
        folder = data["folderId"]
        if folder is not None and not isinstance(folder, (str, int)):
            raise validation_error("folderId must be a string or null", "folderId")
        changes["folder_id"] = None if folder is None else str(folder)
    if "userId" in data:
        changes["user_id"] = _int(data, "userId", required=True)
    if not changes:
        raise validation_error("nothing to change")
    with state.lock:
        portal = get_portal(pid)
        seq = get_sequence(portal, sid)
        if "user_id" in changes and changes["user_id"] not in portal.users:
            raise validation_error(f"unknown userId {changes['user_id']}", "userId")
        state.update_sequence(portal, seq, **changes)
        return jsonify(seq.to_admin())


@bp.route("/portals/<int:pid>/sequences/<sid>", methods=["DELETE"])
def delete_sequence(pid: int, sid: str):
    """Delete a sequence (204)."""
    state = sandbox().state
    with state.lock:
        portal = get_portal(pid)
        state.delete_sequence(portal, get_sequence(portal, sid))
    return "", 204


# -- users and inboxes ------------------------------------------------------


@bp.route("/portals/<int:pid>/users", methods=["GET"])
def list_users(pid: int):
    """All users (active or not) with seats and inboxes."""
    with sandbox().state.lock:
        portal = get_portal(pid)
        rows = sorted(portal.users.values(), key=lambda u: u.id)
        return jsonify({"results": [u.to_admin() for u in rows]})


@bp.route("/portals/<int:pid>/users", methods=["POST"])
def create_user(pid: int):
    """Add ``{email, firstName?, lastName?, seat?, active?, superAdmin?, inboxes?}`` (201)."""
    data = read_json_object()
    state = sandbox().state
    email = _str(data, "email", required=True)
    if "@" not in email:
        raise validation_error("email must be an email address", "email")
    inboxes = data.get("inboxes")
    if inboxes is not None and (
        not isinstance(inboxes, list) or not all(isinstance(i, str) for i in inboxes)
    ):
        raise validation_error("inboxes must be a list of emails", "inboxes")
    with state.lock:
        portal = get_portal(pid)
        try:
            user = state.add_user(
                portal,
                email,
                _str(data, "firstName") or "",
                _str(data, "lastName") or "",
                seat=_bool(data, "seat", True),
                active=_bool(data, "active", True),
                super_admin=_bool(data, "superAdmin", False),
                inboxes=inboxes,
            )
        except ValueError as exc:
            raise validation_error(str(exc), "email") from None
        return jsonify(user.to_admin()), 201


@bp.route("/portals/<int:pid>/users/<int:uid>", methods=["PATCH"])
def patch_user(pid: int, uid: int):
    """Change ``active``, ``seat``, ``superAdmin``, ``firstName``, ``lastName``."""
    data = read_json_object()
    state = sandbox().state
    fields = {"active": "active", "seat": "seat", "superAdmin": "super_admin"}
    changes = {attr: _bool(data, key) for key, attr in fields.items() if key in data}
    if any(v is None for v in changes.values()):
        raise validation_error("active, seat and superAdmin must be booleans")
    for key, attr in (("firstName", "first_name"), ("lastName", "last_name")):
        if key in data:
            changes[attr] = _str(data, key) or ""
    if not changes:
        raise validation_error("nothing to change")
    with state.lock:
        user = get_user(get_portal(pid), uid)
        for attr, value in changes.items():
            setattr(user, attr, value)
        return jsonify(user.to_admin())


@bp.route("/portals/<int:pid>/users/<int:uid>/inboxes", methods=["POST"])
def add_inbox(pid: int, uid: int):
    """Add (or reconnect) an inbox ``{email, connected?: true}`` for a user (201)."""
    data = read_json_object()
    email = _str(data, "email", required=True)
    if "@" not in email:
        raise validation_error("email must be an email address", "email")
    connected = _bool(data, "connected", True)
    with sandbox().state.lock:
        user = get_user(get_portal(pid), uid)
        existing = next((e for e in user.inboxes if e.lower() == email.lower()), email)
        user.inboxes[existing] = connected
        return jsonify(user.to_admin()), 201


@bp.route("/portals/<int:pid>/users/<int:uid>/inboxes/<email>", methods=["PATCH"])
def patch_inbox(pid: int, uid: int, email: str):
    """Connect or disconnect an inbox: ``{connected: bool}``."""
    data = read_json_object()
    connected = _bool(data, "connected")
    if connected is None:
        raise validation_error("connected (boolean) is required", "connected")
    with sandbox().state.lock:
        user = get_user(get_portal(pid), uid)
        key = next((e for e in user.inboxes if e.lower() == email.lower()), None)
        if key is None:
            raise not_found(f"Inbox {email}")
        user.inboxes[key] = connected
        return jsonify(user.to_admin())


@bp.route("/portals/<int:pid>/users/<int:uid>/inboxes/<email>", methods=["DELETE"])
def delete_inbox(pid: int, uid: int, email: str):
    """Remove an inbox from a user (204)."""
    with sandbox().state.lock:
        user = get_user(get_portal(pid), uid)
        key = next((e for e in user.inboxes if e.lower() == email.lower()), None)
        if key is None:
            raise not_found(f"Inbox {email}")
        del user.inboxes[key]
    return "", 204


# -- contacts -----------------------------------------------------------------


@bp.route("/portals/<int:pid>/contacts", methods=["GET"])
def list_contacts(pid: int):
    """Contacts; ``?limit=&offset=`` (default all)."""
    offset = _int(dict(request.args), "offset", minimum=0) or 0
    limit = _int(dict(request.args), "limit", minimum=1)
    with sandbox().state.lock:
        portal = get_portal(pid)
        rows = sorted(portal.contacts.values(), key=lambda c: int(c.id))
        total = len(rows)
        rows = rows[offset : None if limit is None else offset + limit]
        return jsonify({"total": total, "results": [c.to_admin() for c in rows]})


@bp.route("/portals/<int:pid>/contacts", methods=["POST"])
def add_contacts(pid: int):
    """Add ``{count}`` generated contacts; answers their ids (201)."""
    data = read_json_object()
    count = _int(data, "count", required=True, minimum=1)
    if count > 100000:
        raise validation_error("count must be at most 100000", "count")
    state = sandbox().state
    with state.lock:
        created = state.add_contacts(get_portal(pid), count)
        return jsonify({"results": [c.to_admin() for c in created]}), 201


@bp.route("/portals/<int:pid>/contacts/<cid>", methods=["PATCH"])
def patch_contact(pid: int, cid: str):
    """Set ``unsubscribed`` / ``bounced`` on a contact."""
    data = read_json_object()
    changes = {k: _bool(data, k) for k in ("unsubscribed", "bounced") if k in data}
    if not changes or any(v is None for v in changes.values()):
        raise validation_error("unsubscribed and/or bounced (booleans) required")
    with sandbox().state.lock:
        contact = get_portal(pid).contacts.get(cid)
        if contact is None:
            raise not_found(f"Contact {cid}")
        for key, value in changes.items():
            setattr(contact, key, value)
        return jsonify(contact.to_admin())


# -- settings, faults, stats --------------------------------------------------


@bp.route("/portals/<int:pid>/settings", methods=["GET"])
def get_settings(pid: int):
    state = sandbox().state
    with state.lock:
        return jsonify(get_portal(pid).settings_dict(state.token_ttl, state.rate_limit))


@bp.route("/portals/<int:pid>/settings", methods=["PATCH"])
def patch_settings(pid: int):
    """``{token_ttl, rate_limit: "110/10s"|"off"|null|"default", daily_cap, include_state,
    seat_names: "listed"|"empty"|"omitted", enrollment_length: seconds|null}``."""
    data = read_json_object()
    state = sandbox().state
    updates: dict = {}
    if "token_ttl" in data:
        ttl = data["token_ttl"]
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 1:
            raise validation_error("token_ttl must be a number of seconds >= 1", "token_ttl")
        updates["token_ttl"] = float(ttl)
    if "rate_limit" in data:
        raw = data["rate_limit"]
        if raw == "default":
            updates["rate_limit"] = "default"
        else:
            try:
                updates["rate_limit"] = parse_rate_limit(raw)
            except (ValueError, TypeError):
                raise validation_error(
                    "rate_limit must look like '110/10s', or be null/'off'", "rate_limit"
                ) from None
    if "daily_cap" in data:
        updates["daily_cap"] = _int(data, "daily_cap", required=True, minimum=0)
    if "include_state" in data:
        value = _bool(data, "include_state")
        if value is None:
            raise validation_error("include_state must be a boolean", "include_state")
        updates["include_state"] = value
    if "seat_names" in data:
        if data["seat_names"] not in SEAT_NAMES_MODES:
            raise validation_error(
                f"seat_names must be one of {', '.join(SEAT_NAMES_MODES)}", "seat_names"
            )
        updates["seat_names"] = data["seat_names"]
    if "enrollment_length" in data:
        length = data["enrollment_length"]
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, (int, float)) or length <= 0
        ):
            raise validation_error(
                "enrollment_length must be seconds > 0, or null (until ended)", "enrollment_length"
            )
        updates["enrollment_length"] = None if length is None else float(length)
    unknown = set(data) - {
        "token_ttl",
        "rate_limit",
        "daily_cap",
        "include_state",
        "seat_names",
        "enrollment_length",
    }
    if unknown:
        raise validation_error(f"unknown settings: {', '.join(sorted(unknown))}")
    with state.lock:
        portal = get_portal(pid)
        for key, value in updates.items():
            setattr(portal, key, value)
        if "rate_limit" in updates:
            sandbox().limiter.reset(pid)
        return jsonify(portal.settings_dict(state.token_ttl, state.rate_limit))


def _rate(data: dict, key: str) -> float:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise validation_error(f"{key} must be a number between 0 and 1", key)
    return float(value)


@bp.route("/portals/<int:pid>/faults", methods=["PUT", "PATCH"])
def put_faults(pid: int):
    """Set faults ``{latency_ms, error_rate, rate_limit_storm_seconds, drop_rate, revoke}``.

    PUT replaces (missing keys turn off), PATCH changes only the given keys.
    """
    data = read_json_object()
    known = {"latency_ms", "error_rate", "rate_limit_storm_seconds", "drop_rate", "revoke"}
    unknown = set(data) - known
    if unknown:
        raise validation_error(f"unknown faults: {', '.join(sorted(unknown))}")
    replace = request.method == "PUT"
    state = sandbox().state
    latency = _int(data, "latency_ms", minimum=0)
    if latency is not None and latency > 60000:
        raise validation_error("latency_ms must be at most 60000", "latency_ms")
    storm = data.get("rate_limit_storm_seconds")
    if storm is not None and (
        isinstance(storm, bool) or not isinstance(storm, (int, float)) or storm < 0
    ):
        raise validation_error(
            "rate_limit_storm_seconds must be a number >= 0", "rate_limit_storm_seconds"
        )
    revoke = _bool(data, "revoke", False)
    with state.lock:
        portal = get_portal(pid)
        f = portal.faults
        if replace or "latency_ms" in data:
            f.latency_ms = latency or 0
        if replace or "error_rate" in data:
            f.error_rate = _rate(data, "error_rate")
        if replace or "drop_rate" in data:
            f.drop_rate = _rate(data, "drop_rate")
        if replace or storm is not None:
            f.storm_until = time.time() + float(storm) if storm else 0.0
        revoked = state.revoke_portal(pid) if revoke else 0
        out = f.to_dict()
        out["revoked_tokens"] = revoked
        return jsonify(out)


@bp.route("/portals/<int:pid>/stats", methods=["GET"])
def stats(pid: int):
    """Requests counted per portal, 429s, and counts per route and per status."""
    with sandbox().state.lock:
        portal = get_portal(pid)
        return jsonify(
            {
                "requests": portal.stats_requests,
                "rate_limited": portal.stats_rate_limited,
                "by_path": dict(portal.stats_by_path),
                "by_status": dict(portal.stats_by_status),
            }
        )


@bp.route("/portals/<int:pid>/stats", methods=["DELETE"])
def reset_stats(pid: int):
    """Zero the counters (204)."""
    with sandbox().state.lock:
        portal = get_portal(pid)
        portal.stats_requests = 0
        portal.stats_rate_limited = 0
        portal.stats_by_path.clear()
        portal.stats_by_status.clear()
    return "", 204


# -- enrollments, callbacks, workflows ------------------------------------------


@bp.route("/portals/<int:pid>/enrollments", methods=["GET"])
def list_enrollments(pid: int):
    """Every enrollment of the portal, oldest first."""
    with sandbox().state.lock:
        portal = get_portal(pid)
        return jsonify({"results": [e.to_admin() for e in portal.current_enrollments()]})


@bp.route("/portals/<int:pid>/enrollments/<cid>", methods=["DELETE"])
def unenroll(pid: int, cid: str):
    """End a contact's sequence now (it finished, or a person took the contact out) (204)."""
    with sandbox().state.lock:
        portal = get_portal(pid)
        if portal.current_enrollment(cid) is None:
            raise not_found(f"Enrollment of contact {cid}")
        del portal.enrollments[cid]
    return "", 204


@bp.route("/portals/<int:pid>/enrollments/<cid>", methods=["PATCH"])
def schedule_end(pid: int, cid: str):
    """``{"endsIn": seconds}``: the contact's sequence ends that many seconds from now."""
    data = read_json_object()
    ends_in = data.get("endsIn")
    if isinstance(ends_in, bool) or not isinstance(ends_in, (int, float)) or ends_in < 0:
        raise validation_error("endsIn must be a number of seconds >= 0", "endsIn")
    with sandbox().state.lock:
        enrollment = get_portal(pid).current_enrollment(cid)
        if enrollment is None:
            raise not_found(f"Enrollment of contact {cid}")
        enrollment.ends_at = time.time() + ends_in
        return jsonify(enrollment.to_admin())


# -- companies, deals, tickets and their associations with contacts ----------------


@bp.route("/portals/<int:pid>/records", methods=["POST"])
def add_record(pid: int):
    """``{objectType: deals|companies|tickets, name?, contacts: [id | {id, labels: [...]}]}``:
    a record associated with those contacts (labels created when new) (201)."""
    data = read_json_object()
    kind = _str(data, "objectType", required=True)
    contacts = parse_contacts(data.get("contacts", []))
    state = sandbox().state
    with state.lock:
        portal = get_portal(pid)
        unknown = [cid for cid, _ in contacts if cid not in portal.contacts]
        if unknown:
            raise validation_error(f"unknown contacts: {', '.join(unknown[:10])}", "contacts")
        try:
            record = state.add_record(portal, kind, _str(data, "name"), contacts)
        except ValueError as exc:
            raise validation_error(str(exc), "objectType") from None
        return jsonify(record.to_admin(portal.crm.label_names(record.object_type))), 201


@bp.route("/portals/<int:pid>/records", methods=["GET"])
def list_records(pid: int):
    """Every company, deal and ticket of the portal with its associated contacts."""
    with sandbox().state.lock:
        crm = get_portal(pid).crm
        rows = [
            r.to_admin(crm.label_names(kind))
            for kind, records in sorted(crm.records.items())
            for r in records.values()
        ]
    return jsonify({"results": rows})


@bp.route("/portals/<int:pid>/callbacks", methods=["GET"])
def portal_callbacks(pid: int):
    """Every execution of the portal with its attempts and completion."""
    state = sandbox().state
    with state.lock:
        get_portal(pid)
        rows = [c.to_dict() for c in state.callbacks.values() if c.portal_id == pid]
    return jsonify({"results": rows})


@bp.route("/callbacks/<callback_id>", methods=["GET"])
def one_callback(callback_id: str):
    """One execution: status, delivery attempts, synchronous outputs and completion."""
    state = sandbox().state
    with state.lock:
        cb = state.callbacks.get(callback_id)
        if cb is None:
            raise not_found(f"Callback {callback_id}")
        return jsonify(cb.to_dict())


@bp.route("/definitions", methods=["GET"])
def list_definitions():
    """Action definitions the app has created."""
    state = sandbox().state
    with state.lock:
        return jsonify({"results": [dict(d) for d in state.definitions.values()]})


@bp.route("/workflows/fire", methods=["POST"])
def fire():
    """Run an action for contacts, or for deals, companies or tickets.

    Body: ``{portalId, definitionId, workflowId?, contactIds: [...], inputFields: {...},
    wait?: bool, waitForCompletion?: bool, timeout?: seconds}``; for a record workflow
    ``objectType: DEAL|COMPANY|TICKET`` and ``objectIds: [...]`` instead of ``contactIds``. Answers
    ``{"callbackIds": [...], "results"?: [callback...], "settled"?: bool}``.
    """
    data = read_json_object()
    pid = _int(data, "portalId", required=True)
    definition_id = data.get("definitionId")
    if definition_id is None or not str(definition_id).strip():
        raise validation_error("definitionId is required", "definitionId")
    workflow_id = _int(data, "workflowId") or 1
    kind = _str(data, "objectType") or "CONTACT"
    ids_key = "contactIds" if kind.upper() == "CONTACT" else "objectIds"
    contacts = data.get(ids_key)
    if not isinstance(contacts, list) or not contacts:
        raise validation_error(f"{ids_key} must be a non-empty list", ids_key)
    if len(contacts) > 100000:
        raise validation_error("at most 100000 contactIds", "contactIds")
    inputs = data.get("inputFields", {})
    if not isinstance(inputs, dict):
        raise validation_error("inputFields must be an object", "inputFields")
    wait = _bool(data, "wait", False)
    for_completion = _bool(data, "waitForCompletion", False)
    timeout = data.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise validation_error("timeout must be seconds >= 0", "timeout")
    runner = sandbox().runner
    try:
        ids = runner.fire(pid, str(definition_id), contacts, workflow_id, inputs, kind)
    except RunnerError as exc:
        raise validation_error(str(exc)) from None
    body: dict = {"callbackIds": ids}
    if wait or for_completion:
        body["settled"] = runner.wait(ids, float(min(timeout, 600)), for_completion)
        with sandbox().state.lock:
            body["results"] = [sandbox().state.callbacks[i].to_dict() for i in ids]
    return jsonify(body)


@bp.route("/workflows/options", methods=["POST"])
def options():
    """Fetch dynamic options like HubSpot would: ``{portalId, definitionId, fieldName,
    inputFields?, q?, after?, objectType?: CONTACT|DEAL|COMPANY|TICKET}`` → ``{statusCode, json,
    body}``."""
    data = read_json_object()
    pid = _int(data, "portalId", required=True)
    definition_id = data.get("definitionId")
    if definition_id is None:
        raise validation_error("definitionId is required", "definitionId")
    field_name = _str(data, "fieldName", required=True)
    inputs = data.get("inputFields", {})
    if not isinstance(inputs, dict):
        raise validation_error("inputFields must be an object", "inputFields")
    try:
        result = sandbox().runner.fetch_options(
            pid,
            str(definition_id),
            field_name,
            inputs,
            q=_str(data, "q"),
            after=_str(data, "after"),
            object_type=_str(data, "objectType") or "CONTACT",
        )
    except RunnerError as exc:
        raise validation_error(str(exc)) from None
    return jsonify(result)


@bp.route("/runner", methods=["GET", "PATCH"])
def runner_settings():
    """Read or change runner settings (concurrency, timeouts, backoff, max attempts)."""
    runner = sandbox().runner
    if request.method == "PATCH":
        data = read_json_object()
        for key, value in data.items():
            if not hasattr(runner.settings, key):
                raise validation_error(f"unknown runner setting {key}", key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise validation_error(f"{key} must be a number >= 0", key)
        if "concurrency" in data and not 1 <= data["concurrency"] <= 256:
            raise validation_error("concurrency must be 1..256", "concurrency")
        runner.configure(**data)
    return jsonify(runner.settings.to_dict())


@bp.route("/reset", methods=["POST"])
def reset():
    """Clear everything and seed again like at start (the app credentials stay)."""
    ctx = sandbox()
    ctx.state.reseed()
    ctx.limiter.reset()
    with ctx.state.lock:
        return jsonify({"portals": [p.summary() for p in ctx.state.portals.values()]})


# -- HTML admin page ----------------------------------------------------------


@bp.route("/", methods=["GET"])
def index():
    """The admin page: portals, sequences, users, enrollments, callbacks, faults."""
    state = sandbox().state
    pid = request.args.get("portal", type=int)
    with state.lock:
        portals = list(state.portals.values())
        portal = state.portals.get(pid) if pid else (portals[0] if portals else None)
        ctx = {"portals": [p.summary() for p in portals], "app": state.app.to_dict()}
        if portal is not None:
            ctx["portal"] = _portal_detail(portal)
            seqs = sorted(portal.sequences.values(), key=lambda s: int(s.id))
            ctx["sequences"] = [s.to_admin() for s in seqs[:500]]
            ctx["sequence_total"] = len(seqs)
            ctx["enrollments"] = [e.to_admin() for e in portal.current_enrollments()][-200:]
            ctx["callbacks"] = [
                c.to_dict() for c in state.callbacks.values() if c.portal_id == portal.id
            ][-200:]
    return render_template("admin.html", states=SEQUENCE_STATES, **ctx)


@bp.route("/ui/<int:pid>/<action>", methods=["POST"])
def ui_action(pid: int, action: str):
    """Form posts of the admin page; redirect back to it."""
    state = sandbox().state
    form = request.form
    try:
        with state.lock:
            portal = get_portal(pid)
            if action == "create_sequence":
                state.add_sequence(
                    portal,
                    form["name"].strip() or "Untitled",
                    int(form["userId"]),
                    shared=form.get("shared") == "on",
                    folder_id=form.get("folderId") or None,
                    state=form.get("state") or "active",
                )
            elif action == "rename":
                state.update_sequence(
                    portal, get_sequence(portal, form["id"]), name=form["name"].strip()
                )
            elif action == "toggle_share":
                seq = get_sequence(portal, form["id"])
                state.update_sequence(portal, seq, shared=not seq.shared)
            elif action == "set_state":
                if form["state"] not in SEQUENCE_STATES:
                    raise ValueError("bad state")
                state.update_sequence(portal, get_sequence(portal, form["id"]), state=form["state"])
            elif action == "delete_sequence":
                state.delete_sequence(portal, get_sequence(portal, form["id"]))
            elif action == "end_enrollment":
                if portal.current_enrollment(form["id"]) is not None:
                    del portal.enrollments[form["id"]]
            elif action == "toggle_user":
                user = get_user(portal, int(form["id"]))
                user.active = not user.active
            elif action == "toggle_seat":
                user = get_user(portal, int(form["id"]))
                user.seat = not user.seat
            elif action == "toggle_include_state":
                portal.include_state = not portal.include_state
            elif action == "faults":
                f = portal.faults
                f.latency_ms = max(0, int(form.get("latency_ms") or 0))
                f.error_rate = min(1.0, max(0.0, float(form.get("error_rate") or 0)))
                f.drop_rate = min(1.0, max(0.0, float(form.get("drop_rate") or 0)))
                storm = float(form.get("rate_limit_storm_seconds") or 0)
                f.storm_until = time.time() + storm if storm > 0 else 0.0
                if form.get("revoke") == "on":
                    state.revoke_portal(pid)
            else:
                raise not_found(f"Action {action}")
    except (KeyError, ValueError) as exc:
        raise validation_error(f"bad form: {exc}") from None
    return redirect(url_for("admin.index", portal=pid), code=303)


# -- the workflow editor's stand-in: configure the custom action, then run it -----------------


def _workflow_fields(pid: int, definition: dict, chosen: dict) -> list[dict]:
    """Each input field with the options HubSpot would show: static ones, or the app's optionsUrl.

    Like HubSpot's editor, a field's options request carries the values chosen so far, and a
    field hidden by ``inputFieldDependencies`` (its controlling field not set to its value) is
    left out.
    """
    runner = sandbox().runner
    hidden = set()
    for dep in definition.get("inputFieldDependencies", []):
        controlling = dep.get("controllingFieldName")
        wanted = dep.get("controllingFieldValue")
        conditional = dep.get("dependencyType") in ("CONDITIONAL", "CONDITIONAL_SINGLE_FIELD")
        if conditional and chosen.get(controlling) != wanted:
            hidden.update(dep.get("dependentFieldNames", []))
    fields = []
    for field in definition.get("inputFields", []):
        td = field.get("typeDefinition", {})
        name = td.get("name")
        if not name or name in hidden:
            continue
        entry = {"name": name, "required": field.get("isRequired", False), "options": []}
        if td.get("optionsUrl"):
            known = {k: v for k, v in chosen.items() if v}
            answer = runner.fetch_options(pid, definition["id"], name, known)
            if answer.get("statusCode") == 200 and isinstance(answer.get("json"), dict):
                entry["options"] = answer["json"].get("options", [])
            else:
                entry["error"] = f"options request answered {answer.get('statusCode') or answer}"
        else:
            entry["options"] = td.get("options", [])
        fields.append(entry)
    return fields


@bp.route("/ui/<int:pid>/workflow", methods=["GET"])
def workflow_page(pid: int):
    """A page to set up the app's workflow action and run it for a range of contacts."""
    state = sandbox().state
    with state.lock:
        portal = get_portal(pid)
        definitions = [d for d in state.definitions.values() if d.get("published")]
        first_contact = min((int(c) for c in portal.contacts), default=1)
    definition_id = request.args.get("definition") or (definitions[0]["id"] if definitions else "")
    definition = next((d for d in definitions if d["id"] == definition_id), None)
    chosen = {k[len("in_") :]: v for k, v in request.args.items() if k.startswith("in_")}
    fields = _workflow_fields(pid, definition, chosen) if definition else []
    return render_template(
        "workflow.html",
        pid=pid,
        definitions=definitions,
        definition=definition,
        fields=fields,
        chosen=chosen,
        first_contact=request.args.get("first", first_contact),
    )


@bp.route("/ui/<int:pid>/workflow", methods=["POST"])
def workflow_run(pid: int):
    """Fire one execution of the action per contact of the range; back to the admin page."""
    form = request.form
    try:
        first = int(form["first"])
        count = int(form["count"])
        workflow_id = int(form.get("workflow") or 1)
    except (KeyError, ValueError):
        raise validation_error("first, count and workflow must be whole numbers") from None
    if not 1 <= count <= 10_000:
        raise validation_error("count must be 1..10000", "count")
    inputs = {k[len("in_") :]: v for k, v in form.items() if k.startswith("in_") and v}
    contact_ids = [str(first + i) for i in range(count)]
    try:
        sandbox().runner.fire(pid, form.get("definition", ""), contact_ids, workflow_id, inputs)
    except RunnerError as exc:
        raise validation_error(str(exc)) from None
    return redirect(url_for("admin.index", portal=pid) + "#executions", code=303)
