"""Workspaces: create, switch, settings and members."""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from .. import mail
from ..extensions import db
from ..forms import InviteForm, RoleForm, WorkspaceForm
from ..models import Enrollment, EnrollmentStatus, Membership, Role, User, Workspace
from ..services import accounts
from .helpers import role_required, workspace_blueprint

log = logging.getLogger(__name__)
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
    """Invite someone by email: they get a signed, expiring link to accept while signed in."""
    invite_form = InviteForm()
    if invite_form.validate_on_submit():
        email = invite_form.email.data
        existing = db.session.scalar(
            db.select(Membership)
            .join(Membership.user)
            .filter(Membership.workspace_id == g.workspace.id, User.email == email)
        )
        if existing:
            invite_form.email.errors.append("This person is already a member.")
        else:
            token = invitation_token(g.workspace.id, email, invite_form.role.data)
            link = current_app.config["PUBLIC_BASE_URL"] + url_for(
                "workspaces.invitation_show", token=token
            )
            days = max(1, current_app.config["INVITATION_MAX_AGE"] // 86400)
            try:
                mail.send(
                    email,
                    f"Join “{g.workspace.name}” on AutoSeq",
                    f"{current_user.display_name} invites you to the AutoSeq workspace "
                    f"“{g.workspace.name}” as {invite_form.role.data}.\n\n"
                    f"Open this link, signed in as {email}, to accept (valid {days} days):\n\n"
                    f"{link}\n",
                )
            except (OSError, RedisError) as exc:
                log.error("invitation mail not sent: %s", exc)
                invite_form.email.errors.append("The invitation could not be sent. Try again.")
            else:
                note = " (no mail server here: see /dev/mail)" if mail.uses_outbox() else ""
                flash(f"Invitation sent to {email}.{note}", "success")
                return redirect(url_for(".settings_show"))
    return _settings_page(invite_form=invite_form), 422


def invitation_token(workspace_id: int, email: str, role: str) -> str:
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="invitation")
    return serializer.dumps({"w": workspace_id, "e": email, "r": role, "by": current_user.id})


def _invitation(token: str) -> dict:
    """The invitation in ``token``, checked: signed, unexpired, for the signed-in user."""
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="invitation")
    try:
        data = serializer.loads(token, max_age=current_app.config["INVITATION_MAX_AGE"])
    except BadSignature:
        abort(400, "This invitation link is invalid or has expired. Ask for a new one.")
    if not isinstance(data, dict) or data.get("r") not in (Role.MEMBER.value, Role.ADMIN.value):
        abort(400, "This invitation link is invalid.")
    workspace = db.session.get(Workspace, data.get("w")) if isinstance(data.get("w"), int) else None
    inviter = db.session.scalar(
        db.select(Membership).filter_by(workspace_id=data.get("w"), user_id=data.get("by"))
    )
    if workspace is None or inviter is None or not inviter.role_enum.at_least(Role.ADMIN):
        abort(400, "This invitation is no longer valid. Ask for a new one.")
    data["workspace"] = workspace
    return data


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@login_required
def invitation_show(token: str):
    """Show an invitation to the invitee; accepting it (POST) makes them a member."""
    invitation = _invitation(token)
    workspace = invitation["workspace"]
    wrong_user = invitation["e"] != current_user.email
    unverified = not current_user.email_verified
    member = db.session.scalar(
        db.select(Membership).filter_by(workspace_id=workspace.id, user_id=current_user.id)
    )
    if request.method == "POST" and not (wrong_user or unverified):
        if member is None:
            try:
                accounts.add_member(workspace, current_user, invitation["r"])
            except IntegrityError:  # accepted twice at once: the other click made the member
                db.session.rollback()
        flash(f"You joined “{workspace.name}”.", "success")
        return redirect(url_for("workspace.workspace_switch", workspace_id=workspace.id))
    status = 403 if request.method == "POST" else 200
    return render_template(
        "workspaces/invitation.html",
        invitation=invitation,
        workspace=workspace,
        wrong_user=wrong_user,
        unverified=unverified,
        member=member,
    ), status


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
