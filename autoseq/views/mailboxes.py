"""The Mailboxes & Rotations area: who sends, and how enrollments are spread."""

from __future__ import annotations

from flask import render_template

from .helpers import workspace_blueprint

bp = workspace_blueprint("mailboxes", __name__, "/mailboxes")


@bp.route("/")
def mailbox_list():
    return render_template("mailboxes/list.html")
