"""Rate limits and fault injection on the HubSpot-facing API."""

from __future__ import annotations

import time

import pytest
import requests


def test_110_per_window_then_429(demo, demo_token, portal):
    last = None
    for i in range(110):
        last = demo.api("GET", "/crm/v3/owners", demo_token)
        assert last.status_code == 200, i
    assert last.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert last.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert last.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    resp = demo.api("GET", "/crm/v3/owners", demo_token)
    assert resp.status_code == 429
    body = resp.json()
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 10
    assert resp.headers["X-HubSpot-RateLimit-Max"] == "110"
    stats = demo.admin("GET", f"/portals/{portal.id}/stats").json()
    assert stats["requests"] == 111 and stats["rate_limited"] == 1
    assert stats["by_path"]["GET /crm/v3/owners"] == 111


def test_window_rolls(demo, demo_token, portal):
    demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"rate_limit": "3/1s"})
    for _ in range(3):
        assert demo.api("GET", "/crm/v3/owners", demo_token).status_code == 200
    resp = demo.api("GET", "/crm/v3/owners", demo_token)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert demo.api("GET", "/crm/v3/owners", demo_token).status_code == 200


def test_rate_limit_off_and_token_endpoint_not_counted(demo, portal):
    demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"rate_limit": "2/10s"})
    tokens = [demo.token()["access_token"] for _ in range(4)]  # OAuth calls are free
    assert demo.api("GET", "/crm/v3/owners", tokens[0]).status_code == 200
    demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"rate_limit": None})
    for _ in range(5):
        resp = demo.api("GET", "/crm/v3/owners", tokens[1])
        assert resp.status_code == 200
    assert "X-HubSpot-RateLimit-Max" not in resp.headers


def test_error_rate_fault(demo, demo_token, portal):
    r = demo.admin("PUT", f"/portals/{portal.id}/faults", json={"error_rate": 1})
    assert r.status_code == 200
    resp = demo.api("GET", "/crm/v3/owners", demo_token)
    assert resp.status_code >= 500
    assert resp.json()["status"] == "error"
    # the admin API is not affected
    assert demo.admin("GET", f"/portals/{portal.id}").status_code == 200
    demo.admin("PUT", f"/portals/{portal.id}/faults", json={})
    assert demo.api("GET", "/crm/v3/owners", demo_token).status_code == 200


def test_drop_fault_gives_connection_error(demo, demo_token, portal):
    demo.admin("PUT", f"/portals/{portal.id}/faults", json={"drop_rate": 1})
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{demo.url}/crm/v3/owners",
            headers={"Authorization": f"Bearer {demo_token}"},
            timeout=5,
        )


def test_storm_fault(demo, demo_token, portal):
    demo.admin("PUT", f"/portals/{portal.id}/faults", json={"rate_limit_storm_seconds": 2})
    resp = demo.api("GET", "/crm/v3/owners", demo_token)
    assert resp.status_code == 429
    assert resp.json()["errorType"] == "RATE_LIMIT"
    assert int(resp.headers["Retry-After"]) in (1, 2)


def test_latency_fault(demo, demo_token, portal):
    demo.admin("PUT", f"/portals/{portal.id}/faults", json={"latency_ms": 200})
    started = time.monotonic()
    assert demo.api("GET", "/crm/v3/owners", demo_token).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_revoke_fault_kills_tokens(demo, portal):
    tok = demo.token()
    resp = demo.admin("PUT", f"/portals/{portal.id}/faults", json={"revoke": True})
    assert resp.json()["revoked_tokens"] >= 2
    assert demo.api("GET", "/crm/v3/owners", tok["access_token"]).status_code == 401
    assert demo.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"


def test_faults_validation(demo, portal):
    for bad in (
        {"error_rate": 2},
        {"drop_rate": "x"},
        {"latency_ms": -1},
        {"nope": 1},
        {"rate_limit_storm_seconds": -3},
        {"revoke": "yes"},
    ):
        resp = demo.admin("PUT", f"/portals/{portal.id}/faults", json=bad)
        assert resp.status_code == 400, bad
        assert resp.json()["message"]
