"""Fixtures for the sandbox's own tests: a running sandbox and OAuth helpers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hubspot_sandbox import SandboxServer, SandboxState
from tests.support.oauth import SCOPES, token_dance
from tests.support.sandbox import fast_runner

REDIRECT = "http://localhost:5000/hubspot/callback"
ALL_SCOPES = SCOPES  # every scope AutoSeq asks for


class Client:
    """A tiny HTTP helper bound to one sandbox."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.url
        self.state = server.state
        self.app = server.state.app
        self.http = requests.Session()

    def authorize(
        self,
        portal_id=None,
        scope=ALL_SCOPES,
        optional_scope="",
        state="xyz",
        decision="approve",
        redirect_uri=REDIRECT,
    ) -> dict:
        """POST the consent form; return the redirect's query parameters."""
        form = {
            "client_id": self.app.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "optional_scope": optional_scope,
            "state": state,
            "decision": decision,
        }
        if portal_id is not None:
            form["portal_id"] = str(portal_id)
        resp = self.http.post(f"{self.url}/oauth/authorize", data=form, allow_redirects=False)
        assert resp.status_code == 302, resp.text
        loc = resp.headers["Location"]
        assert loc.startswith(redirect_uri)
        return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}

    def exchange(self, code: str, redirect_uri=REDIRECT, secret=None) -> requests.Response:
        return self.http.post(
            f"{self.url}/oauth/2026-09/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.app.client_id,
                "client_secret": secret or self.app.client_secret,
            },
        )

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.http.post(
            f"{self.url}/oauth/2026-09/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret,
            },
        )

    def token(self, portal_id=None, scope=ALL_SCOPES) -> dict:
        """Run the whole OAuth dance (``tests/support/oauth.py``'s); return the token JSON."""
        return token_dance(
            self.url,
            self.app.client_id,
            self.app.client_secret,
            portal_id,
            scope=scope,
            redirect_uri=REDIRECT,
        )

    def api(self, method: str, path: str, token: str, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.url}{path}", headers=headers, **kw)

    def admin(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, f"{self.url}/_sandbox{path}", **kw)


@pytest.fixture
def demo():
    """A running sandbox seeded with the demo portal."""
    state = SandboxState()
    state.seed_demo()
    with SandboxServer(state, runner_settings=fast_runner(read_timeout=3)) as server:
        yield Client(server)


@pytest.fixture
def demo_token(demo):
    """An access token for the demo portal with every AutoSeq scope."""
    return demo.token()["access_token"]


@pytest.fixture
def portal(demo):
    return next(iter(demo.state.portals.values()))


@pytest.fixture(autouse=True)
def _clean_state():
    """Override the project-wide autouse fixture: sandbox tests need no database or Redis."""
    yield
