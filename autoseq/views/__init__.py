"""Blueprints, one per area, and the app-wide handlers."""

from __future__ import annotations

from flask import Flask, g, jsonify, make_response, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError

from ..extensions import db, htmx, login_manager
from ..models import HubSpotConnection, Membership, User
from .helpers import add_workspace_url_defaults


def register_views(app: Flask) -> None:
    from . import analytics, auth, health, hubspot, mailboxes, sequences, workspaces  # noqa: I001 (areas, in sidebar order)
    from . import actions  # HubSpot -> AutoSeq: signature-verified, CSRF-exempt

    for module in (auth, health, workspaces, sequences, mailboxes, analytics, hubspot, actions):
        app.register_blueprint(module.bp)
    app.register_blueprint(workspaces.ws)

    add_workspace_url_defaults(app)
    _register_login(app)
    _register_context(app)
    _register_errors(app)


def _register_login(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(session_id: str):
        """The user of a session or remember cookie, only while its session token is current."""
        user_id, _, token = session_id.partition(":")
        if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 9 or not token:
            return None
        user = db.session.get(User, int(user_id))
        return user if user is not None and user.session_matches(token) else None


HUBSPOT_PAGES = {
    "contact": "/contacts/{portal}/record/0-1/{id}",
    "workflow": "/workflows/{portal}/platform/flow/{id}/edit",
    "sequence": "/sequences/{portal}/sequence/{id}",
    # the record a deal, company or ticket workflow's enrollment came from
    "DEAL": "/contacts/{portal}/record/0-3/{id}",
    "COMPANY": "/contacts/{portal}/record/0-2/{id}",
    "TICKET": "/contacts/{portal}/record/0-5/{id}",
}


def _register_context(app: Flask) -> None:
    @app.template_global()
    def first_run_steps():
        """The current workspace's first-run checklist (None once every required step is done)."""
        from ..services.onboarding import first_run_steps as steps_of

        steps = steps_of(g.workspace.id, app.config.get("HUBSPOT_APP_ID"))
        return None if all(s.done or s.optional for s in steps) else steps

    @app.template_global()
    def hubspot_url(kind: str, portal_id, object_id) -> str | None:
        """The HubSpot page of a contact, workflow or sequence (None without both ids)."""
        if not portal_id or not object_id:
            return None
        base = app.config["HUBSPOT_APP_BASE"]
        return base + HUBSPOT_PAGES[kind].format(portal=portal_id, id=object_id)

    @app.context_processor
    def layout_context():
        """What base.html needs: the user's workspaces and the current one's HubSpot connection."""
        if not current_user.is_authenticated:
            return {}
        memberships = db.session.scalars(
            db.select(Membership).filter_by(user_id=current_user.id).order_by(Membership.id)
        ).all()
        connection = None
        if g.get("workspace"):
            connection = db.session.scalar(
                db.select(HubSpotConnection).filter_by(workspace_id=g.workspace.id)
            )
        queued = None
        if g.get("workspace"):
            from .workspaces import queued_enrollments

            queued = queued_enrollments(g.workspace.id)
        return {"memberships": memberships, "connection": connection, "queued_now": queued}


def _register_errors(app: Flask) -> None:
    def wants_json() -> bool:
        return request.path.startswith(("/hubspot/", "/healthz")) or (
            request.accept_mimetypes.best == "application/json"
        )

    def error_page(status: int, title: str, message: str):
        db.session.rollback()
        if wants_json():
            return jsonify(error=title, message=message), status
        template = "errors/_error.html" if htmx else "errors/error.html"
        return render_template(template, status=status, title=title, message=message), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_page(
            400,
            "Your form expired",
            "The page was open too long or came from elsewhere. Go back, reload and try again.",
        )

    @app.errorhandler(400)
    def bad_request(error):
        return error_page(400, "Bad request", getattr(error, "description", "") or "")

    @app.errorhandler(404)
    def not_found(error):
        return error_page(404, "Not found", "There is nothing here, or it is not yours to see.")

    @app.errorhandler(405)
    def method_not_allowed(error):
        return error_page(405, "Method not allowed", "That address does not take this request.")

    @app.errorhandler(413)
    def too_large(error):
        return error_page(
            413,
            "Too large",
            getattr(error, "description", "") or "The body is larger than AutoSeq accepts.",
        )

    @app.errorhandler(DataError)
    def data_error(error):
        # A value the database refuses (out of range, malformed): the input's fault, not ours.
        return error_page(400, "Bad request", "A value in the request is out of range.")

    @app.errorhandler(RedisError)
    def redis_unavailable(error):
        # Redis is a queue and a cache: while it is away, say so and ask for a retry (no 500).
        app.logger.error("Redis unavailable for %s: %s", request.path, error)
        response = make_response(
            error_page(
                503, "Temporarily unavailable", "AutoSeq cannot reach its queue. Try again shortly."
            )
        )
        response.headers["Retry-After"] = "10"
        return response

    @app.errorhandler(500)
    def server_error(error):
        return error_page(500, "Something went wrong", "We have logged it. Try again in a moment.")
