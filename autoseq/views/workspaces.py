"""Workspaces: create, switch, settings and members."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from ..extensions import db
from ..forms import InviteForm, RoleForm, WorkspaceForm
from ..models import Enrollment, EnrollmentStatus, Membership, Role, User
from ..services import accounts
from .helpers import role_required, workspace_blueprint

bp = Blueprint("workspaces", __name__)
ws = workspace_blueprint("workspace", __name__)


@bp.route("/")
@login_required
def home():
    """Send the user to their current workspace, or to create their first one."""
    memberships = db.session.scalars(
        db.select(Membership).filter_by(user_id=current_user.id).order_by(Membership.id)
    ).all()
    if not memberships:
        return redirect(url_for("workspaces.workspace_new"))
    ids = {m.workspace_id for m in memberships}
    target = current_user.last_workspace_id
    if target not in ids:
        target = memberships[0].workspace_id
    return redirect(url_for("sequences.sequence_list", workspace_id=target))


@bp.route("/workspaces/new", methods=["GET", "POST"])
@login_required
def workspace_new():
    form = WorkspaceForm()
    if form.validate_on_submit():
        workspace = accounts.create_workspace(current_user, form.name.data, form.timezone.data)
        flash(f"Workspace “{workspace.name}” created. Connect HubSpot to get started.", "success")
        return redirect(url_for("hubspot.connection_show", workspace_id=workspace.id))
    return render_template("workspaces/new.html", form=form), 200 if not form.errors else 422


@ws.route("/")
def workspace_switch():
    """Opening a workspace's root makes it current (the blueprint does) and shows its sequences."""
    return redirect(url_for("sequences.sequence_list"))


def queued_enrollments(workspace_id: int) -> int:
    """How many of the workspace's enrollments are still queued (the app-wide indicator)."""
    return db.session.scalar(
        db.select(db.func.count())
        .select_from(Enrollment)
        .where(
            Enrollment.workspace_id == workspace_id,
            Enrollment.status == EnrollmentStatus.QUEUED.value,
        )
    )


@ws.route("/activity")
def activity_show():
    """The indicator of enrollments in progress, polled while some are queued. When the count
    moved since the caller's ``was``, ``HX-Trigger: enrollments-changed`` tells the pages that
    show enrollment figures (analytics, log, rotation spread) to refresh themselves."""
    queued = queued_enrollments(g.workspace.id)
    response = make_response(render_template("_activity.html", queued=queued))
    if request.args.get("was", type=int) != queued:
        response.headers["HX-Trigger"] = "enrollments-changed"
    return response


@ws.route("/settings", methods=["GET", "POST"])
def settings_show():
    """Workspace settings: name, time zone and members. Members see; admins change."""
    form = WorkspaceForm(obj=g.workspace)
    if form.validate_on_submit():
        if not g.role.at_least(Role.ADMIN):
            abort(403)
        g.workspace.name = form.name.data
        g.workspace.timezone = form.timezone.data
        db.session.commit()
        flash("Workspace settings saved.", "success")
        return redirect(url_for(".settings_show"))
    return _settings_page(form=form), 200 if not form.errors else 422


def _settings_page(form=None, invite_form=None):
    members = db.session.scalars(
        db.select(Membership)
        .filter_by(workspace_id=g.workspace.id)
        .join(Membership.user)
        .order_by(User.email)
    ).all()
    return render_template(
        "workspaces/settings.html",
        form=form or WorkspaceForm(obj=g.workspace),
        invite_form=invite_form or InviteForm(),
        members=members,
        role_form=RoleForm(),
        roles=list(Role),
    )


@ws.route("/members", methods=["POST"])
@role_required(Role.ADMIN)
def member_create():
    """Invite an existing AutoSeq user into this workspace by email."""
    invite_form = InviteForm()
    if invite_form.validate_on_submit():
        user = db.session.scalar(db.select(User).filter_by(email=invite_form.email.data))
        if user is None:
            invite_form.email.errors.append(
                "No AutoSeq account uses this email. Ask them to sign up first."
            )
        elif db.session.scalar(
            db.select(Membership).filter_by(workspace_id=g.workspace.id, user_id=user.id)
        ):
            invite_form.email.errors.append("This person is already a member.")
        else:
            accounts.add_member(g.workspace, user, invite_form.role.data)
            flash(f"{user.email} can now use this workspace.", "success")
            return redirect(url_for(".settings_show"))
    return _settings_page(invite_form=invite_form), 422


def _member_or_404(membership_id: int) -> Membership:
    membership = db.session.scalar(
        db.select(Membership).filter_by(id=membership_id, workspace_id=g.workspace.id)
    )
    if membership is None:
        abort(404)
    return membership


@ws.route("/members/<int:membership_id>/role", methods=["POST"])
@role_required(Role.ADMIN)
def member_update(membership_id: int):
    """Change a member's role. Only owners make or unmake owners; the last owner stays one."""
    membership = _member_or_404(membership_id)
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Pick a valid role.", "error")
        return redirect(url_for(".settings_show"))
    new_role = Role(form.role.data)
    touches_owner = Role.OWNER in (new_role, membership.role_enum)
    if touches_owner and g.role != Role.OWNER:
        flash("Only an owner can make or unmake owners.", "error")
    elif (
        membership.role_enum == Role.OWNER
        and new_role != Role.OWNER
        and accounts.owner_count(g.workspace.id) <= 1
    ):
        flash("A workspace needs at least one owner.", "error")
    else:
        membership.role = new_role.value
        db.session.commit()
        flash(f"{membership.user.email} is now {new_role.value}.", "success")
    return redirect(url_for(".settings_show"))


@ws.route("/members/<int:membership_id>/delete", methods=["POST"])
@role_required(Role.ADMIN)
def member_delete(membership_id: int):
    membership = _member_or_404(membership_id)
    if membership.role_enum == Role.OWNER and g.role != Role.OWNER:
        flash("Only an owner can remove an owner.", "error")
    elif membership.role_enum == Role.OWNER and accounts.owner_count(g.workspace.id) <= 1:
        flash("A workspace needs at least one owner.", "error")
    else:
        email = membership.user.email
        db.session.delete(membership)
        db.session.commit()
        flash(f"{email} was removed from this workspace.", "success")
    return redirect(url_for(".settings_show"))
