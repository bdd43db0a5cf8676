"""OAuth 2.0 (hubspot-api.md sections 1 and 8): consent page, token endpoint, token info, revoke.

Served on the legacy v1 paths and on the dated ones (``/oauth/2026-03/...`` and
``/oauth/2026-09/...``, the version of HubSpot's ``hubspot-auth-oauth-openapi.json``), whose forms
are checked against :mod:`hubspot_sandbox.schemas` and whose introspection answers HubSpot's
``PublicAccessTokenInfoResponse`` / ``PublicRefreshTokenInfoResponse``.

Tests without a browser can skip the consent page by POSTing the form directly:
``POST /oauth/authorize`` with ``client_id, redirect_uri, scope, optional_scope, state,
portal_id, decision=approve|deny`` answers 302 to the redirect URI.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, jsonify, redirect, render_template, request

from . import schemas
from .api import authenticate, sandbox
from .errors import ApiError
from .state import AccessToken, AuthCode, RefreshToken

bp = Blueprint("oauth", __name__)


def oauth_error(error: str, description: str, status_name: str, status: int = 400):
    """RFC 6749 error with HubSpot's legacy ``status``/``message`` fields."""
    body = {
        "status": status_name,
        "message": description,
        "error": error,
        "error_description": description,
    }
    return jsonify(body), status


def _scopes(text: str | None) -> list[str]:
    return [s for s in (text or "").replace(",", " ").split() if s]


def _with_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def client_refusal(state, form):
    """The ``invalid_client`` answer when the form's client id or secret is wrong, else None."""
    if form.get("client_id") != state.app.client_id:
        return oauth_error("invalid_client", "missing or unknown client_id", "BAD_CLIENT_ID")
    if form.get("client_secret") != state.app.client_secret:
        return oauth_error("invalid_client", "client_secret is wrong", "BAD_CLIENT_SECRET")
    return None


@bp.route("/oauth/authorize", methods=["GET"])
def authorize_page():
    """Render the consent page (portal picker, requested scopes, Approve / Deny)."""
    state = sandbox().state
    args = request.args
    client_id = args.get("client_id", "")
    redirect_uri = args.get("redirect_uri", "")
    problems = []
    if client_id != state.app.client_id:
        problems.append("Unknown client_id.")
    if not redirect_uri.startswith(("http://", "https://")):
        problems.append("redirect_uri is missing or not an http(s) URL.")
    if not _scopes(args.get("scope")):
        problems.append("scope is required.")
    with state.lock:
        portals = [(p.id, p.domain) for p in state.portals.values()]
    status = 400 if problems else 200
    return (
        render_template(
            "consent.html",
            problems=problems,
            args=args,
            scopes=_scopes(args.get("scope")),
            optional_scopes=_scopes(args.get("optional_scope")),
            portals=portals,
            app_id=state.app.app_id,
        ),
        status,
    )


@bp.route("/oauth/authorize", methods=["POST"])
def authorize_submit():
    """Approve or deny: 302 to ``redirect_uri`` with ``code`` or ``error``."""
    state = sandbox().state
    form = request.form
    client_id = form.get("client_id", "")
    redirect_uri = form.get("redirect_uri", "")
    if client_id != state.app.client_id:
        return oauth_error("invalid_client", "Unknown client_id", "BAD_CLIENT_ID")
    if not redirect_uri.startswith(("http://", "https://")):
        return oauth_error("invalid_request", "redirect_uri is required", "BAD_REDIRECT_URI")
    oauth_state = form.get("state")
    extra = {"state": oauth_state} if oauth_state is not None else {}
    if form.get("decision", "approve") != "approve":
        params = {"error": "access_denied", "error_description": "The user denied access"}
        return redirect(_with_query(redirect_uri, {**params, **extra}), code=302)
    scopes = _scopes(form.get("scope"))
    if not scopes:
        return oauth_error("invalid_scope", "scope is required", "BAD_SCOPES")
    granted = list(dict.fromkeys(scopes + _scopes(form.get("optional_scope"))))
    with state.lock:
        try:
            portal = state.portals[int(form.get("portal_id") or next(iter(state.portals)))]
        except (ValueError, KeyError, StopIteration):
            return oauth_error("invalid_request", "Unknown portal_id", "BAD_PORTAL")
        users = [u for u in portal.users.values() if u.active]
        users.sort(key=lambda u: (not u.super_admin, u.id))
        user_id = users[0].id if users else 0
        code = secrets.token_urlsafe(24)
        state.codes[code] = AuthCode(
            code=code,
            portal_id=portal.id,
            user_id=user_id,
            scopes=granted,
            redirect_uri=redirect_uri,
            expires_at=time.time() + state.code_ttl,
        )
    return redirect(_with_query(redirect_uri, {"code": code, **extra}), code=302)


def _issue_access(state, refresh: RefreshToken) -> AccessToken:
    portal = state.portals[refresh.portal_id]
    ttl = state.effective_ttl(portal)
    token = AccessToken(
        token=f"sbx-at-{secrets.token_urlsafe(24)}",
        portal_id=refresh.portal_id,
        user_id=refresh.user_id,
        scopes=list(refresh.scopes),
        expires_at=time.time() + ttl,
        refresh_token=refresh.token,
    )
    state.access_tokens[token.token] = token
    return token


def _token_body(access: AccessToken, ttl: float) -> dict:
    return {
        "token_type": "bearer",
        "access_token": access.token,
        "refresh_token": access.refresh_token,
        "expires_in": int(ttl),
    }


@bp.route("/oauth/v1/token", methods=["POST"])
@bp.route("/oauth/2026-03/token", methods=["POST"])
@bp.route("/oauth/2026-09/token", methods=["POST"])
def token():
    """Exchange an authorization code or a refresh token for an access token."""
    state = sandbox().state
    form = request.form
    grant = form.get("grant_type")
    if grant not in ("authorization_code", "refresh_token"):
        return oauth_error(
            "unsupported_grant_type" if grant else "invalid_request",
            "grant_type must be authorization_code or refresh_token",
            "BAD_GRANT_TYPE",
        )
    refused = client_refusal(state, form)
    if refused is not None:
        return refused
    schemas.check("oauth_token_form", form.to_dict())
    with state.lock:
        if grant == "authorization_code":
            code_text = form.get("code")
            if not code_text:
                return oauth_error("invalid_request", "code is required", "BAD_AUTH_CODE")
            code = state.codes.get(code_text)
            if code is None or code.used or time.time() > code.expires_at:
                return oauth_error("invalid_grant", "missing or unknown auth code", "BAD_AUTH_CODE")
            if form.get("redirect_uri") != code.redirect_uri:
                return oauth_error(
                    "invalid_grant",
                    "redirect_uri does not match the one used to authorize",
                    "BAD_REDIRECT_URI",
                )
            if code.portal_id not in state.portals:
                return oauth_error("invalid_grant", "portal no longer exists", "BAD_AUTH_CODE")
            code.used = True
            refresh = RefreshToken(
                token=f"sbx-rt-{secrets.token_urlsafe(24)}",
                portal_id=code.portal_id,
                user_id=code.user_id,
                scopes=list(code.scopes),
            )
            state.refresh_tokens[refresh.token] = refresh
        else:
            refresh = state.refresh_tokens.get(form.get("refresh_token") or "")
            if refresh is None or refresh.revoked or refresh.portal_id not in state.portals:
                return oauth_error(
                    "invalid_grant", "missing or unknown refresh token", "BAD_REFRESH_TOKEN"
                )
        access = _issue_access(state, refresh)
        ttl = state.effective_ttl(state.portals[refresh.portal_id])
        return jsonify(_token_body(access, ttl))


@bp.route("/oauth/v1/access-tokens/<token_text>", methods=["GET"])
def access_token_info(token_text: str):
    """Token info: portal (``hub_id``), user, scopes, remaining lifetime."""
    state = sandbox().state
    with state.lock:
        rec = state.access_tokens.get(token_text)
        if rec is None or rec.revoked or rec.portal_id not in state.portals:
            raise ApiError(404, "Token not found", "OBJECT_NOT_FOUND")
        remaining = rec.expires_at - time.time()
        if remaining <= 0:
            raise ApiError(401, "The OAuth token expired.", "EXPIRED_AUTHENTICATION")
        portal = state.portals[rec.portal_id]
        user = portal.users.get(rec.user_id)
        return jsonify(
            {
                "token": rec.token,
                "user": user.email if user else None,
                "hub_domain": portal.domain,
                "scopes": list(rec.scopes),
                "hub_id": portal.id,
                "app_id": state.app.app_id,
                "expires_in": int(remaining),
                "user_id": rec.user_id,
                "token_type": "access",
            }
        )


@bp.route("/oauth/v1/refresh-tokens/<token_text>", methods=["DELETE"])
def revoke_refresh(token_text: str):
    """Revoke a refresh token and the access tokens minted from it (204)."""
    state = sandbox().state
    with state.lock:
        rec = state.refresh_tokens.get(token_text)
        if rec is None:
            raise ApiError(404, "Refresh token not found", "OBJECT_NOT_FOUND")
        rec.revoked = True
        for access in state.access_tokens.values():
            if access.refresh_token == token_text:
                access.revoked = True
    return "", 204


@bp.route("/appinstalls/v3/external-install", methods=["DELETE"])
def uninstall():
    """Uninstall the app from the token's portal: every token of that portal dies (204)."""
    rec = authenticate()
    sandbox().state.revoke_portal(rec.portal_id)
    return "", 204


@bp.route("/oauth/2026-03/token/introspect", methods=["POST"])
@bp.route("/oauth/2026-09/token/introspect", methods=["POST"])
def introspect():
    """Introspect an access or refresh token (client-authenticated form).

    Active tokens answer HubSpot's ``PublicAccessTokenInfoResponse`` (``active``, ``hub_id``,
    ``hub_domain``, ``user``, ``user_id``, ``scopes``, ``app_id``, ``client_id``, ``expires_in``,
    ``token``, ``token_type``, ``token_use``) or ``PublicRefreshTokenInfoResponse`` (no
    ``expires_in``); anything else ``{"active": false}``.
    """
    state = sandbox().state
    form = request.form
    refused = client_refusal(state, form)
    if refused is not None:
        return refused
    schemas.check("oauth_token_hint_form", form.to_dict())
    text = form.get("token") or ""
    with state.lock:
        access = state.access_tokens.get(text)
        refresh = state.refresh_tokens.get(text)
        rec = access or refresh
        active = rec is not None and not rec.revoked and rec.portal_id in state.portals
        if access is not None and time.time() >= access.expires_at:
            active = False
        if not active:
            return jsonify({"active": False})
        portal = state.portals[rec.portal_id]
        user = portal.users.get(rec.user_id)
        body = {
            "active": True,
            "token": text,
            "token_type": "bearer",
            "token_use": "access_token" if access else "refresh_token",
            "client_id": state.app.client_id,
            "app_id": state.app.app_id,
            "hub_id": portal.id,
            "hub_domain": portal.domain,
            "user_id": rec.user_id,
            "user": user.email if user else None,
            "scopes": list(rec.scopes),
        }
        if access is not None:
            body["expires_in"] = int(access.expires_at - time.time())
            body["is_private_distribution"] = False
        return jsonify(body)


@bp.route("/oauth/2026-03/token/revoke", methods=["POST"])
@bp.route("/oauth/2026-09/token/revoke", methods=["POST"])
def revoke_2026():
    """Revoke a refresh token (and its access tokens) or one access token (200)."""
    state = sandbox().state
    form = request.form
    refused = client_refusal(state, form)
    if refused is not None:
        return refused
    schemas.check("oauth_token_hint_form", form.to_dict())
    text = form.get("token") or ""
    with state.lock:
        refresh = state.refresh_tokens.get(text)
        if refresh is not None:
            refresh.revoked = True
            for access in state.access_tokens.values():
                if access.refresh_token == text:
                    access.revoked = True
        elif text in state.access_tokens:
            state.access_tokens[text].revoked = True
    return "", 200
