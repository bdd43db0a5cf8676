"""Sign-up, login and logout: errors beside fields, CSRF, a checked ``next``, a login limit."""

from __future__ import annotations

from autoseq.extensions import db
from autoseq.models import User

from .conftest import PASSWORD, login


def test_signup_creates_user_and_logs_in(client):
    response = client.post_form(
        "/signup",
        {"name": "Ann", "email": " Ann@Example.com ", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert response.status_code == 302
    assert response.location.endswith("/workspaces/new")
    user = db.session.scalar(db.select(User).filter_by(email="ann@example.com"))
    assert user is not None and user.password_hash != PASSWORD
    assert user.password_hash.startswith("scrypt:")
    assert client.get("/workspaces/new").status_code == 200


def test_signup_errors_are_shown_beside_fields_and_keep_input(client):
    response = client.post_form(
        "/signup", {"name": "Ann", "email": "not-an-email", "password": "short", "confirm": "other"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="email-errors"' in html and "Invalid email address" in html
    assert "Use at least 10 characters." in html
    assert 'value="not-an-email"' in html  # what the user typed is kept
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_signup_duplicate_email_is_a_field_error(client, user):
    response = client.post_form(
        "/signup", {"email": user.email, "password": PASSWORD, "confirm": PASSWORD}
    )
    assert response.status_code == 422
    assert "An account with this email exists" in response.get_data(as_text=True)


def test_login_wrong_password_is_a_field_error(client, user):
    response = login(client, user.email, "wrong password!!")
    assert response.status_code == 422
    assert "do not match an account" in response.get_data(as_text=True)


def test_login_then_logout(client, user, workspace):
    assert login(client, user.email).status_code == 302
    assert client.get(f"/w/{workspace.id}/sequences/").status_code == 200
    assert client.post_form("/logout").status_code == 302
    response = client.get(f"/w/{workspace.id}/sequences/")
    assert response.status_code == 302 and "/login" in response.location


def test_missing_csrf_token_is_a_400_page_not_a_crash(client, user):
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Your form expired" in response.get_data(as_text=True)
    bad = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "x"})
    assert bad.status_code == 400


def test_login_follows_a_local_next(client, user, workspace):
    response = client.post_form(
        "/login", {"email": user.email, "password": PASSWORD, "next": "/w/1/analytics/"}
    )
    assert response.status_code == 302 and response.location == "/w/1/analytics/"


def test_login_refuses_an_offsite_next(client, user, workspace):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post_form(
            "/login", {"email": user.email, "password": PASSWORD, "next": target}
        )
        assert response.status_code == 302
        assert "evil" not in response.location, target
        client.post_form("/logout")


def test_session_cookie_flags(app, client, user):
    response = login(client, user.email)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_users_create_command(runner, app):
    result = runner.invoke(
        args=["users", "create", "Cli@Example.com", "--password", PASSWORD, "--workspace", "Ops"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(db.select(User).filter_by(email="cli@example.com"))
    assert user and user.check_password(PASSWORD)
    again = runner.invoke(args=["users", "create", "cli@example.com", "--password", PASSWORD])
    assert again.exit_code != 0 and "exists already" in again.output
