"""Connect, reconnect and disconnect a workspace's HubSpot portal (no Flask request in here), and
build the HubSpot client of a connected one (:func:`for_workspace`, :func:`for_connection`).

The OAuth ``state`` is a random value stored in Redis for ten minutes, bound to the user, to a
nonce kept in that user's browser session and to the workspace; it is consumed (GETDEL) the first
time it comes back, whatever happens next, so it can never be replayed.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..extensions import db
from ..hubspot import oauth
from ..hubspot.client import HubSpotClient
from ..hubspot.errors import HubSpotError, NeedsReconnect
from ..hubspot.http import Transport
from ..models import (
    ConnectionStatus,
    HubSpotConnection,
    Membership,
    Role,
    Sequence,
    SyncTrigger,
    Workspace,
)
from . import tokens

log = logging.getLogger(__name__)

STATE_TTL = 600  # seconds an OAuth state stays valid
STATE_PREFIX = "autoseq:hubspot:oauth-state:"


class ConnectError(Exception):
    """The connection was not made; ``message`` says why, for the user. Nothing was stored."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OAuthState:
    """What a state stands for."""

    user_id: int
    workspace_id: int
    nonce: str
    replace: bool = False


@dataclass(frozen=True)
class ConnectOutcome:
    connection: HubSpotConnection
    kind: str  # connected | reconnected | replaced
    previous_portal_id: int | None = None


def get_connection(workspace_id: int) -> HubSpotConnection | None:
    """The workspace's connection row (any status), or None."""
    return db.session.scalar(db.select(HubSpotConnection).filter_by(workspace_id=workspace_id))


# -- the client of a connected portal ------------------------------------------------------------


def for_connection(
    connection: HubSpotConnection | None, shared_session: bool = False
) -> HubSpotClient:
    """A HubSpot client for ``connection``, handed a token store over its row;
    :class:`NeedsReconnect` when it is not connected. Needs an app context to be built, none
    after that (it may be used from other threads, unless ``shared_session``: see
    :class:`~autoseq.hubspot.client.HubSpotClient`)."""
    if connection is None:
        raise NeedsReconnect("HubSpot is not connected")
    if connection.status != ConnectionStatus.CONNECTED or not connection.refresh_token_enc:
        raise NeedsReconnect(
            f"HubSpot portal {connection.portal_id} is {connection.status.replace('_', ' ')}"
        )
    store = tokens.ConnectionTokenStore(connection)
    app = current_app._get_current_object()
    return HubSpotClient(
        store,
        portal_id=connection.portal_id,
        workspace_id=connection.workspace_id,
        config=app.config,
        redis=app.extensions["redis"],
        tokens=store.tokens_of(connection),
        shared_session=shared_session,
    )


def for_workspace(workspace_id: int, shared_session: bool = False) -> HubSpotClient:
    """A HubSpot client for the workspace's connection; :class:`NeedsReconnect` when there is
    none or it is not connected."""
    return for_connection(get_connection(workspace_id), shared_session)


# -- OAuth state ---------------------------------------------------------------------------------


def begin_connect(
    redis, config, *, user_id: int, workspace_id: int, session_nonce: str, replace: bool = False
) -> str:
    """Store a fresh single-use state and return the HubSpot consent URL to send the browser to."""
    if not oauth.is_configured(config):
        raise ConnectError(
            "not_configured", "No HubSpot app is configured (HUBSPOT_CLIENT_ID/SECRET)."
        )
    state = secrets.token_urlsafe(32)
    value = {
        "user_id": user_id,
        "workspace_id": workspace_id,
        "nonce": session_nonce,
        "replace": bool(replace),
    }
    redis.set(STATE_PREFIX + state, json.dumps(value), ex=STATE_TTL)
    return oauth.authorize_url(config, state)


def consume_state(redis, state: str | None) -> OAuthState | None:
    """Take a state out of Redis (single use). None when unknown, expired, used or malformed."""
    if not state or not isinstance(state, str) or len(state) > 200:
        return None
    raw = redis.getdel(STATE_PREFIX + state)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return OAuthState(
            user_id=int(data["user_id"]),
            workspace_id=int(data["workspace_id"]),
            nonce=str(data["nonce"]),
            replace=bool(data.get("replace")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def check_state(state: OAuthState, *, user_id: int, session_nonce: str | None) -> Workspace:
    """The state must come back to the same user, in the same browser session, still an admin."""
    if state.user_id != user_id or not session_nonce or state.nonce != session_nonce:
        raise ConnectError(
            "bad_state",
            "This HubSpot answer belongs to another session. Start again from Settings → HubSpot.",
        )
    membership = db.session.scalar(
        db.select(Membership).filter_by(user_id=user_id, workspace_id=state.workspace_id)
    )
    if membership is None or not membership.role_enum.at_least(Role.ADMIN):
        raise ConnectError("not_admin", "Only an admin of the workspace can connect HubSpot to it.")
    return membership.workspace


# -- connect -------------------------------------------------------------------------------------


def complete_connect(config, state: OAuthState, code: str) -> ConnectOutcome:
    """Exchange the code, read the token info, store the connection, request the first sync."""
    transport = Transport.from_config(config, rate_limited=False)
    try:
        try:
            issued = oauth.exchange_code(transport, config, code)
        except oauth.InvalidGrant:
            raise ConnectError(
                "refused",
                "HubSpot refused the authorization (the code expired or was already used). "
                "Click Connect HubSpot to try again.",
            ) from None
        info = oauth.token_info(transport, config, issued.access_token)
    except HubSpotError as exc:
        log.warning("HubSpot connect failed: %s", exc)
        raise ConnectError(
            "unavailable", f"HubSpot could not complete the connection: {exc.message}"
        ) from None
    finally:
        transport.close()

    other = db.session.scalar(
        db.select(HubSpotConnection).where(
            HubSpotConnection.portal_id == info.hub_id,
            HubSpotConnection.workspace_id != state.workspace_id,
        )
    )
    if other is not None:
        raise ConnectError(
            "portal_taken",
            f"HubSpot portal {info.hub_id} is already connected to another AutoSeq workspace. "
            "Disconnect it there, or pick another portal.",
        )

    connection = get_connection(state.workspace_id)
    previous = None
    if connection is None:
        kind = "connected"
        connection = HubSpotConnection(workspace_id=state.workspace_id, portal_id=info.hub_id)
        db.session.add(connection)
    elif connection.portal_id == info.hub_id:
        kind = "reconnected"
    elif not state.replace:
        raise ConnectError(
            "different_portal",
            f"This workspace is connected to HubSpot portal {connection.portal_id}, but you "
            f"picked portal {info.hub_id}. Nothing changed. To replace the portal, tick "
            "“Replace the connected portal” and reconnect.",
        )
    else:
        kind = "replaced"
        previous = connection.portal_id
        _revoke_quietly(config, connection)
        _retire_portal_data(state.workspace_id)
        connection.portal_id = info.hub_id

    now = datetime.now(UTC)
    connection.hub_domain = info.hub_domain
    connection.installed_by_email = info.user
    connection.installed_by_hubspot_user_id = info.user_id
    connection.connected_by_id = state.user_id
    connection.connected_at = now
    connection.scopes = list(info.scopes)
    connection.access_token_enc = tokens.encrypt(issued.access_token)
    connection.refresh_token_enc = tokens.encrypt(issued.refresh_token)
    connection.expires_at = issued.expires_at
    connection.token_lifetime = issued.expires_in
    connection.status = ConnectionStatus.CONNECTED.value
    connection.last_error = None
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ConnectError(
            "portal_taken",
            f"HubSpot portal {info.hub_id} was just connected to another AutoSeq workspace.",
        ) from None
    log.info("workspace %s %s HubSpot portal %s", state.workspace_id, kind, connection.portal_id)
    request_first_sync(
        state.workspace_id, SyncTrigger.RECONNECT if kind == "reconnected" else SyncTrigger.CONNECT
    )
    return ConnectOutcome(connection, kind, previous)


def _retire_portal_data(workspace_id: int) -> int:
    """The old portal's sequences leave the lists; their enrollments (history) stay."""
    result = db.session.execute(
        db.update(Sequence)
        .where(Sequence.workspace_id == workspace_id, Sequence.removed_at.is_(None))
        .values(removed_at=datetime.now(UTC))
    )
    return result.rowcount or 0


def request_first_sync(workspace_id: int, trigger: SyncTrigger) -> None:
    """Ask for the full sync that follows a connect or reconnect (never fails the connect).

    Only Redis or the database being unreachable is caught: the connection is stored, and a sync
    can be started by hand or by the daily schedule. Anything else is a bug and is raised.
    """
    from . import sync as sync_service

    try:
        sync_service.request_sync(workspace_id, trigger)
    except (RedisError, SQLAlchemyError, sync_service.SyncBusy):
        db.session.rollback()
        log.exception("could not request the first sync of workspace %s", workspace_id)


# -- disconnect ----------------------------------------------------------------------------------


def _revoke_quietly(config, connection: HubSpotConnection) -> str | None:
    """Revoke the connection's refresh token at HubSpot; a readable problem, or None."""
    try:
        refresh_token = tokens.decrypt(connection.refresh_token_enc)
    except tokens.TokenDecryptError:
        return "the stored token could not be decrypted, so it was not revoked at HubSpot"
    if not refresh_token:
        return None
    transport = Transport.from_config(config, rate_limited=False)
    try:
        oauth.revoke_refresh_token(transport, config, refresh_token)
    except HubSpotError as exc:
        log.warning("revoking the refresh token of portal %s failed: %s", connection.portal_id, exc)
        return f"HubSpot did not confirm the revocation ({exc.message})"
    finally:
        transport.close()
    return None


def disconnect(config, connection: HubSpotConnection) -> str | None:
    """Revoke at HubSpot, erase the tokens, mark disconnected, commit; keep the row and history.

    Returns a readable problem when HubSpot could not confirm the revocation (the tokens are
    erased anyway), else None.
    """
    problem = _revoke_quietly(config, connection)
    connection.access_token_enc = None
    connection.refresh_token_enc = None
    connection.expires_at = None
    connection.status = ConnectionStatus.DISCONNECTED.value
    connection.last_error = problem
    db.session.commit()
    log.info(
        "workspace %s disconnected HubSpot portal %s", connection.workspace_id, connection.portal_id
    )
    return problem


def rotate_token_keys() -> tokens.RotationReport:
    """Re-encrypt every stored token with the primary key (see :mod:`autoseq.services.tokens`)."""
    return tokens.rotate_all()
