"""Sessions end when they should: logout, password change, sign out everywhere; 14-day remember."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .conftest import PASSWORD, login


def _cookie(client, name):
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _replay(app, **cookies):
    """A fresh browser holding only copies of ``cookies``."""
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def test_a_copied_session_cookie_stops_working_after_logout(app, client, user, workspace):
    assert login(client, user.email).status_code == 302
    stolen = _cookie(client, "session")
    thief = _replay(app, session=stolen)
    assert thief.get(f"/w/{workspace.id}/sequences/").status_code == 200
    assert client.post_form("/logout").status_code == 302
    response = thief.get(f"/w/{workspace.id}/sequences/")
    assert response.status_code == 302 and "/login" in response.location


def test_a_copied_remember_cookie_stops_working_after_logout(app, client, user, workspace):
    response = client.post_form(
        "/login", {"email": user.email, "password": PASSWORD, "remember": "y"}
    )
    assert response.status_code == 302
    remember = _cookie(client, "remember_token")
    thief = _replay(app, remember_token=remember)
    assert thief.get(f"/w/{workspace.id}/sequences/").status_code == 200
    client.post_form("/logout")
    again = _replay(app, remember_token=remember)
    response = again.get(f"/w/{workspace.id}/sequences/")
    assert response.status_code == 302 and "/login" in response.location


def test_remember_me_lasts_at_most_14_days(client, user):
    response = client.post_form(
        "/login", {"email": user.email, "password": PASSWORD, "remember": "y"}
    )
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(c for c in cookies if c.startswith("remember_token="))
    expires = parsedate_to_datetime(remember.split("Expires=")[1].split(";")[0])
    lasts = expires - datetime.now(UTC)
    assert timedelta(days=13) < lasts <= timedelta(days=14)


def test_password_change_ends_other_sessions_and_keeps_this_one(app, make_user, workspace):
    from autoseq.services import accounts

    member = make_user("pat@example.com")
    accounts.add_member(workspace, member, "member")
    laptop, phone = app.test_client(), app.test_client()
    assert login(laptop, member.email).status_code == 302
    assert login(phone, member.email).status_code == 302
    new = "a brand new password"
    response = laptop.post_form("/account", {"current": PASSWORD, "password": new, "confirm": new})
    assert response.status_code == 302
    assert laptop.get(f"/w/{workspace.id}/sequences/").status_code == 200
    assert phone.get(f"/w/{workspace.id}/sequences/").status_code == 302
    assert login(app.test_client(), member.email, new).status_code == 302


def test_password_change_needs_the_current_password(logged_in):
    new = "a brand new password"
    response = logged_in.post_form(
        "/account", {"current": "not my password", "password": new, "confirm": new}
    )
    assert response.status_code == 422
    assert "not your current password" in response.get_data(as_text=True)


def test_sign_out_everywhere_ends_every_session(app, client, user, workspace):
    other = app.test_client()
    assert login(client, user.email).status_code == 302
    assert login(other, user.email).status_code == 302
    assert client.post_form("/account/sign-out-everywhere").status_code == 302
    for browser in (client, other):
        assert browser.get(f"/w/{workspace.id}/sequences/").status_code == 302
