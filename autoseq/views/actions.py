"""HubSpot -> AutoSeq: the workflow action's execution and options endpoints.

Both are signed by HubSpot (not by a browser), so they are CSRF-exempt and verify the signature
instead. The execution endpoint commits the enrollment row (the row is the queue), nudges the
workspace's drain and answers ``BLOCK`` at once; the drain completes the callback later. Status
codes matter to HubSpot: a 4xx is never retried (so only for requests that can never succeed), a
5xx is retried for days (so 503 when our database is down and nothing was recorded; with Redis
down the row is recorded and the sweep asks for its drain later).
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError

from ..extensions import csrf, db
from ..hubspot.signatures import SignatureError, verify_request
from ..services import actions as action_service
from ..services import cursors
from ..services import enrollment as enrollment_service
from ..services import sync as sync_service

log = logging.getLogger(__name__)

bp = Blueprint("actions", __name__, url_prefix="/hubspot/actions")
csrf.exempt(bp)

BLOCK_ANSWER = {"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}}


def called_uri() -> str:
    """The URL HubSpot called, rebuilt from PUBLIC_BASE_URL (never from the Host header)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw or not raw.startswith("/"):
        raw = request.script_root + request.path
        query = request.query_string.decode("latin-1")
        if query:
            raw += "?" + query
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + raw


def error(status: int, title: str, message: str):
    return jsonify(error=title, message=message), status


def verified_json():
    """The signed request's JSON object, or an error response (401 or 400)."""
    body = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(body) >= limit:
        # A chunked body is cut off at the limit (Werkzeug reads no further): refuse it whole.
        return None, error(413, "Too large", f"The body may be at most {limit} bytes.")
    try:
        verified = verify_request(
            current_app.config.get("HUBSPOT_CLIENT_SECRET"),
            request.method,
            called_uri(),
            body,
            request.headers,
            v3_only=current_app.config.get("HUBSPOT_SIGNATURE_V3_ONLY", False),
        )
    except SignatureError as exc:
        log.warning("rejected unsigned HubSpot request to %s: %s", request.path, exc.reason)
        return None, error(401, "Invalid signature", exc.reason)
    if verified.version == "v2":
        # README "Signatures": when these stop, HUBSPOT_SIGNATURE_V3_ONLY can be turned on.
        log.info("HubSpot request to %s verified with a v2 signature", request.path)
    try:
        # parse_constant: NaN and Infinity are not JSON (Python accepts them by default).
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "Malformed JSON", "The body is not valid JSON.")
    except RecursionError:
        return None, error(400, "Malformed JSON", "The body is nested too deeply.")
    if not isinstance(data, dict):
        return None, error(400, "Malformed JSON", "The body must be a JSON object.")
    return data, None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def unavailable(exc: Exception):
    db.session.rollback()
    log.error("execution not recorded, asking HubSpot to retry: %s", exc)
    response = error(503, "Temporarily unavailable", "Try again shortly.")
    response[0].headers["Retry-After"] = "30"
    return response


def refused_data(exc: Exception):
    """The database refused a value (out of range, malformed): retrying cannot help, so 400."""
    db.session.rollback()
    log.warning("HubSpot request refused, a value the database cannot store: %s", exc.orig)
    return error(400, "Invalid value", "A value in the request is out of range or malformed.")


@bp.post("/enroll")
def execution_receive():
    """Record one execution of *Enroll in sequence* (once per callbackId) and answer BLOCK.

    A delivery of an execution already finished answers its stored final outputs instead.
    """
    data, failure = verified_json()
    if failure:
        return failure
    try:
        execution = enrollment_service.parse_execution(data)
    except enrollment_service.InvalidExecution as exc:
        log.warning("invalid execution payload: %s", exc)
        return error(400, "Invalid execution", str(exc))
    try:
        row, created = enrollment_service.record_execution(execution)
        final = None if created else enrollment_service.final_answer(row)
    except enrollment_service.UnknownPortal as exc:
        return error(400, "Unknown portal", str(exc))
    except DataError as exc:
        return refused_data(exc)
    except (OperationalError, SQLAlchemyError) as exc:
        return unavailable(exc)
    if final is not None:
        return jsonify(outputFields=final)
    try:
        enrollment_service.request_drain(row.workspace_id)
    except RedisError as exc:
        # The committed row is the queue: the sweep asks for its drain once Redis is back.
        log.warning("execution %s recorded; no drain asked for (%s)", row.callback_id, exc)
    # "Already in a sequence: wait" keeps the execution blocked for up to its wait (plus a day).
    expiration = enrollment_service.block_expiration(execution.input_fields)
    return jsonify(
        outputFields={**BLOCK_ANSWER["outputFields"], "hs_expiration_duration": expiration}
    )


@bp.post("/options")
def options_list():
    """Dropdown options for one input field, from the database only."""
    data, failure = verified_json()
    if failure:
        return failure
    origin = data.get("origin")
    portal_id = origin.get("portalId") if isinstance(origin, dict) else None
    field = data.get("inputFieldName")
    if not isinstance(field, str) or field not in action_service.FIELD_OPTIONS:
        return error(400, "Invalid options request", "inputFieldName is missing or unknown.")
    fetch = data.get("fetchOptions") or {}
    input_fields = data.get("inputFields") or {}
    if not isinstance(fetch, dict) or not isinstance(input_fields, dict):
        return error(400, "Invalid options request", "fetchOptions and inputFields are objects.")
    q, after = fetch.get("q"), fetch.get("after")
    if (q is not None and not isinstance(q, str)) or (
        after is not None and not isinstance(after, str)
    ):
        return error(400, "Invalid options request", "q and after must be strings.")
    try:
        if field == "sequence":  # the editor's hot path: one statement
            workspace_id, answer = action_service.sequence_options_of_portal(
                portal_id, q and q.strip(), after
            )
        else:
            workspace_id = enrollment_service.workspace_for_portal(portal_id)
            answer = action_service.field_options(
                workspace_id,
                field,
                q and q.strip(),
                after,
                input_fields,
                object_type_id=data.get("objectTypeId"),
            )
    except enrollment_service.UnknownPortal as exc:
        return error(400, "Unknown portal", str(exc))
    except cursors.BadCursor as exc:
        return error(400, "Invalid options request", f"fetchOptions.after: {exc.reason}.")
    except DataError as exc:
        return refused_data(exc)
    except SQLAlchemyError as exc:
        return unavailable(exc)
    if field == "sequence":
        refresh_if_stale(workspace_id)
    return jsonify(answer)


def refresh_if_stale(workspace_id: int) -> None:
    """A sequence created in HubSpot since the last sync shows up without anyone clicking Sync
    Data: the editor asking is the sign someone wants it. Never fails the options answer."""
    try:
        sync_service.request_if_stale(workspace_id)
    except (RedisError, SQLAlchemyError) as exc:
        db.session.rollback()
        log.warning("could not ask for a sync of workspace %s: %s", workspace_id, exc)


@bp.app_context_processor
def action_status_context():
    """Lets ``actions/_status.html`` find the publication by itself on any page that includes it."""

    def action_publication():
        return action_service.published_action(current_app.config.get("HUBSPOT_APP_ID"))

    return {"action_publication": action_publication}
