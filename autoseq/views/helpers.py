"""Helpers every view uses: workspace scoping, load-or-404, role checks, safe redirects."""

from __future__ import annotations

import functools
from urllib.parse import urljoin, urlsplit

from flask import Blueprint, abort, flash, g, jsonify, redirect, request, url_for
from flask_login import current_user, login_required

from ..extensions import db, htmx
from ..models import Membership, Role


def workspace_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint whose every URL lives under ``/w/<workspace_id>`` and requires membership.

    Before each view the workspace is loaded into ``g.workspace`` and the member's role into
    ``g.role``. A workspace the user does not belong to is a 404, never a 403: its existence is
    not revealed. ``url_for`` inside the workspace fills ``workspace_id`` in by itself.
    """
    bp = Blueprint(name, import_name, url_prefix="/w/<int:workspace_id>" + url_prefix)

    @bp.url_value_preprocessor
    def pull_workspace(endpoint, values):
        g.workspace_id = values.pop("workspace_id")

    @bp.before_request
    @login_required
    def load_workspace():
        membership = db.session.scalar(
            db.select(Membership).filter_by(user_id=current_user.id, workspace_id=g.workspace_id)
        )
        if membership is None:
            abort(404)
        g.workspace = membership.workspace
        g.role = membership.role_enum
        if current_user.last_workspace_id != g.workspace.id:
            current_user.last_workspace_id = g.workspace.id
            db.session.commit()

    return bp


def add_workspace_url_defaults(app) -> None:
    """Let ``url_for`` fill ``workspace_id`` from the current workspace, on every blueprint."""

    @app.url_defaults
    def workspace_id_default(endpoint, values):
        if "workspace_id" in values or not g.get("workspace"):
            return
        if app.url_map.is_endpoint_expecting(endpoint, "workspace_id"):
            values["workspace_id"] = g.workspace.id


def scoped_or_404(model, object_id, **filters):
    """Load ``model`` by id within the current workspace, or 404 (never another workspace's row)."""
    obj = db.session.scalar(
        db.select(model).filter_by(id=object_id, workspace_id=g.workspace.id, **filters)
    )
    if obj is None:
        abort(404)
    return obj


def deny(message: str, status: int = 403):
    """Refuse: a redirect with a flash for pages, ``HX-Redirect`` for htmx, JSON for APIs."""
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        return jsonify(error=message), status
    flash(message, "error")
    target = url_for("sequences.sequence_list") if g.get("workspace") else url_for("auth.login")
    if htmx:
        response = redirect(target)
        response.headers["HX-Redirect"] = target
        response.status_code = 200
        return response
    return redirect(target)


def role_required(role: Role | str):
    """Allow the view only to members of the current workspace with at least ``role``."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not g.role.at_least(Role(role)):
                return deny(f"Only a workspace {Role(role).value} or above can do that.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def is_safe_next(target: str | None) -> bool:
    """True when ``target`` stays on this site (no open redirect through ``next``)."""
    if not target or target.startswith("//") or "\\" in target:
        return False
    host = urlsplit(request.host_url)
    test = urlsplit(urljoin(request.host_url, target))
    return test.scheme in ("http", "https") and test.netloc == host.netloc


def redirect_next(default: str):
    """Redirect to a checked ``next`` parameter, else to ``default``."""
    target = request.args.get("next") or request.form.get("next")
    return redirect(target if is_safe_next(target) else default)


def render_fragment_or_page(page: str, fragment: str, **context):
    """Render ``fragment`` for an htmx request (that is not a full-page boost), else the page."""
    from flask import render_template

    if htmx and not htmx.boosted:
        return render_template(fragment, **context)
    return render_template(page, **context)
