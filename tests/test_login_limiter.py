"""The login limiter: counted before the check, per address and per account, slows not locks."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import requests
from redis import Redis
from werkzeug.serving import make_server

from autoseq import create_app

from .conftest import CSRF_RE, PASSWORD, login

WRONG = "wrong password!!"


def test_an_attacked_account_is_slowed_not_locked(app, client, user):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    for _ in range(limit):
        assert login(client, user.email, WRONG).status_code == 422
    # Past the limit one attempt per LOGIN_SLOW_INTERVAL gets a password check ...
    assert login(client, user.email, WRONG).status_code == 422
    refused = login(client, user.email)
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) <= app.config["LOGIN_SLOW_INTERVAL"]
    # ... so the owner, trying again once the slot frees, gets in.
    app.extensions["redis"].delete(*app.extensions["redis"].keys("autoseq:login:slot:*"))
    assert login(client, user.email).status_code == 302


def test_a_browser_that_logged_in_before_is_not_slowed_by_an_attack(app, client, user):
    assert login(client, user.email).status_code == 302
    client.post_form("/logout")
    attacker = app.test_client()
    for _ in range(app.config["LOGIN_FAILURE_LIMIT"] + 3):
        login(attacker, user.email, WRONG)
    assert login(attacker, user.email).status_code == 429
    assert login(client, user.email).status_code == 302  # the owner's browser, right away


def test_one_address_spraying_many_emails_is_stopped(app, client, make_user):
    app.config["LOGIN_ADDRESS_LIMIT"] = 8
    try:
        answers = [login(client, f"victim{i}@example.com", WRONG).status_code for i in range(12)]
    finally:
        app.config["LOGIN_ADDRESS_LIMIT"] = 50
    assert answers[:8] == [422] * 8
    assert answers[8:] == [429] * 4


def test_unknown_emails_cost_the_same_time_as_known_ones(client, user):
    def timed(email):
        start = time.perf_counter()
        assert login(client, email, WRONG).status_code == 422
        return time.perf_counter() - start

    known, unknown = [], []
    for i in range(2):
        known.append(timed(user.email))
        unknown.append(timed(f"nobody{i}@example.com"))
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"unknown/known login time: {ratio:.2f}")
    assert 0.5 < ratio < 2


def test_login_answers_503_when_redis_is_down(app, client, user):
    live = app.extensions["redis"]
    token = client.csrf_token()
    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        response = client.post(
            "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
    finally:
        app.extensions["redis"] = live
    assert response.status_code == 503
    assert "Try again shortly" in response.get_data(as_text=True)


@pytest.fixture
def proxied_app(app):
    """The same app configured behind one trusted proxy (Heroku's router)."""
    config = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "SECRET_KEY")}
    other = create_app(
        {
            **config,
            "AUTOSEQ_ENV": "testing",
            "TOKEN_ENCRYPTION_KEY": app.config["TOKEN_ENCRYPTION_KEYS"][0],
            "TRUSTED_PROXY_HOPS": 1,
            "LOGIN_ADDRESS_LIMIT": 3,
        }
    )
    other.test_client_class = app.test_client_class
    return other


def test_the_client_address_is_the_one_the_trusted_proxy_saw(proxied_app):
    client = proxied_app.test_client()

    def attempt(forwarded_for):
        with proxied_app.app_context():
            token = client.csrf_token()
            return client.post(
                "/login",
                data={"email": "x@example.com", "password": WRONG, "csrf_token": token},
                headers={"X-Forwarded-For": forwarded_for},
            ).status_code

    # A client cannot dodge the address limit by writing its own X-Forwarded-For entries: only
    # the last one (added by the trusted router) counts.
    answers = [attempt(f"10.0.0.{i}, 203.0.113.7") for i in range(5)]
    assert answers == [422, 422, 422, 429, 429]
    assert attempt("203.0.113.8") == 422  # a different client behind the same router


def test_forty_concurrent_tries_get_at_most_limit_plus_one_password_checks(app, user):
    """The issue measured 10 password checks out of 40 concurrent tries against a limit of 5."""
    email = user.email
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/login"
    sessions = []
    for _ in range(40):
        http = requests.Session()
        token = CSRF_RE.search(http.get(url, timeout=10).text).group(1)
        sessions.append((http, token))
    barrier = threading.Barrier(40)
    answers: list[int] = []

    def attempt(http, token):
        barrier.wait()
        data = {"email": email, "password": WRONG, "csrf_token": token}
        answers.append(http.post(url, data=data, timeout=60, allow_redirects=False).status_code)

    threads = [threading.Thread(target=attempt, args=pair) for pair in sessions]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        server.shutdown()
    checked, refused = answers.count(422), answers.count(429)
    print(f"40 concurrent tries: {checked} password checks, {refused} refused (429)")
    assert checked + refused == 40
    assert checked <= app.config["LOGIN_FAILURE_LIMIT"] + 1
