"""The Analytics area: what every enrollment did, by sequence, workflow, sender and day."""

from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, g, request, stream_with_context

from ..models import EnrollmentStatus
from ..services import analytics
from ..services import enrollment as enrollment_service
from . import charts
from .helpers import render_fragment_or_page, workspace_blueprint

bp = workspace_blueprint("analytics", __name__, "/analytics")


def _common(filters: analytics.Filters) -> dict:
    return {
        "filters": filters,
        "choices": analytics.filter_choices(g.workspace.id),
        "statuses": analytics.STATUSES,
        "hubspot_app_base": current_app.config["HUBSPOT_APP_BASE"],
    }


@bp.app_template_filter("status_counter")
def status_counter(status: str) -> str:
    """An enrollment's badge: the counter its status counts under (queued, enrolled, failed)."""
    return EnrollmentStatus(status).counter.value


@bp.route("/")
def analytics_show():
    """Headline figures, a chart per day and breakdowns for the filtered period."""
    filters = analytics.Filters.parse(request.args, g.workspace)
    report = analytics.report(filters)
    return render_fragment_or_page(
        "analytics/show.html",
        "analytics/_results.html",
        report=report,
        chart=charts.chart(report.days) if report else None,
        # executions waiting for a contact's sequence to end ("Already in a sequence: wait")
        waiting=enrollment_service.waiting_count(g.workspace.id),
        **_common(filters),
    )


@bp.route("/log")
def analytics_log():
    """Every enrollment matching the filters, newest first, keyset-paged."""
    filters = analytics.Filters.parse(request.args, g.workspace)
    page = analytics.log_page(
        filters, after=request.args.get("after"), before=request.args.get("before")
    )
    mailboxes, rotations = analytics.sender_names(g.workspace.id, page.rows)
    workflows = analytics.workflow_names(g.workspace.id, [r.workflow_id for r in page.rows])
    html = render_fragment_or_page(
        "analytics/log.html",
        "analytics/_log.html",
        log=page,
        mailboxes=mailboxes,
        rotations=rotations,
        workflows=workflows,
        **_common(filters),
    )
    # A cursor we did not give out: 400 with the reason, above the newest rows.
    return (html, 400) if page.cursor_error else html


@bp.route("/export.csv")
def analytics_export():
    """The filtered log as a CSV download, streamed row chunk by row chunk."""
    filters = analytics.Filters.parse(request.args, g.workspace)
    if not filters.ok:
        message = "; ".join(f"{k}: {v}" for k, v in filters.errors.items())
        return Response(f"Fix the filters first. {message}\n", status=400, mimetype="text/plain")
    stamp = datetime.now(filters.tz).strftime("%Y%m%d-%H%M")
    filename = f"autoseq-enrollments-{g.workspace.id}-{stamp}.csv"
    return Response(
        stream_with_context(analytics.export_rows(filters)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )
