"""The Mailboxes & Rotations area: who sends, and how enrollments are spread.

Members see everything here; admins change it. Forms post back to themselves (PRG with a flash);
mailbox rows are edited inline with htmx.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, g, redirect, render_template, request, url_for

from ..extensions import db, htmx
from ..forms_mailboxes import (
    MailboxAddForm,
    MailboxEditForm,
    RotationForm,
    mailbox_label,
)
from ..models import HubSpotConnection, Mailbox, Role, Rotation
from ..services import mailboxes as service
from ..services import senders
from .helpers import role_required, scoped_or_404, workspace_blueprint

bp = workspace_blueprint("mailboxes", __name__, "/mailboxes")


def _user_choices():
    return [(u.id, f"{u.full_name} <{u.email}>") for u in service.hubspot_users(g.workspace.id)]


def _mailbox_choices():
    return [(m.id, mailbox_label(m)) for m in service.workspace_mailboxes(g.workspace.id)]


def _row_context(mailboxes):
    ids = [m.id for m in mailboxes]
    return {
        "sent": senders.sent_last_24h(ids),
        "reasons": {m.id: m.disconnect_reason for m in mailboxes if m.disconnect_reason},
        "state_of": service.mailbox_state,
    }


def _list_page(add_form: MailboxAddForm | None = None, status: int = 200):
    users = service.hubspot_users(g.workspace.id)
    if add_form is None:
        add_form = MailboxAddForm(formdata=None)
    add_form.hubspot_user_id.choices = [("", "— pick a user —"), *_user_choices()]
    all_mailboxes = [m for u in users for m in u.mailboxes]
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=g.workspace.id)
    )
    rotations = service.rotations(g.workspace.id)
    page = render_template(
        "mailboxes/list.html",
        users=users,
        add_form=add_form,
        rotations=rotations,
        hubspot_connected=bool(connection and connection.is_connected),
        admin=g.role.at_least(Role.ADMIN),
        **_row_context(all_mailboxes),
    )
    return page, status


@bp.route("/")
def mailbox_list():
    """Every synced HubSpot user with their mailboxes, and the workspace's rotations."""
    return _list_page()


@bp.route("/add", methods=["POST"])
@role_required(Role.ADMIN)
def mailbox_create():
    """Add an inbox address or a sender alias for a HubSpot user."""
    form = MailboxAddForm()
    form.hubspot_user_id.choices = [("", "— pick a user —"), *_user_choices()]
    if form.validate_on_submit():
        try:
            mailbox = service.add_mailbox(
                g.workspace.id,
                form.hubspot_user_id.data,
                form.email.data,
                kind=form.kind.data,
                inbox_email=form.inbox_email.data,
                daily_cap=form.daily_cap.data,
            )
        except service.MailboxError as exc:
            db.session.rollback()
            getattr(form, exc.field).errors.append(exc.message)
        else:
            flash(f"Mailbox {mailbox.email} added.", "success")
            return redirect(url_for(".mailbox_list"))
    return _list_page(form, 422)


def _mailbox_or_404(mailbox_id: int) -> Mailbox:
    return scoped_or_404(Mailbox, mailbox_id)


def _row(mailbox: Mailbox):
    return render_template(
        "mailboxes/_mailbox_row.html",
        mailbox=mailbox,
        admin=g.role.at_least(Role.ADMIN),
        **_row_context([mailbox]),
    )


@bp.route("/<int:mailbox_id>/row")
def mailbox_row(mailbox_id: int):
    """One mailbox's table row (htmx: what an inline edit returns to when cancelled)."""
    return _row(_mailbox_or_404(mailbox_id))


@bp.route("/<int:mailbox_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def mailbox_edit(mailbox_id: int):
    """Edit a mailbox's cap, status and out-of-office date (inline with htmx, or as a page)."""
    mailbox = _mailbox_or_404(mailbox_id)
    form = MailboxEditForm(obj=mailbox)
    status = 200
    if form.validate_on_submit():
        try:
            service.update_mailbox(
                mailbox,
                daily_cap=form.daily_cap.data,
                status=form.status.data,
                out_of_office_until=form.out_of_office_until.data,
            )
        except service.MailboxError as exc:
            db.session.rollback()
            getattr(form, exc.field).errors.append(exc.message)
        else:
            if htmx:
                return _row(mailbox)
            flash(f"Mailbox {mailbox.email} saved.", "success")
            return redirect(url_for(".mailbox_list"))
    if form.errors or request.method == "POST":
        # htmx 2 swaps only 2xx answers: the inline row with its errors comes back as 200.
        status = 200 if htmx else 422
    template = "mailboxes/_mailbox_edit_row.html" if htmx else "mailboxes/edit.html"
    return render_template(template, mailbox=mailbox, form=form), status


@bp.route("/<int:mailbox_id>/delete", methods=["POST"])
@role_required(Role.ADMIN)
def mailbox_delete(mailbox_id: int):
    """Remove an added mailbox (a user's default mailbox stays)."""
    mailbox = _mailbox_or_404(mailbox_id)
    email = mailbox.email
    try:
        service.delete_mailbox(mailbox)
    except service.MailboxError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Mailbox {email} removed.", "success")
    return redirect(url_for(".mailbox_list"))


# --- rotations ------------------------------------------------------------------------------------


def _rotation_or_404(rotation_id: int) -> Rotation:
    return scoped_or_404(Rotation, rotation_id, deleted_at=None)


def _save_rotation(form: RotationForm, rotation: Rotation | None) -> Rotation | None:
    if not form.validate_on_submit():
        return None
    try:
        return service.save_rotation(
            g.workspace.id,
            rotation,
            name=form.name.data,
            mode=form.mode.data,
            reset_period=form.reset_period.data,
            members=form.chosen_members(),
        )
    except service.MailboxError as exc:
        db.session.rollback()
        if rotation is not None:
            db.session.refresh(rotation)
        form.members_errors.append(exc.message)
        return None


@bp.route("/rotations/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def rotation_new():
    """Create a rotation: a name, a split, a reset period and its mailboxes."""
    form = RotationForm(mailbox_choices=_mailbox_choices())
    if request.method == "GET":
        form.add_blank_rows(3)
    rotation = _save_rotation(form, None)
    if rotation is not None:
        flash(f"Rotation “{rotation.name}” created.", "success")
        return redirect(url_for(".rotation_show", rotation_id=rotation.id))
    status = 422 if request.method == "POST" else 200
    return render_template("mailboxes/rotation_new.html", form=form), status


def _rotation_page(rotation: Rotation, form: RotationForm | None = None, status: int = 200):
    if form is None:
        form = RotationForm(formdata=None, obj=rotation, mailbox_choices=_mailbox_choices())
        form.add_blank_rows(1)
    start, total, spread = service.rotation_spread(rotation)
    members_by_mailbox = {m.mailbox_id: m for m in rotation.members}
    sent = senders.sent_last_24h(members_by_mailbox)
    page = render_template(
        "mailboxes/rotation.html",
        rotation=rotation,
        form=form,
        members_by_mailbox=members_by_mailbox,
        period_start=start,
        total=total,
        spread=spread,
        sent=sent,
        state_of=service.mailbox_state,
        admin=g.role.at_least(Role.ADMIN),
    )
    return page, status


@bp.route("/rotations/<int:rotation_id>")
def rotation_show(rotation_id: int):
    """A rotation: its members and weights, and how enrollments were actually spread."""
    return _rotation_page(_rotation_or_404(rotation_id))


@bp.route("/rotations/<int:rotation_id>", methods=["POST"])
@role_required(Role.ADMIN)
def rotation_update(rotation_id: int):
    """Rename, change the split or reset period, add, remove and re-weight members."""
    rotation = _rotation_or_404(rotation_id)
    form = RotationForm(mailbox_choices=_mailbox_choices())
    if _save_rotation(form, rotation) is not None:
        flash(f"Rotation “{rotation.name}” saved.", "success")
        return redirect(url_for(".rotation_show", rotation_id=rotation.id))
    return _rotation_page(rotation, form, 422)


@bp.route("/rotations/<int:rotation_id>/move", methods=["POST"])
@role_required(Role.ADMIN)
def rotation_move(rotation_id: int):
    """Move a member up or down (``move`` = "<member id>:up|down")."""
    rotation = _rotation_or_404(rotation_id)
    member_id, _, direction = (request.form.get("move") or "").partition(":")
    well_formed = member_id.isascii() and member_id.isdigit() and len(member_id) <= 9
    if not well_formed or direction not in ("up", "down"):
        abort(400, "Say which member to move, and up or down.")
    service.move_member(rotation, int(member_id), direction)
    return redirect(url_for(".rotation_show", rotation_id=rotation.id))


@bp.route("/rotations/<int:rotation_id>/delete", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def rotation_delete(rotation_id: int):
    """Delete a rotation; one that enrollments or workflows use needs a confirmation first."""
    rotation = _rotation_or_404(rotation_id)
    usage = service.rotation_usage(rotation)
    confirmed = request.method == "POST" and request.form.get("confirm") == "yes"
    if request.method == "POST" and (confirmed or not usage.in_use):
        service.delete_rotation(rotation, datetime.now(UTC))
        flash(
            f"Rotation “{rotation.name}” deleted. Workflows that still name it will fail "
            "with ROTATION_DELETED until they pick another sender.",
            "success",
        )
        return redirect(url_for(".mailbox_list"))
    return render_template("mailboxes/rotation_delete.html", rotation=rotation, usage=usage)
