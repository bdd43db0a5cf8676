"""Membership needs consent: a signed, expiring link, accepted signed in and verified."""

from __future__ import annotations

import re

from itsdangerous import URLSafeTimedSerializer

from autoseq import mail
from autoseq.extensions import db
from autoseq.models import Membership

from .conftest import PASSWORD, login

LINK_RE = re.compile(r"http://localhost:5000(/\S+)")


def _last_link(to: str) -> str:
    message = next(m for m in mail.outbox() if m["to"] == to)
    return LINK_RE.search(message["body"]).group(1)


def _invite(client, workspace, email, role="member"):
    response = client.post_form(f"/w/{workspace.id}/members", {"email": email, "role": role})
    assert response.status_code == 302, response.get_data(as_text=True)
    return _last_link(email.lower())


def _verify(client, email):
    client.post_form("/account/verify")
    assert client.get(_last_link(email)).status_code == 302


def _membership(user):
    return db.session.scalar(db.select(Membership).filter_by(user_id=user.id))


def test_inviting_an_existing_account_does_not_add_it(logged_in, make_user, workspace):
    invitee = make_user("invitee@example.com")
    _invite(logged_in, workspace, "INVITEE@example.com", "admin")
    assert _membership(invitee) is None


def test_the_invitee_accepts_signed_in_with_a_verified_address(
    app, logged_in, make_user, workspace
):
    invitee = make_user("invitee@example.com")
    link = _invite(logged_in, workspace, "invitee@example.com", "admin")
    browser = app.test_client()
    assert login(browser, invitee.email).status_code == 302
    page = browser.get(link).get_data(as_text=True)
    assert "Confirm your address" in page
    assert browser.post_form(link).status_code == 403  # not verified yet
    _verify(browser, invitee.email)
    assert "Accept invitation" in browser.get(link).get_data(as_text=True)
    response = browser.post_form(link)
    assert response.status_code == 302
    membership = _membership(invitee)
    assert membership.workspace_id == workspace.id and membership.role == "admin"


def test_someone_else_signed_in_cannot_accept(app, logged_in, make_user, workspace):
    link = _invite(logged_in, workspace, "colleague@example.com")
    squatter = make_user("squatter@example.com")
    browser = app.test_client()
    assert login(browser, squatter.email).status_code == 302
    _verify(browser, squatter.email)
    assert browser.post_form(link).status_code == 403
    assert _membership(squatter) is None


def test_an_unverified_squatter_of_the_invited_address_cannot_accept(app, logged_in, workspace):
    link = _invite(logged_in, workspace, "colleague@example.com")
    browser = app.test_client()
    response = browser.post_form(
        "/signup", {"email": "colleague@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert response.status_code == 302
    assert browser.post_form(link).status_code == 403


def test_an_expired_or_forged_link_is_refused(app, logged_in, make_user, workspace):
    invitee = make_user("invitee@example.com")
    browser = app.test_client()
    login(browser, invitee.email)
    _verify(browser, invitee.email)
    forged = URLSafeTimedSerializer("not our secret", salt="invitation").dumps(
        {"w": workspace.id, "e": invitee.email, "r": "admin", "by": 1}
    )
    assert browser.post_form(f"/invitations/{forged}").status_code == 400
    link = _invite(logged_in, workspace, invitee.email)
    app.config["INVITATION_MAX_AGE"] = -1
    try:
        assert browser.post_form(link).status_code == 400
    finally:
        app.config["INVITATION_MAX_AGE"] = 7 * 24 * 3600
    assert _membership(invitee) is None


def test_the_development_outbox_page_shows_the_mail(logged_in, workspace):
    _invite(logged_in, workspace, "someone@example.com")
    page = logged_in.get("/dev/mail").get_data(as_text=True)
    assert "someone@example.com" in page and "/invitations/" in page
