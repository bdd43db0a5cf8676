"""Fixtures for the sync tests: a sandbox portal over HTTP, a workspace connected to it, helpers.

``sandbox`` and ``connected_workspace`` stand in until the shared ones land in tests/conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from autoseq.extensions import db
from autoseq.hubspot import tokens
from autoseq.models import HubSpotConnection
from hubspot_sandbox import SandboxServer, SandboxState

REDIRECT = "http://localhost:5000/hubspot/oauth/callback"
SCOPES = (
    "automation automation.sequences.read automation.sequences.enrollments.write "
    "crm.objects.owners.read settings.users.read crm.objects.contacts.read oauth"
)


class Admin:
    """The sandbox's admin API over HTTP, for one portal."""

    def __init__(self, server: SandboxServer, portal_id: int):
        self.url = server.url
        self.portal_id = portal_id
        self.http = requests.Session()

    def _call(self, method: str, path: str, **kwargs):
        response = self.http.request(
            method, f"{self.url}/_sandbox/portals/{self.portal_id}{path}", **kwargs
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def add_user(self, email: str, **fields) -> dict:
        return self._call("POST", "/users", json={"email": email, **fields})

    def patch_user(self, user_id, **fields) -> dict:
        return self._call("PATCH", f"/users/{user_id}", json=fields)

    def add_sequence(self, name: str, user_id, shared: bool = True, **fields) -> dict:
        return self._call(
            "POST",
            "/sequences",
            json={"name": name, "userId": int(user_id), "shared": shared, **fields},
        )

    def patch_sequence(self, sequence_id, **fields) -> dict:
        return self._call("PATCH", f"/sequences/{sequence_id}", json=fields)

    def delete_sequence(self, sequence_id) -> None:
        self._call("DELETE", f"/sequences/{sequence_id}")

    def settings(self, **fields) -> dict:
        return self._call("PATCH", "/settings", json=fields)

    def faults(self, **fields) -> dict:
        return self._call("PATCH", "/faults", json=fields)

    def users(self) -> list[dict]:
        return self._call("GET", "")["users"]


@pytest.fixture
def sandbox(app):
    """A started sandbox with one empty portal; the app's HubSpot settings point at it."""
    state = SandboxState(rate_limit=None)
    server = SandboxServer(state).start()
    saved = {k: app.config.get(k) for k in _KEYS}
    app.config.update(
        HUBSPOT_API_BASE=server.url,
        HUBSPOT_AUTHORIZE_URL=server.url + "/oauth/authorize",
        HUBSPOT_CLIENT_ID=state.app.client_id,
        HUBSPOT_CLIENT_SECRET=state.app.client_secret,
        HUBSPOT_APP_ID=str(state.app.app_id),
        HUBSPOT_RATE_LIMIT=(100_000, 10.0),
        HUBSPOT_RETRY_BACKOFF=0.01,
    )
    try:
        yield server
    finally:
        app.config.update(saved)
        server.stop()


_KEYS = (
    "HUBSPOT_API_BASE",
    "HUBSPOT_AUTHORIZE_URL",
    "HUBSPOT_CLIENT_ID",
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_APP_ID",
    "HUBSPOT_RATE_LIMIT",
    "HUBSPOT_RETRY_BACKOFF",
)


@pytest.fixture
def portal_id(sandbox) -> int:
    portal = sandbox.state.add_portal()
    sandbox.state.add_user(portal, "admin@acme.test", "Ada", "Admin", super_admin=True)
    return portal.id


@pytest.fixture
def sandbox_admin(sandbox, portal_id) -> Admin:
    return Admin(sandbox, portal_id)


def oauth_tokens(server: SandboxServer, portal_id: int) -> dict:
    """The OAuth dance against the sandbox, without a browser."""
    app = server.state.app
    http = requests.Session()
    resp = http.post(
        f"{server.url}/oauth/authorize",
        data={
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "scope": SCOPES,
            "portal_id": str(portal_id),
            "decision": "approve",
        },
        allow_redirects=False,
    )
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    resp = http.post(
        f"{server.url}/oauth/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def connected_workspace(sandbox, portal_id, workspace):
    """``workspace`` with a HubSpotConnection to the sandbox portal (real tokens, encrypted)."""
    body = oauth_tokens(sandbox, portal_id)
    db.session.add(
        HubSpotConnection(
            workspace_id=workspace.id,
            portal_id=portal_id,
            hub_domain=sandbox.state.portals[portal_id].domain,
            scopes=SCOPES.split(),
            access_token_enc=tokens.encrypt(body["access_token"]),
            refresh_token_enc=tokens.encrypt(body["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
        )
    )
    db.session.commit()
    return workspace
