"""HubSpotClient against the sandbox: tokens, refresh, reconnect, retries, 429s, paging, errors."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from autoseq.extensions import db
from autoseq.hubspot import HubSpotClientError, HubSpotUnavailable, NeedsReconnect
from autoseq.hubspot.client import parse_json
from autoseq.models import HubSpotConnection
from autoseq.services import tokens
from autoseq.services.connections import for_workspace


def _connection(workspace_id) -> HubSpotConnection:
    db.session.expire_all()
    return db.session.scalar(db.select(HubSpotConnection).filter_by(workspace_id=workspace_id))


def _set_expiry(workspace_id, when: datetime) -> None:
    connection = _connection(workspace_id)
    connection.expires_at = when
    db.session.commit()


def _first_user_id(sandbox_admin, portal_id) -> int:
    return sandbox_admin.get(f"/portals/{portal_id}/users")["results"][0]["id"]


def test_paginate_follows_paging_across_pages(connected_workspace, sandbox_admin, portal_id):
    user_id = _first_user_id(sandbox_admin, portal_id)
    client = for_workspace(connected_workspace.id)
    items = list(client.paginate("/automation/sequences/2026-03", {"userId": user_id}, limit=3))
    expected = sandbox_admin.get(f"/portals/{portal_id}/sequences")["results"]
    visible = [s for s in expected if s["shared"] or s["userId"] == str(user_id)]
    assert [i["id"] for i in items] == [s["id"] for s in visible]
    stats = sandbox_admin.get(f"/portals/{portal_id}/stats")
    assert stats["by_path"]["GET /automation/sequences/2026-03"] == -(-len(visible) // 3)


def test_typed_helpers_list_users_owners_and_sequences(connected_workspace):
    client = for_workspace(connected_workspace.id)
    users = list(client.iter_users())
    owners = list(client.iter_owners())
    assert {u["email"] for u in users} >= {"alice.martin@demo-company.com"}
    assert all("userId" in o for o in owners)
    assert list(client.iter_sequences(users[0]["id"]))


def test_enroll_and_read_back_the_contacts_enrollment(
    connected_workspace, sandbox_admin, portal_id
):
    client = for_workspace(connected_workspace.id)
    user = sandbox_admin.get(f"/portals/{portal_id}/users")["results"][0]
    sequence = next(iter(client.iter_sequences(user["id"])))
    contact = sandbox_admin.get(f"/portals/{portal_id}/contacts?limit=1")["results"][0]
    assert client.get_contact_enrollment(contact["id"]) is None
    enrolled = client.enroll(user["id"], contact["id"], sequence["id"], user["email"])
    assert enrolled["id"]
    assert client.get_contact_enrollment(contact["id"])["sequenceId"] == sequence["id"]


def test_hubspot_refusals_become_typed_errors(connected_workspace, sandbox_admin, portal_id):
    client = for_workspace(connected_workspace.id)
    user_id = _first_user_id(sandbox_admin, portal_id)
    with pytest.raises(HubSpotClientError) as caught:
        client.enroll(user_id, "999999999", "1", "nobody@example.com")
    error = caught.value
    assert error.status in (400, 404)
    assert error.category
    assert error.correlation_id
    assert error.message


def test_access_token_is_refreshed_ahead_of_expiry(connected_workspace, sandbox):
    old = tokens.decrypt(_connection(connected_workspace.id).access_token_enc)
    _set_expiry(connected_workspace.id, datetime.now(UTC) + timedelta(seconds=60))
    client = for_workspace(connected_workspace.id)
    list(client.iter_owners())
    connection = _connection(connected_workspace.id)
    new = tokens.decrypt(connection.access_token_enc)
    assert new != old
    assert connection.expires_at > datetime.now(UTC) + timedelta(minutes=25)
    with sandbox.state.lock:
        assert not sandbox.state.access_tokens[old].revoked  # refreshed early: old one still good


def test_a_short_lived_token_is_refreshed_at_half_its_life_not_before_every_call(
    connected_workspace, sandbox, sandbox_admin, portal_id
):
    """The 300-second margin never exceeds half of ``expires_in`` (a 5-second token was refreshed
    114 times for 200 calls)."""
    sandbox_admin.patch(f"/portals/{portal_id}/settings", {"token_ttl": 5})
    _set_expiry(connected_workspace.id, datetime.now(UTC) - timedelta(seconds=1))
    client = for_workspace(connected_workspace.id)
    with sandbox.state.lock:
        issued_before = len(sandbox.state.access_tokens)
    calls, start = 0, time.monotonic()
    while time.monotonic() - start < 2.0:  # within half the first 5-second token's life
        list(client.iter_owners())
        calls += 1
        time.sleep(0.15)  # well inside the rate limit, which would otherwise hold a call back
    with sandbox.state.lock:
        refreshes = len(sandbox.state.access_tokens) - issued_before
    assert calls >= 5
    assert refreshes == 1
    assert _connection(connected_workspace.id).token_lifetime == 5


def test_expired_access_token_mid_run_is_refreshed_once_on_401(
    app, connected_workspace, sandbox, sandbox_admin, portal_id
):
    app.config["HUBSPOT_TOKEN_REFRESH_MARGIN"] = 0
    sandbox_admin.patch(f"/portals/{portal_id}/settings", {"token_ttl": 1})
    # Get a 1-second token, then pretend we believe it lasts an hour: only a 401 can tell us.
    _set_expiry(connected_workspace.id, datetime.now(UTC) - timedelta(seconds=1))
    for_workspace(connected_workspace.id).get("/crm/v3/owners", {"limit": 1})
    short = tokens.decrypt(_connection(connected_workspace.id).access_token_enc)
    _set_expiry(connected_workspace.id, datetime.now(UTC) + timedelta(hours=1))
    client = for_workspace(connected_workspace.id)
    user_id = _first_user_id(sandbox_admin, portal_id)
    pages = client.paginate("/automation/sequences/2026-03", {"userId": user_id}, limit=5)
    first = [next(pages) for _ in range(5)]
    time.sleep(1.3)
    rest = list(pages)
    every = sandbox_admin.get(f"/portals/{portal_id}/sequences")["results"]
    visible = [s["id"] for s in every if s["shared"] or s["userId"] == str(user_id)]
    assert [s["id"] for s in first + rest] == visible
    assert tokens.decrypt(_connection(connected_workspace.id).access_token_enc) != short


def test_concurrent_callers_refresh_the_token_once(app, connected_workspace, sandbox):
    _set_expiry(connected_workspace.id, datetime.now(UTC) - timedelta(seconds=1))
    with sandbox.state.lock:
        before = len(sandbox.state.access_tokens)
    errors = []
    # Six clients, each as a separate worker would hold one (built here: a client needs no app
    # context once built), all seeing the expired token, then calling at the same moment.
    clients = [for_workspace(connected_workspace.id) for _ in range(6)]
    db.session.commit()
    barrier = threading.Barrier(len(clients))

    def call(client):
        try:
            barrier.wait(timeout=30)
            client.get("/crm/v3/owners", {"limit": 1})
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with sandbox.state.lock:
        assert len(sandbox.state.access_tokens) == before + 1


def test_revoked_refresh_token_marks_needs_reconnect(connected_workspace, sandbox_admin, portal_id):
    sandbox_admin.patch(f"/portals/{portal_id}/faults", {"revoke": True})
    client = for_workspace(connected_workspace.id)
    with pytest.raises(NeedsReconnect):
        client.get("/crm/v3/owners")
    connection = _connection(connected_workspace.id)
    assert connection.status == "needs_reconnect"
    assert "refresh token" in connection.last_error
    with pytest.raises(NeedsReconnect):
        for_workspace(connected_workspace.id)


def test_needs_reconnect_banner_shows_on_every_page_and_links_to_settings(
    connected_workspace, sandbox_admin, portal_id, logged_in
):
    sandbox_admin.patch(f"/portals/{portal_id}/faults", {"revoke": True})
    with pytest.raises(NeedsReconnect):
        for_workspace(connected_workspace.id).get("/crm/v3/owners")
    settings = f"/w/{connected_workspace.id}/settings/hubspot/"
    for path in (f"/w/{connected_workspace.id}/settings", settings):
        page = logged_in.get(path).get_data(as_text=True)
        assert "banner banner-error" in page
        assert f'href="{settings}"' in page
    assert "Needs reconnect" in logged_in.get(settings).get_data(as_text=True)


def test_5xx_answers_are_retried_until_they_pass(
    app, connected_workspace, sandbox_admin, portal_id
):
    app.config["HUBSPOT_MAX_RETRIES"] = 12
    sandbox_admin.put(f"/portals/{portal_id}/faults", {"error_rate": 0.4})
    client = for_workspace(connected_workspace.id)
    for _ in range(15):
        assert client.get("/crm/v3/owners", {"limit": 1})["results"]
    stats = sandbox_admin.get(f"/portals/{portal_id}/stats")
    assert stats["by_status"].get("500", 0) > 0
    assert stats["by_status"]["200"] == 15


def test_persistent_5xx_gives_up_after_the_bounded_retries(
    connected_workspace, sandbox_admin, portal_id
):
    sandbox_admin.put(f"/portals/{portal_id}/faults", {"error_rate": 1.0})
    client = for_workspace(connected_workspace.id)
    with pytest.raises(HubSpotUnavailable) as caught:
        client.get("/crm/v3/owners")
    assert caught.value.status == 500
    assert sandbox_admin.get(f"/portals/{portal_id}/stats")["requests"] == 5  # 1 + 4 retries


def test_dropped_connections_are_retried(app, connected_workspace, sandbox_admin, portal_id):
    app.config["HUBSPOT_MAX_RETRIES"] = 12
    sandbox_admin.put(f"/portals/{portal_id}/faults", {"drop_rate": 0.4})
    client = for_workspace(connected_workspace.id)
    for _ in range(10):
        assert client.get("/crm/v3/owners", {"limit": 1})["results"]
    stats = sandbox_admin.get(f"/portals/{portal_id}/stats")
    assert stats["requests"] > 10


def test_always_dropped_connection_raises_unavailable(
    connected_workspace, sandbox_admin, portal_id
):
    sandbox_admin.put(f"/portals/{portal_id}/faults", {"drop_rate": 1.0})
    client = for_workspace(connected_workspace.id)
    with pytest.raises(HubSpotUnavailable) as caught:
        client.get("/crm/v3/owners")
    assert caught.value.status is None
    assert sandbox_admin.get(f"/portals/{portal_id}/stats")["requests"] == 5


def test_a_4xx_is_not_retried(connected_workspace, sandbox_admin, portal_id):
    client = for_workspace(connected_workspace.id)
    with pytest.raises(HubSpotClientError) as caught:
        client.get("/automation/sequences/2026-03")  # userId missing: 400
    assert caught.value.status == 400
    assert sandbox_admin.get(f"/portals/{portal_id}/stats")["requests"] == 1


def test_429_with_retry_after_is_waited_out_and_retried(
    connected_workspace, sandbox_admin, portal_id
):
    sandbox_admin.put(f"/portals/{portal_id}/faults", {"rate_limit_storm_seconds": 2})
    client = for_workspace(connected_workspace.id)
    started = time.monotonic()
    assert client.get("/crm/v3/owners", {"limit": 1})["results"]
    assert time.monotonic() - started >= 0.9
    stats = sandbox_admin.get(f"/portals/{portal_id}/stats")
    assert stats["rate_limited"] == 1
    assert stats["by_status"]["200"] == 1


def test_not_connected_workspace_raises_needs_reconnect(workspace):
    with pytest.raises(NeedsReconnect):
        for_workspace(workspace.id)


def test_tokens_never_reach_the_logs(connected_workspace, sandbox_admin, portal_id, caplog):
    caplog.set_level("DEBUG")
    sandbox_admin.put(f"/portals/{portal_id}/faults", {"error_rate": 1.0})
    _set_expiry(connected_workspace.id, datetime.now(UTC) - timedelta(seconds=1))
    client = for_workspace(connected_workspace.id)
    with pytest.raises(HubSpotUnavailable):
        client.get("/crm/v3/owners")
    connection = _connection(connected_workspace.id)
    secrets = [tokens.decrypt(connection.access_token_enc)]
    secrets.append(tokens.decrypt(connection.refresh_token_enc))
    assert "refreshed the HubSpot access token" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text


def test_tokens_stay_out_of_debug_logs_of_the_connect(
    logged_in, workspace, portal_id, oauth_dance, caplog
):
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="urllib3")  # whatever level an earlier test left on it
    oauth_dance(logged_in, workspace.id, portal_id)
    connection = _connection(workspace.id)
    # Introspection posts the token in a form body: the URL urllib3 logs carries none.
    assert "POST /oauth/2026-09/token/introspect" in caplog.text
    assert tokens.decrypt(connection.access_token_enc) not in caplog.text
    assert tokens.decrypt(connection.refresh_token_enc) not in caplog.text


def test_a_client_built_before_disconnect_cannot_bring_tokens_back(connected_workspace, logged_in):
    _set_expiry(connected_workspace.id, datetime.now(UTC) - timedelta(seconds=1))
    client = for_workspace(connected_workspace.id)
    logged_in.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    with pytest.raises(NeedsReconnect):
        client.get("/crm/v3/owners")
    connection = _connection(connected_workspace.id)
    assert connection.status == "disconnected"
    assert connection.access_token_enc is None and connection.refresh_token_enc is None


def test_a_built_client_refreshes_from_a_thread_without_app_context(connected_workspace):
    _set_expiry(connected_workspace.id, datetime.now(UTC) - timedelta(seconds=1))
    client = for_workspace(connected_workspace.id)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(client.get("/crm/v3/owners")))
    thread.start()
    thread.join()
    assert outcome and outcome[0]["results"]
    assert _connection(connected_workspace.id).expires_at > datetime.now(UTC)


def test_answers_are_parsed_by_orjson_and_what_it_refuses_by_the_standard_library():
    page = b'{"results": [{"id": "1", "name": "\\u00e9t\\u00e9"}], "paging": null}'
    assert parse_json(page) == {"results": [{"id": "1", "name": "été"}], "paging": None}
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b'{"score": NaN}')  # what the fallback is for
    assert math.isnan(parse_json(b'{"score": NaN}')["score"])
    with pytest.raises(ValueError):
        parse_json(b"<html>Bad gateway</html>")
