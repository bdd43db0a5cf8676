"""The client takes a token store, not a row: any store will do, and it needs no app context.

``MemoryStore`` is a second, plain implementation of :class:`~autoseq.hubspot.store.TokenStore`
(what a script or another app would hand the client); the product's own is
:class:`~autoseq.services.tokens.ConnectionTokenStore`, over the connection row.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import has_app_context

from autoseq.extensions import db
from autoseq.hubspot import NeedsReconnect
from autoseq.hubspot.client import HubSpotClient
from autoseq.hubspot.store import StoredTokens
from autoseq.models import HubSpotConnection
from autoseq.services import tokens
from autoseq.services.connections import get_connection


class MemoryStore:
    """Tokens in a dict, with the same compare-and-set as the row."""

    def __init__(self, stored: StoredTokens):
        self.stored: StoredTokens | None = replace(stored, version=1)
        self.reason: str | None = None
        self.saves = 0

    def load(self) -> StoredTokens:
        if self.stored is None:
            raise NeedsReconnect("gone")
        return self.stored

    def save_if_unchanged(self, old: StoredTokens, new: StoredTokens) -> bool:
        if self.stored is None or self.stored.version != old.version:
            return False
        self.stored = replace(new, version=old.version + 1)
        self.saves += 1
        return True

    def mark_needs_reconnect(self, old: StoredTokens, reason: str) -> None:
        if self.stored is not None and self.stored.version == old.version:
            self.stored, self.reason = None, reason


def _stored_tokens(workspace_id: int, expires_in: float) -> StoredTokens:
    connection = get_connection(workspace_id)
    return StoredTokens(
        access_token=tokens.decrypt(connection.access_token_enc),
        refresh_token=tokens.decrypt(connection.refresh_token_enc),
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
    )


def _in_a_thread(fn):
    """Run ``fn`` in a new thread (no app context there); its result or its exception."""
    out: dict = {}

    def run():
        out["app_context"] = has_app_context()
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 (handed back to the test)
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert out["app_context"] is False
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_client_over_any_store_refreshes_without_an_app_context(
    app, connected_workspace, sandbox, redis
):
    store = MemoryStore(_stored_tokens(connected_workspace.id, expires_in=-1))
    old = store.stored
    config = dict(app.config)
    portal = get_connection(connected_workspace.id).portal_id
    with sandbox.state.lock:
        issued_before = len(sandbox.state.access_tokens)

    def call():
        with HubSpotClient(store, portal_id=portal, config=config, redis=redis) as client:
            return [list(client.iter_owners()) for _ in range(3)]

    answers = _in_a_thread(call)
    assert all(answers) and len(answers) == 3
    assert store.saves == 1  # one refresh, then the fresh token is reused
    assert store.stored.access_token != old.access_token
    assert store.stored.expires_at > datetime.now(UTC) + timedelta(minutes=25)
    with sandbox.state.lock:
        assert len(sandbox.state.access_tokens) == issued_before + 1


def test_a_refused_refresh_token_is_reported_to_the_store(
    app, connected_workspace, sandbox_admin, portal_id, redis
):
    store = MemoryStore(_stored_tokens(connected_workspace.id, expires_in=-1))
    sandbox_admin.patch(f"/portals/{portal_id}/faults", {"revoke": True})
    client = HubSpotClient(store, portal_id=portal_id, config=dict(app.config), redis=redis)
    with pytest.raises(NeedsReconnect):
        _in_a_thread(lambda: client.get("/crm/v3/owners"))
    assert store.stored is None
    assert "refresh token" in store.reason
    # The row is the service's business: a memory store leaves it as it was.
    assert get_connection(connected_workspace.id).status == "connected"


def test_the_row_store_writes_only_over_the_tokens_it_read(connected_workspace):
    connection = get_connection(connected_workspace.id)
    store = tokens.ConnectionTokenStore(connection)
    read = store.load()
    fresh = StoredTokens("new-access", "new-refresh", datetime.now(UTC) + timedelta(hours=1), 3600)
    # Reconnected meanwhile: a new refresh token is stored, so what we learnt is stale.
    connection.refresh_token_enc = tokens.encrypt("reconnected-refresh")
    db.session.commit()
    assert store.save_if_unchanged(read, fresh) is False
    store.mark_needs_reconnect(read, "stale")
    db.session.expire_all()
    row = db.session.get(HubSpotConnection, connection.id)
    assert tokens.decrypt(row.refresh_token_enc) == "reconnected-refresh"
    assert row.status == "connected" and row.last_error is None
    # Over the tokens as they are now, it writes (in its own transaction, committed).
    now = store.load()
    assert store.save_if_unchanged(now, fresh) is True
    db.session.expire_all()
    row = db.session.get(HubSpotConnection, connection.id)
    assert tokens.decrypt(row.access_token_enc) == "new-access"
    assert tokens.decrypt(row.refresh_token_enc) == "new-refresh"
    assert row.token_lifetime == 3600
    assert store.load().version == row.refresh_token_enc


def test_the_row_store_says_needs_reconnect_once_disconnected(connected_workspace):
    connection = get_connection(connected_workspace.id)
    store = tokens.ConnectionTokenStore(connection)
    connection.status = "disconnected"
    db.session.commit()
    with pytest.raises(NeedsReconnect, match="disconnected"):
        store.load()
