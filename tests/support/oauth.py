"""The OAuth dance against the sandbox, and a workspace connected with what it gives.

- :func:`consent` answers the sandbox's consent page (what a person does in HubSpot);
- :func:`oauth_tokens` runs the whole dance without a browser or AutoSeq (consent, then the token
  endpoint): the token JSON;
- :func:`hubspot_oauth_dance` runs it through AutoSeq's own pages (Connect HubSpot, consent, the
  callback), as a logged-in browser would;
- :func:`connect_workspace` stores a connection row for tokens got with :func:`oauth_tokens`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import requests

from autoseq.hubspot.oauth import SCOPES as APP_SCOPES
from autoseq.hubspot.versions import OAUTH_API

SCOPES = " ".join(APP_SCOPES)  # every scope AutoSeq asks for, as the consent form takes them
REDIRECT = "http://localhost:5000/hubspot/oauth/callback"


def consent(url: str, client_id: str, **kwargs) -> dict:
    """POST the sandbox's consent form at ``url`` (keywords of :func:`consent_redirect`); the
    query of HubSpot's redirect back (``code`` and ``state``, or ``error``)."""
    location = consent_redirect(url, client_id, **kwargs)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def consent_redirect(
    url: str,
    client_id: str,
    *,
    portal_id: int | None = None,
    scope: str = SCOPES,
    redirect_uri: str = REDIRECT,
    state: str | None = None,
    decision: str = "approve",
    http: requests.Session | None = None,
) -> str:
    """POST the sandbox's consent form at ``url`` as a person approving (or denying) in HubSpot;
    where HubSpot sends the browser back (``redirect_uri`` with the code, or an error)."""
    form = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "decision": decision,
    }
    if state is not None:
        form["state"] = state
    if portal_id is not None:
        form["portal_id"] = str(portal_id)
    answer = (http or requests).post(
        url + "/oauth/authorize", data=form, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(redirect_uri), location
    return location


def token_dance(
    url: str,
    client_id: str,
    client_secret: str,
    portal_id: int | None = None,
    *,
    scope: str = SCOPES,
    redirect_uri: str = REDIRECT,
) -> dict:
    """Consent, then exchange the code at the dated token endpoint: the token JSON
    (``access_token``, ``refresh_token``, ``expires_in``...)."""
    http = requests.Session()
    code = consent(
        url, client_id, portal_id=portal_id, scope=scope, redirect_uri=redirect_uri, http=http
    )["code"]
    answer = http.post(
        f"{url}{OAUTH_API}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def oauth_tokens(server, portal_id: int | None = None, *, scope: str = SCOPES) -> dict:
    """The OAuth dance against a running sandbox (``server.url``, ``server.state.app``), without a
    browser: the token JSON for ``portal_id`` (the sandbox's first portal when None)."""
    app = server.state.app
    return token_dance(server.url, app.client_id, app.client_secret, portal_id, scope=scope)


def hubspot_oauth_dance(
    client,
    sandbox,
    workspace_id: int,
    portal_id: int | None = None,
    decision: str = "approve",
    replace: bool = False,
):
    """Click Connect HubSpot, answer the sandbox consent form, follow HubSpot back to the callback.

    Returns the callback's response (for the test client). ``client`` must be logged in.
    """
    data = {"replace": "1"} if replace else {}
    start = client.post_form(f"/w/{workspace_id}/settings/hubspot/connect", data)
    assert start.status_code == 302, start.get_data(as_text=True)
    authorize = start.headers["Location"]
    assert authorize.startswith(sandbox.url + "/oauth/authorize"), authorize
    page = requests.get(authorize, timeout=10)
    assert page.status_code == 200, page.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    location = consent_redirect(
        sandbox.url,
        params["client_id"],
        portal_id=portal_id,
        scope=params["scope"],
        redirect_uri=params["redirect_uri"],
        state=params["state"],
        decision=decision,
    )
    back = urlsplit(location)
    return client.get(f"{back.path}?{back.query}")


def connect_workspace(
    workspace_id: int, portal_id: int, body: dict, *, hub_domain: str | None = None, **fields
):
    """Store (and commit) ``workspace_id``'s connection to ``portal_id`` holding the tokens of
    ``body`` (an :func:`oauth_tokens` answer), encrypted under the app's keys; the row."""
    from autoseq.extensions import db
    from autoseq.models import HubSpotConnection
    from autoseq.services import tokens

    connection = HubSpotConnection(
        workspace_id=workspace_id,
        portal_id=portal_id,
        hub_domain=hub_domain,
        scopes=fields.pop("scopes", SCOPES.split()),
        access_token_enc=tokens.encrypt(body["access_token"]),
        refresh_token_enc=tokens.encrypt(body["refresh_token"]),
        expires_at=datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
        **fields,
    )
    db.session.add(connection)
    db.session.commit()
    return connection
