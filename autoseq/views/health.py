"""``GET /healthz``: is the database reachable, is Redis reachable."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from ..extensions import csrf, db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.route("/healthz")
@csrf.exempt
def healthz():
    """200 when the database and Redis both answer, else 503; JSON either way."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not reachable"
        db.session.rollback()
        log.warning("health: database unreachable: %s", exc.__class__.__name__)
        checks["database"] = "unreachable"
    try:
        current_app.extensions["redis"].ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("health: redis unreachable: %s", exc.__class__.__name__)
        checks["redis"] = "unreachable"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", checks=checks), (
        200 if healthy else 503
    )
