"""A local stand-in for the HubSpot APIs AutoSeq uses (see docs/hubspot-api.md).

Typical use in tests::

    from hubspot_sandbox import SandboxServer, SandboxState

    state = SandboxState()
    state.seed_demo()
    with SandboxServer(state) as server:
        ...  # talk HTTP to server.url
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .errors import ApiError
from .ratelimit import RollingLimiter
from .runner import RunnerSettings, WorkflowRunner
from .state import SandboxState

__all__ = ["Sandbox", "SandboxServer", "SandboxState", "WorkflowRunner", "create_app"]


@dataclass
class Sandbox:
    """What the Flask app needs at request time."""

    state: SandboxState
    limiter: RollingLimiter
    runner: WorkflowRunner


def create_app(
    state: SandboxState | None = None,
    runner: WorkflowRunner | None = None,
    runner_settings: RunnerSettings | None = None,
) -> Flask:
    """Build the sandbox Flask app around ``state`` (a fresh empty state when None)."""
    from . import admin, api, oauth

    state = state if state is not None else SandboxState()
    runner = runner or WorkflowRunner(state, runner_settings)
    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions["hubspot_sandbox"] = Sandbox(state, RollingLimiter(), runner)
    app.register_blueprint(api.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(admin.bp)

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return err.response()

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        category = {404: "OBJECT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            err.code or 500, "VALIDATION_ERROR"
        )
        message = {
            404: f"No route for {request.method} {request.path}",
            405: f"Method {request.method} not allowed for {request.path}",
        }.get(err.code or 500, err.description or "error")
        if err.code == 400 and request.is_json:
            message = "Invalid input JSON: " + (err.description or "malformed body")
        resp = ApiError(err.code or 500, message, category).response()
        if err.code == 405 and err.get_headers():
            for key, value in err.get_headers():
                if key.lower() == "allow":
                    resp.headers["Allow"] = value
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        app.logger.exception("unhandled error in sandbox")
        return ApiError(500, f"Internal error: {type(err).__name__}", "INTERNAL_ERROR").response()

    @app.route("/")
    def _root():
        return jsonify({"sandbox": "hubspot", "admin": "/_sandbox/", "app_id": state.app.app_id})

    return app


from .server import SandboxServer  # noqa: E402
