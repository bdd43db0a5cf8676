"""HubSpot OAuth 2.0 (hubspot-api.md §1, §8): authorize URL, code exchange, refresh, token info,
revoke.

Every call goes to HubSpot's date-versioned OAuth endpoints (:data:`~.versions.OAUTH_API`); the v1
endpoints are sunset on 2027-02-16. Shapes from HubSpot's ``hubspot-auth-oauth-openapi.json``
(version 2026-09, in ``api-evangelist/hubspot`` ``openapi/_original/``):

- ``POST {OAUTH_API}/token``, form ``grant_type`` (authorization_code | refresh_token),
  ``code``, ``redirect_uri``, ``refresh_token``, ``client_id``, ``client_secret``; answer
  ``AccessTokenResponse``: ``access_token``, ``refresh_token``, ``expires_in``, ``token_type``,
  ``token_use``, and ``hub_id``, ``user_id``, ``scopes``.
- ``POST {OAUTH_API}/token/introspect``, form ``client_id``, ``client_secret``, ``token``,
  ``token_type_hint``; answer ``PublicAccessTokenInfoResponse``: ``active``, ``hub_id``,
  ``hub_domain``, ``user``, ``user_id``, ``scopes[]``, ``app_id``, ``client_id``, ``expires_in``.
- ``POST {OAUTH_API}/token/revoke``, same form; the spec documents no success body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from .errors import HubSpotClientError, HubSpotError
from .http import Transport
from .versions import OAUTH_API

TOKEN_PATH = OAUTH_API + "/token"  # noqa: S105 (a path, not a secret)
INTROSPECT_PATH = OAUTH_API + "/token/introspect"
REVOKE_PATH = OAUTH_API + "/token/revoke"
CALLBACK_PATH = "/hubspot/oauth/callback"

SCOPES = (
    "automation",
    "automation.sequences.read",
    "automation.sequences.enrollments.write",
    "crm.objects.owners.read",
    "settings.users.read",
    "crm.objects.contacts.read",
    "oauth",
)
# Asked as optional scopes (``optional_scope``): a portal may install without them; a deal,
# company or ticket workflow's execution then fails with "reconnect to grant ..." (the scope of
# the record type's associations).
RECORD_SCOPES = {
    "DEAL": "crm.objects.deals.read",
    "COMPANY": "crm.objects.companies.read",
    "TICKET": "tickets",
}
OPTIONAL_SCOPES = tuple(RECORD_SCOPES.values())


class InvalidGrant(HubSpotClientError):
    """HubSpot refused a code or a refresh token (``error: invalid_grant``)."""


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint answered. ``repr`` hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    expires_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """Token info: the portal and who installed the app."""

    hub_id: int
    hub_domain: str | None
    user: str | None
    user_id: str | None
    scopes: list[str]
    app_id: str | None


def redirect_uri(config) -> str:
    """The one redirect URI registered with HubSpot: PUBLIC_BASE_URL + /hubspot/oauth/callback."""
    return config["PUBLIC_BASE_URL"].rstrip("/") + CALLBACK_PATH


def authorize_url(config, state: str) -> str:
    """The consent page URL the browser is sent to."""
    params = {
        "client_id": config["HUBSPOT_CLIENT_ID"] or "",
        "redirect_uri": redirect_uri(config),
        "scope": " ".join(SCOPES),
        "optional_scope": " ".join(OPTIONAL_SCOPES),
        "state": state,
    }
    return config["HUBSPOT_AUTHORIZE_URL"] + "?" + urlencode(params)


def is_configured(config) -> bool:
    """True when a HubSpot app (client id and secret) is configured."""
    return bool(config.get("HUBSPOT_CLIENT_ID") and config.get("HUBSPOT_CLIENT_SECRET"))


def _token_call(transport: Transport, form: dict) -> TokenSet:
    try:
        response = transport.request("POST", TOKEN_PATH, data=form)
    except HubSpotClientError as exc:
        if exc.error == "invalid_grant":
            raise InvalidGrant(
                exc.message, status=exc.status, error=exc.error, category=exc.category
            ) from None
        raise
    body = response.json()
    try:
        expires_in = int(body["expires_in"])
        return TokenSet(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token") or form.get("refresh_token"),
            expires_in=expires_in,
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )
    except (KeyError, TypeError, ValueError):
        raise HubSpotError("HubSpot's token answer is missing fields", status=200) from None


def exchange_code(transport: Transport, config, code: str) -> TokenSet:
    """Exchange an authorization code; :class:`InvalidGrant` when HubSpot refuses it."""
    return _token_call(
        transport,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri(config),
            "client_id": config["HUBSPOT_CLIENT_ID"],
            "client_secret": config["HUBSPOT_CLIENT_SECRET"],
        },
    )


def refresh(transport: Transport, config, refresh_token: str) -> TokenSet:
    """A fresh access token; :class:`InvalidGrant` when the refresh token is dead."""
    return _token_call(
        transport,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": config["HUBSPOT_CLIENT_ID"],
            "client_secret": config["HUBSPOT_CLIENT_SECRET"],
        },
    )


def _client_form(config, token: str, hint: str) -> dict:
    return {
        "client_id": config["HUBSPOT_CLIENT_ID"],
        "client_secret": config["HUBSPOT_CLIENT_SECRET"],
        "token": token,
        "token_type_hint": hint,
    }


def token_info(transport: Transport, config, access_token: str) -> TokenInfo:
    """Read the portal id, hub domain, installing user and scopes of an access token
    (introspection; the token travels in the form body, never in a URL)."""
    body = transport.request(
        "POST", INTROSPECT_PATH, data=_client_form(config, access_token, "access_token")
    ).json()
    if body.get("active") is False:
        raise HubSpotError("HubSpot says the new access token is not active", status=200)
    try:
        hub_id = int(body["hub_id"])
    except (KeyError, TypeError, ValueError):
        raise HubSpotError("HubSpot's token info has no portal id", status=200) from None
    user_id = body.get("user_id")
    app_id = body.get("app_id")
    return TokenInfo(
        hub_id=hub_id,
        hub_domain=body.get("hub_domain"),
        user=body.get("user"),
        user_id=None if user_id is None else str(user_id),
        scopes=[s for s in body.get("scopes") or [] if isinstance(s, str)],
        app_id=None if app_id is None else str(app_id),
    )


def revoke_refresh_token(transport: Transport, config, refresh_token: str) -> bool:
    """Revoke a refresh token at HubSpot. True when revoked, False when HubSpot did not know it."""
    try:
        transport.request(
            "POST", REVOKE_PATH, data=_client_form(config, refresh_token, "refresh_token")
        )
    except HubSpotClientError as exc:
        if exc.status in (400, 404):
            return False
        raise
    return True
