"""Settings -> HubSpot: connect, reconnect and disconnect the workspace's portal (OAuth).

Two blueprints: ``hubspot`` lives under ``/w/<id>/settings/hubspot`` like every workspace page;
``hubspot_oauth`` holds the one fixed redirect URI HubSpot knows (``/hubspot/oauth/callback``),
whose workspace comes from the OAuth state, never from the URL.
"""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from ..hubspot import oauth
from ..models import Role
from ..services import connections
from .helpers import role_required, workspace_blueprint

bp = workspace_blueprint("hubspot", __name__, "/settings/hubspot")
oauth_bp = Blueprint("hubspot_oauth", __name__)

SESSION_NONCE = "hubspot_oauth_nonce"


@bp.route("/")
def connection_show():
    """The connection: portal, who connected it and when, scopes, state. Admins act on it."""
    return render_template(
        "hubspot/connection.html",
        connection=connections.get_connection(g.workspace.id),
        is_admin=g.role.at_least(Role.ADMIN),
        configured=oauth.is_configured(current_app.config),
        scopes=oauth.SCOPES,
    )


@bp.route("/connect", methods=["POST"])
@role_required(Role.ADMIN)
def connection_connect():
    """Start OAuth: remember a single-use state, send the browser to HubSpot's consent page."""
    nonce = session.get(SESSION_NONCE)
    if not nonce:
        nonce = session[SESSION_NONCE] = secrets.token_urlsafe(16)
    try:
        url = connections.begin_connect(
            current_app.extensions["redis"],
            current_app.config,
            user_id=current_user.id,
            workspace_id=g.workspace.id,
            session_nonce=nonce,
            replace=request.form.get("replace") in ("1", "on", "true", "y"),
        )
    except connections.ConnectError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".connection_show"))
    return redirect(url)


@bp.route("/disconnect", methods=["POST"])
@role_required(Role.ADMIN)
def connection_disconnect():
    """Revoke the tokens at HubSpot and forget them; the row and history stay."""
    connection = connections.get_connection(g.workspace.id)
    if connection is None or connection.status == "disconnected":
        flash("HubSpot is not connected.", "info")
        return redirect(url_for(".connection_show"))
    problem = connections.disconnect(current_app.config, connection)
    if problem:
        flash(f"HubSpot is disconnected here, but {problem}.", "error")
    else:
        flash(f"HubSpot portal {connection.portal_id} is disconnected.", "success")
    return redirect(url_for(".connection_show"))


def _callback_error(title: str, message: str, status: int = 400):
    return render_template("errors/error.html", status=status, title=title, message=message), status


@oauth_bp.errorhandler(400)
def callback_bad_request(error):
    """A malformed answer (a NUL byte, say: refused before the view) ends on the same page."""
    return _callback_error(
        "HubSpot's answer was malformed",
        "Nothing was connected. Go to Settings → HubSpot and click Connect HubSpot again.",
    )


@oauth_bp.route("/hubspot/oauth/callback")
@login_required
def oauth_callback():
    """HubSpot sends the browser back here with ``code`` and ``state`` (or ``error``)."""
    state = connections.consume_state(current_app.extensions["redis"], request.args.get("state"))
    if state is None:
        return _callback_error(
            "Connection link expired",
            "This HubSpot answer is unknown, expired or was already used. "
            "Go to Settings → HubSpot and click Connect HubSpot again.",
        )
    try:
        connections.check_state(
            state, user_id=current_user.id, session_nonce=session.get(SESSION_NONCE)
        )
    except connections.ConnectError as exc:
        return _callback_error("HubSpot was not connected", exc.message, 403)

    settings = url_for("hubspot.connection_show", workspace_id=state.workspace_id)
    error = request.args.get("error")
    if error:
        if error == "access_denied":
            flash("You declined the connection in HubSpot; nothing was connected.", "info")
        else:
            detail = (request.args.get("error_description") or error)[:200]
            flash(f"HubSpot did not connect: {detail}", "error")
        return redirect(settings)
    code = request.args.get("code")
    if not code or len(code) > 2048:
        flash("HubSpot sent no authorization code back; nothing was connected.", "error")
        return redirect(settings)
    try:
        outcome = connections.complete_connect(current_app.config, state, code)
    except connections.ConnectError as exc:
        flash(exc.message, "error")
        return redirect(settings)
    portal = outcome.connection.portal_id
    message = {
        "connected": f"HubSpot portal {portal} is connected. The first sync has started.",
        "reconnected": f"HubSpot portal {portal} is reconnected. A sync has started.",
        "replaced": f"HubSpot portal {portal} replaced portal {outcome.previous_portal_id}. "
        "The old portal's sequences left the lists; enrollment history stays.",
    }[outcome.kind]
    flash(message, "success")
    return redirect(settings)


# The callback blueprint rides on ``bp``: registering the area registers both (views/__init__.py
# registers each area's ``bp`` only).
bp.record_once(lambda state: state.app.register_blueprint(oauth_bp))
