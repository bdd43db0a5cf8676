"""The Sequences area: every synced sequence of the workspace, one sequence's page, Sync Data.

Pages read the database only; they never call HubSpot. The Sync Data button (in the top bar of
every workspace page, ``sequences/_sync_button.html``) POSTs to :func:`sync_start` and then polls
:func:`sync_status` once a second until the run ends; the last poll answers with an
``HX-Trigger: sync-finished`` header that the Sequences table listens to, to reload itself.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from flask import flash, g, make_response, render_template, request, url_for
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from .. import queue
from ..extensions import db, htmx
from ..models import (
    ConnectionStatus,
    Enrollment,
    EnrollmentStatus,
    HubSpotConnection,
    HubSpotUser,
    Sequence,
    SequenceState,
    Sharing,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from ..models.base import utcnow
from ..services import analytics
from ..services import enrollment as enrollment_service
from ..services import sync as sync_service
from .helpers import redirect_next, render_fragment_or_page, scoped_or_404, workspace_blueprint

bp = workspace_blueprint("sequences", __name__, "/sequences")

PER_PAGE = 50
PAGE_SIZES = (25, 50, 100, 250)
# Every sort of the list; each column sorts both ways. "enrollments" (most first) and "name" keep
# their old meaning (bookmarked URLs); the id breaks ties, so the order is stable.
SORTS = (
    "name",
    "name_desc",
    "sharing",
    "sharing_desc",
    "enrollments",
    "enrollments_asc",
    "synced",
    "synced_asc",
)
# The direction a column's first click sorts in (names A-Z, counts and dates newest/most first).
SORT_COLUMNS = {
    "name": ("name", "name_desc"),
    "sharing": ("sharing", "sharing_desc"),
    "enrollments": ("enrollments", "enrollments_asc"),
    "synced": ("synced", "synced_asc"),
}
STATES = tuple(s.value for s in SequenceState)
SHARINGS = tuple(s.value for s in Sharing)


# -- the list ----------------------------------------------------------------------------------


def _filters() -> dict:
    """The list's query parameters, cleaned: unknown values fall back to "all"."""
    args = request.args
    q = (args.get("q") or "").strip()[:200]
    state = args.get("state", "")
    sharing = args.get("sharing", "")
    owner = (args.get("owner") or "").strip()[:32]
    sort = args.get("sort", "name")
    try:
        page = max(1, int(args.get("page", 1)))
    except ValueError:
        page = 1
    per = args.get("per", type=int)
    return {
        "per": per if per in PAGE_SIZES else PER_PAGE,
        "q": q,
        "state": state if state in STATES else "",
        "sharing": sharing if sharing in SHARINGS else "",
        "owner": owner,
        "sort": sort if sort in SORTS else "name",
        "page": page,
    }


def _enrolled_counts(workspace_id: int, sequence_ids=None):
    """Contacts enrolled via AutoSeq per sequence row: one GROUP BY query."""
    query = (
        db.select(Enrollment.sequence_id, db.func.count().label("n"))
        .where(
            Enrollment.workspace_id == workspace_id,
            Enrollment.status == EnrollmentStatus.ENROLLED.value,
        )
        .group_by(Enrollment.sequence_id)
    )
    if sequence_ids is not None:
        query = query.where(Enrollment.sequence_id.in_(sequence_ids))
    return query


def _list_context() -> dict:
    ws = g.workspace.id
    f = _filters()
    where = [Sequence.workspace_id == ws, Sequence.removed_at.is_(None)]
    if f["q"]:
        where.append(Sequence.name.icontains(f["q"], autoescape=True))
    if f["state"]:
        where.append(Sequence.state == f["state"])
    if f["sharing"]:
        where.append(Sequence.sharing == f["sharing"])
    if f["owner"]:
        where.append(Sequence.owner_hubspot_user_id == f["owner"])

    total = db.session.scalar(db.select(db.func.count()).select_from(Sequence).where(*where))
    per_page = f["per"]
    pages = max(1, -(-total // per_page))
    f["page"] = min(f["page"], pages)
    offset = (f["page"] - 1) * per_page
    by_name = (db.func.lower(Sequence.name), Sequence.id)
    sort = f["sort"]

    if sort.startswith("enrollments"):
        counts = _enrolled_counts(ws).subquery()
        enrolled = db.func.coalesce(counts.c.n, 0)
        rows = db.session.execute(
            db.select(Sequence, enrolled.label("enrolled"))
            .outerjoin(counts, counts.c.sequence_id == Sequence.id)
            .where(*where)
            .order_by(enrolled.asc() if sort == "enrollments_asc" else enrolled.desc(), *by_name)
            .limit(per_page)
            .offset(offset)
        ).all()
        items = [(row.Sequence, row.enrolled) for row in rows]
    else:
        order = {
            "name": by_name,
            "name_desc": (db.func.lower(Sequence.name).desc(), Sequence.id.desc()),
            "sharing": (Sequence.sharing, *by_name),
            "sharing_desc": (Sequence.sharing.desc(), *by_name),
            "synced": (Sequence.last_synced_at.desc(), *by_name),
            "synced_asc": (Sequence.last_synced_at.asc(), *by_name),
        }[sort]
        page_rows = db.session.scalars(
            db.select(Sequence).where(*where).order_by(*order).limit(per_page).offset(offset)
        ).all()
        counted = dict(
            db.session.execute(_enrolled_counts(ws, [s.id for s in page_rows])).tuples().all()
        )
        items = [(s, counted.get(s.id, 0)) for s in page_rows]

    owners = {
        u.hubspot_user_id: u
        for u in db.session.scalars(
            db.select(HubSpotUser)
            .filter_by(workspace_id=ws)
            .order_by(HubSpotUser.first_name, HubSpotUser.last_name, HubSpotUser.email)
        )
    }
    any_sequences = bool(total) or db.session.scalar(
        db.select(Sequence.id)
        .where(Sequence.workspace_id == ws, Sequence.removed_at.is_(None))
        .limit(1)
    )
    # HubSpot's sequences API reports no state in most portals: show the column and its filter
    # only when some sequence has one, rather than a column of "Unknown".
    has_states = any_sequences and db.session.scalar(
        db.select(Sequence.id)
        .where(
            Sequence.workspace_id == ws,
            Sequence.removed_at.is_(None),
            Sequence.state != SequenceState.UNKNOWN.value,
        )
        .limit(1)
    )
    history = db.session.scalars(
        db.select(SyncRun).filter_by(workspace_id=ws).order_by(SyncRun.id.desc()).limit(5)
    ).all()
    connection = db.session.scalar(db.select(HubSpotConnection).filter_by(workspace_id=ws))
    return {
        "items": items,
        "filters": f,
        "total": total,
        "pages": pages,
        "owners": owners,
        "any_sequences": bool(any_sequences),
        "history": history,
        "hubspot_connected": connection is not None
        and connection.status == ConnectionStatus.CONNECTED,
        "states": STATES,
        "page_sizes": PAGE_SIZES,
        "sort_columns": SORT_COLUMNS,
        "has_states": bool(has_states),
        "sharings": SHARINGS,
        # executions waiting for a contact's sequence to end ("Already in a sequence: wait")
        "waiting": enrollment_service.waiting_count(ws),
    }


@bp.route("/")
def sequence_list():
    """Every synced sequence: search, filter by state/sharing/owner, sort, paginate."""
    context = _list_context()
    # The first sync's refresh swaps the whole content area; a history restore (Back after
    # hx-push-url, page not in htmx's cache) wants the whole page too.
    if htmx and (htmx.target == "content" or htmx.history_restore_request):
        return render_template("sequences/list.html", **context)
    return render_fragment_or_page("sequences/list.html", "sequences/_table.html", **context)


@bp.app_template_global("sequence_list_url")
def sequence_list_url(filters: dict, **changes) -> str:
    """The list URL with ``filters`` changed by ``changes`` (empty values left out)."""
    params = dict(filters, **changes)
    params = {
        k: v
        for k, v in params.items()
        if v not in ("", None) and (k, v) not in (("page", 1), ("per", PER_PAGE))
    }
    if params.get("sort") == "name":
        params.pop("sort")
    return url_for("sequences.sequence_list", **params)


# -- one sequence ------------------------------------------------------------------------------


@bp.route("/<int:sequence_id>")
def sequence_show(sequence_id: int):
    """One sequence: its details, who may send it, its recent enrollments and workflows."""
    sequence = scoped_or_404(Sequence, sequence_id)
    ws = g.workspace.id
    senders = []
    if sequence.sender_user_ids:
        senders = db.session.scalars(
            db.select(HubSpotUser)
            .where(
                HubSpotUser.workspace_id == ws,
                HubSpotUser.hubspot_user_id.in_(sequence.sender_user_ids),
            )
            .options(selectinload(HubSpotUser.mailboxes))
            .order_by(HubSpotUser.first_name, HubSpotUser.last_name, HubSpotUser.email)
        ).all()
    owner = None
    if sequence.owner_hubspot_user_id:
        owner = db.session.scalar(
            db.select(HubSpotUser).filter_by(
                workspace_id=ws, hubspot_user_id=sequence.owner_hubspot_user_id
            )
        )
    recent = db.session.scalars(
        db.select(Enrollment)
        .filter_by(workspace_id=ws, sequence_id=sequence.id)
        .order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
        .limit(20)
    ).all()
    workflows = db.session.execute(
        db.select(
            Enrollment.workflow_id,
            db.func.count().label("total"),
            db.func.sum(
                db.case((Enrollment.status == EnrollmentStatus.ENROLLED.value, 1), else_=0)
            ).label("enrolled"),
            db.func.max(Enrollment.created_at).label("last"),
        )
        .filter_by(workspace_id=ws, sequence_id=sequence.id)
        .group_by(Enrollment.workflow_id)
        .order_by(db.func.count().desc())
    ).all()
    enrolled = sum(w.enrolled or 0 for w in workflows)
    return render_template(
        "sequences/show.html",
        sequence=sequence,
        owner=owner,
        senders=senders,
        recent=recent,
        workflows=workflows,
        workflow_names=analytics.workflow_names(
            g.workspace.id, [w.workflow_id for w in workflows] + [e.workflow_id for e in recent]
        ),
        enrolled=enrolled,
    )


# -- Sync Data ---------------------------------------------------------------------------------


def _job_progress(run: SyncRun) -> dict:
    """What the running job said last in ``job.meta`` (phase, users done/total, sequences)."""
    try:
        return queue.job_meta(run.job_id)
    except RedisError:
        return {}  # progress is a nicety: never fail a page for it


def _button(run: SyncRun | None, *, just_finished: bool = False, message: str | None = None):
    active = run is not None and not run.is_finished
    response = make_response(
        render_template(
            "sequences/_sync_button.html",
            sync_run=run,
            sync_progress=_job_progress(run) if active else {},
            sync_just_finished=just_finished,
            sync_message=message,
            sync_last_ok=_last_ok(g.workspace.id),
        )
    )
    if just_finished and run is not None and run.status == SyncStatus.SUCCEEDED:
        response.headers["HX-Trigger"] = "sync-finished"
    return response


def _last_ok(workspace_id: int) -> SyncRun | None:
    return db.session.scalar(
        db.select(SyncRun)
        .filter_by(workspace_id=workspace_id, status=SyncStatus.SUCCEEDED.value)
        .order_by(SyncRun.finished_at.desc())
        .limit(1)
    )


@bp.route("/sync", methods=["POST"])
def sync_start():
    """Sync Data (any member): start a sync, or join the one running; answer the progress box."""
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=g.workspace.id)
    )
    if connection is None or connection.status != ConnectionStatus.CONNECTED:
        message = (
            "Connect HubSpot first."
            if connection is None or connection.status == ConnectionStatus.DISCONNECTED
            else "HubSpot needs reconnecting before AutoSeq can sync."
        )
        if not htmx:
            flash(message, "error")
            return redirect_next(url_for("sequences.sequence_list"))
        return _button(None, message=message)
    try:
        run = sync_service.request_sync(g.workspace.id, SyncTrigger.MANUAL)
    except (RedisError, sync_service.SyncBusy):
        db.session.rollback()
        message = "AutoSeq could not start the sync just now. Try again in a minute."
        if not htmx:
            flash(message, "error")
            return redirect_next(url_for("sequences.sequence_list"))
        return _button(None, message=message)
    if not htmx:
        flash("Sync started: the list refreshes when it is done.", "info")
        return redirect_next(url_for("sequences.sequence_list"))
    return _button(run)


@bp.route("/sync/<int:run_id>")
def sync_status(run_id: int):
    """The progress box of one run, polled every second while it runs."""
    run = scoped_or_404(SyncRun, run_id)
    if not run.is_finished:
        with contextlib.suppress(RedisError):  # without Redis, keep showing what the row says
            sync_service.check_run(run)
    return _button(run, just_finished=run.is_finished)


@bp.app_context_processor
def sync_button_context() -> dict:
    """The Sync Data button is on every workspace page; it asks for its state when rendered."""

    def sync_button_state() -> dict:
        nothing = {"run": None, "progress": {}, "last_ok": None}
        if not g.get("workspace"):
            return nothing
        try:
            run = db.session.scalar(
                db.select(SyncRun)
                .filter_by(workspace_id=g.workspace.id)
                .order_by(SyncRun.id.desc())
                .limit(1)
            )
        except SQLAlchemyError:  # e.g. on the error page of a database failure
            db.session.rollback()
            return nothing
        active = run is not None and not run.is_finished
        ok = run is not None and run.status == SyncStatus.SUCCEEDED
        return {
            "run": run,
            "progress": _job_progress(run) if active else {},
            "last_ok": run if ok else _last_ok(g.workspace.id),
        }

    return {"sync_button_state": sync_button_state}


@bp.app_template_filter("ago")
def ago(value: datetime | None) -> str:
    """``3 minutes ago``-style text for a past UTC time."""
    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size) if unit == "minute" else seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
