"""Settings -> HubSpot: connect, reconnect and disconnect the workspace's portal (OAuth)."""

from __future__ import annotations

from flask import render_template

from .helpers import workspace_blueprint

bp = workspace_blueprint("hubspot", __name__, "/settings/hubspot")


@bp.route("/")
def connection_show():
    return render_template("hubspot/connection.html")
