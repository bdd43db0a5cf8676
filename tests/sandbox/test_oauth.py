"""The OAuth dance against the sandbox, over real HTTP."""

from __future__ import annotations

import time

from .conftest import REDIRECT


def test_consent_page_renders_scopes_and_portals(demo, portal):
    resp = demo.http.get(
        f"{demo.url}/oauth/authorize",
        params={
            "client_id": demo.app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "automation oauth",
            "optional_scope": "crm.objects.contacts.read",
            "state": "s1",
        },
    )
    assert resp.status_code == 200
    assert "automation" in resp.text and "crm.objects.contacts.read" in resp.text
    assert str(portal.id) in resp.text
    assert 'value="approve"' in resp.text and 'value="deny"' in resp.text


def test_consent_page_rejects_unknown_client(demo):
    resp = demo.http.get(
        f"{demo.url}/oauth/authorize",
        params={"client_id": "nope", "redirect_uri": REDIRECT, "scope": "oauth"},
    )
    assert resp.status_code == 400
    assert "Unknown client_id" in resp.text


def test_approve_exchange_and_token_info(demo, portal):
    params = demo.authorize(
        portal.id, scope="automation oauth", optional_scope="settings.users.read", state="abc"
    )
    assert params["state"] == "abc"
    resp = demo.exchange(params["code"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["access_token"] and body["refresh_token"]
    info = demo.http.get(f"{demo.url}/oauth/v1/access-tokens/{body['access_token']}").json()
    assert info["hub_id"] == portal.id
    assert info["hub_domain"] == portal.domain
    assert info["app_id"] == demo.app.app_id
    assert info["user"].endswith("@demo-company.com")
    assert isinstance(info["user_id"], int)
    assert set(info["scopes"]) == {"automation", "oauth", "settings.users.read"}
    assert 0 < info["expires_in"] <= 1800


def test_deny_redirects_with_error(demo):
    params = demo.authorize(decision="deny", state="q")
    assert params["error"] == "access_denied"
    assert params["state"] == "q"
    assert "code" not in params


def test_code_is_single_use(demo):
    code = demo.authorize()["code"]
    assert demo.exchange(code).status_code == 200
    again = demo.exchange(code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_redirect_uri_must_match(demo):
    code = demo.authorize()["code"]
    resp = demo.exchange(code, redirect_uri="http://localhost:5000/other")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_wrong_secret_is_invalid_client(demo):
    code = demo.authorize()["code"]
    resp = demo.exchange(code, secret="wrong")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client"


def test_bad_grant_type(demo):
    resp = demo.http.post(f"{demo.url}/oauth/2026-09/token", data={"grant_type": "password"})
    assert resp.status_code == 400
    assert resp.json()["error"] in ("unsupported_grant_type", "invalid_request")


def test_expired_code(demo):
    demo.state.code_ttl = 0.0
    code = demo.authorize()["code"]
    time.sleep(0.01)
    assert demo.exchange(code).json()["error"] == "invalid_grant"


def test_refresh_gives_new_access_token_same_refresh(demo):
    tok = demo.token()
    resp = demo.refresh(tok["refresh_token"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["access_token"] != tok["access_token"]
    assert body["refresh_token"] == tok["refresh_token"]
    # the 2026-03 alias answers the same way
    resp2 = demo.http.post(
        f"{demo.url}/oauth/2026-03/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tok["refresh_token"],
            "client_id": demo.app.client_id,
            "client_secret": demo.app.client_secret,
        },
    )
    assert resp2.status_code == 200


def test_revoked_refresh_token_is_invalid_grant(demo):
    tok = demo.token()
    resp = demo.http.delete(f"{demo.url}/oauth/v1/refresh-tokens/{tok['refresh_token']}")
    assert resp.status_code == 204
    bad = demo.refresh(tok["refresh_token"])
    assert bad.status_code == 400
    body = bad.json()
    assert body["status"] == "BAD_REFRESH_TOKEN"
    assert body["error"] == "invalid_grant"
    assert body["message"] and body["error_description"]
    # its access tokens die with it
    api = demo.api("GET", "/crm/v3/owners", tok["access_token"])
    assert api.status_code == 401
    assert api.json()["category"] == "INVALID_AUTHENTICATION"


def test_unknown_refresh_token(demo):
    assert demo.refresh("nope").json()["error"] == "invalid_grant"


def test_expired_access_token(demo, portal):
    resp = demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"token_ttl": 1})
    assert resp.status_code == 200
    tok = demo.token()
    assert tok["expires_in"] == 1
    assert demo.api("GET", "/crm/v3/owners", tok["access_token"]).status_code == 200
    time.sleep(1.1)
    resp = demo.api("GET", "/crm/v3/owners", tok["access_token"])
    assert resp.status_code == 401
    assert resp.json()["category"] == "EXPIRED_AUTHENTICATION"
    fresh = demo.refresh(tok["refresh_token"]).json()["access_token"]
    assert demo.api("GET", "/crm/v3/owners", fresh).status_code == 200


def test_unknown_and_missing_token(demo):
    resp = demo.api("GET", "/crm/v3/owners", "garbage")
    assert resp.status_code == 401
    assert resp.json()["category"] == "INVALID_AUTHENTICATION"
    resp = demo.http.get(f"{demo.url}/crm/v3/owners")
    assert resp.status_code == 401


def test_missing_scope_is_403(demo):
    tok = demo.token(scope="oauth automation")["access_token"]
    resp = demo.api("GET", "/crm/v3/owners", tok)
    assert resp.status_code == 403
    body = resp.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["status"] == "error"
    assert "crm.objects.owners.read" in body["message"]


def test_uninstall_revokes_all_portal_tokens(demo):
    a = demo.token()
    b = demo.token()
    resp = demo.api("DELETE", "/appinstalls/v3/external-install", a["access_token"])
    assert resp.status_code == 204
    for tok in (a, b):
        assert demo.api("GET", "/crm/v3/owners", tok["access_token"]).status_code == 401
        assert demo.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"


def test_2026_introspect_and_revoke(demo, portal):
    tok = demo.token()
    creds = {"client_id": demo.app.client_id, "client_secret": demo.app.client_secret}
    info = demo.http.post(
        f"{demo.url}/oauth/2026-03/token/introspect", data={**creds, "token": tok["access_token"]}
    ).json()
    assert info["active"] is True and info["hub_id"] == portal.id
    resp = demo.http.post(
        f"{demo.url}/oauth/2026-03/token/revoke", data={**creds, "token": tok["refresh_token"]}
    )
    assert resp.status_code == 200
    info = demo.http.post(
        f"{demo.url}/oauth/2026-03/token/introspect", data={**creds, "token": tok["access_token"]}
    ).json()
    assert info == {"active": False}
    assert demo.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"


def test_2026_09_introspection_answers_hubspots_token_info_shape(demo, portal):
    """PublicAccessTokenInfoResponse / PublicRefreshTokenInfoResponse of HubSpot's
    hubspot-auth-oauth-openapi.json (2026-09): scopes a list, the portal's domain, the user."""
    tok = demo.token()
    creds = {"client_id": demo.app.client_id, "client_secret": demo.app.client_secret}
    url = f"{demo.url}/oauth/2026-09/token/introspect"
    access = demo.http.post(
        url, data={**creds, "token": tok["access_token"], "token_type_hint": "access_token"}
    ).json()
    assert access["active"] is True and access["token_use"] == "access_token"
    assert (access["hub_id"], access["hub_domain"]) == (portal.id, portal.domain)
    assert access["app_id"] == demo.app.app_id and access["client_id"] == demo.app.client_id
    assert "automation" in access["scopes"] and "@" in access["user"]
    assert 0 < access["expires_in"] <= 1800
    refresh = demo.http.post(url, data={**creds, "token": tok["refresh_token"]}).json()
    assert refresh["token_use"] == "refresh_token" and "expires_in" not in refresh
