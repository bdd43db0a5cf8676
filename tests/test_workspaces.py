"""Workspaces: creation, isolation between workspaces, roles and membership."""

from __future__ import annotations

from autoseq.extensions import db
from autoseq.models import Membership, Role, Rotation, Workspace
from autoseq.services import accounts

from .conftest import login


def test_new_user_creates_a_workspace_and_sees_every_area(client, make_user):
    user = make_user()
    login(client, user.email)
    response = client.post_form("/workspaces/new", {"name": "Globex", "timezone": "Europe/Paris"})
    assert response.status_code == 302
    workspace = db.session.scalar(db.select(Workspace).filter_by(name="Globex"))
    assert workspace.timezone == "Europe/Paris"
    for area in ("sequences/", "analytics/", "mailboxes/", "settings", "settings/hubspot/"):
        page = client.get(f"/w/{workspace.id}/{area}")
        assert page.status_code == 200, area
        assert "Globex" in page.get_data(as_text=True)


def test_workspace_form_errors(logged_in):
    response = logged_in.post_form("/workspaces/new", {"name": " ", "timezone": "Mars/Base"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Field must be between 2 and 120 characters long." in html
    assert "Not a valid choice" in html


def test_member_of_a_cannot_see_workspace_b(client, make_user, workspace):
    stranger = make_user()
    other = accounts.create_workspace(stranger, "Other Co")
    login(client, stranger.email)
    for area in ("sequences/", "analytics/", "mailboxes/", "settings", "settings/hubspot/", ""):
        assert client.get(f"/w/{workspace.id}/{area}").status_code == 404, area
    assert client.get(f"/w/{other.id}/sequences/").status_code == 200
    assert "Acme Sales" not in client.get(f"/w/{other.id}/sequences/").get_data(as_text=True)


def test_switcher_lists_only_own_workspaces_and_switches(client, user, workspace):
    second = accounts.create_workspace(user, "Second")
    login(client, user.email)
    html = client.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert "Second" in html and "Acme Sales" in html
    client.get(f"/w/{second.id}/")
    assert client.get("/").location.endswith(f"/w/{second.id}/sequences/")


def test_member_cannot_invite_or_change_roles(member_client, make_user, workspace):
    member = member_client(Role.MEMBER)
    target = make_user()
    response = member.post_form(f"/w/{workspace.id}/members", {"email": target.email})
    assert response.status_code == 302
    assert db.session.scalar(db.select(Membership).filter_by(user_id=target.id)) is None
    owner_membership = db.session.scalar(
        db.select(Membership).filter_by(workspace_id=workspace.id, role="owner")
    )
    member.post_form(f"/w/{workspace.id}/members/{owner_membership.id}/role", {"role": "member"})
    db.session.refresh(owner_membership)
    assert owner_membership.role == "owner"


def test_admin_cannot_demote_owner_and_last_owner_stays(member_client, logged_in, workspace):
    admin = member_client(Role.ADMIN)
    owner_membership = db.session.scalar(
        db.select(Membership).filter_by(workspace_id=workspace.id, role="owner")
    )
    admin.post_form(f"/w/{workspace.id}/members/{owner_membership.id}/role", {"role": "member"})
    db.session.refresh(owner_membership)
    assert owner_membership.role == "owner"


def test_membership_of_other_workspace_is_404(logged_in, make_user):
    other_owner = make_user()
    other = accounts.create_workspace(other_owner, "Other")
    foreign = db.session.scalar(db.select(Membership).filter_by(workspace_id=other.id))
    mine = db.session.scalar(db.select(Workspace).filter_by(name="Acme Sales"))
    response = logged_in.post_form(f"/w/{mine.id}/members/{foreign.id}/role", {"role": "member"})
    assert response.status_code == 404
    db.session.refresh(foreign)
    assert foreign.role == "owner"


def test_unknown_workspace_is_404(logged_in):
    assert logged_in.get("/w/999999/sequences/").status_code == 404


def test_a_new_workspace_sees_the_first_run_checklist_with_each_steps_state(logged_in, workspace):
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert "Getting started" in html
    assert html.count('class="todo"') == 5 and 'class="done"' not in html
    assert "Connect your HubSpot portal" in html and "(optional)" in html


def test_the_checklist_marks_done_steps_and_goes_once_the_required_ones_are(logged_in, workspace):
    db.session.add(Rotation(workspace_id=workspace.id, name="R"))
    db.session.commit()
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert html.count('class="done"') == 1 and html.count('class="todo"') == 4


def test_pages_carry_a_favicon(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'rel="icon"' in html
    assert client.get("/static/favicon.svg").status_code == 200
