"""The Sequences area: every synced sequence of the workspace."""

from __future__ import annotations

from flask import render_template

from .helpers import workspace_blueprint

bp = workspace_blueprint("sequences", __name__, "/sequences")


@bp.route("/")
def sequence_list():
    return render_template("sequences/list.html")
