"""The Analytics area: what every enrollment did."""

from __future__ import annotations

from flask import render_template

from .helpers import workspace_blueprint

bp = workspace_blueprint("analytics", __name__, "/analytics")


@bp.route("/")
def analytics_show():
    return render_template("analytics/show.html")
