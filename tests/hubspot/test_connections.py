"""Disconnect, reconnect (same portal, different portal) and tokens at rest."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from autoseq.extensions import db
from autoseq.hubspot import NeedsReconnect
from autoseq.hubspot.tokens import TokenDecryptError
from autoseq.models import Enrollment, HubSpotConnection, Sequence, SyncRun
from autoseq.services import tokens
from autoseq.services.connections import for_workspace


def _connection(workspace_id) -> HubSpotConnection:
    db.session.expire_all()
    return db.session.scalar(db.select(HubSpotConnection).filter_by(workspace_id=workspace_id))


def _history(workspace_id, portal_id) -> tuple[Sequence, Enrollment]:
    sequence = Sequence(workspace_id=workspace_id, hubspot_id="424242", name="Old favourite")
    db.session.add(sequence)
    db.session.flush()
    enrollment = Enrollment(
        workspace_id=workspace_id,
        callback_id="ap-history-1",
        portal_id=portal_id,
        contact_id="1001",
        sequence_id=sequence.id,
        sequence_hubspot_id="424242",
        sequence_name="Old favourite",
    )
    db.session.add(enrollment)
    db.session.commit()
    return sequence, enrollment


def _second_portal(sandbox_admin) -> int:
    created = sandbox_admin.post(
        "/portals",
        {
            "domain": "second.hubspot.com",
            "users": [{"email": "zoe@second.com", "superAdmin": True}],
        },
    )
    return created["id"]


# -- disconnect ---------------------------------------------------------------------------------


def test_disconnect_revokes_at_hubspot_and_erases_tokens(connected_workspace, logged_in, sandbox):
    connection = _connection(connected_workspace.id)
    refresh_token = tokens.decrypt(connection.refresh_token_enc)
    response = logged_in.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    assert response.status_code == 302
    with sandbox.state.lock:
        assert sandbox.state.refresh_tokens[refresh_token].revoked
    connection = _connection(connected_workspace.id)
    assert connection.status == "disconnected"
    assert connection.access_token_enc is None
    assert connection.refresh_token_enc is None
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "is disconnected" in page
    assert "badge badge-disconnected" in page


def test_disconnect_keeps_the_row_and_history(connected_workspace, logged_in, portal_id):
    sequence, enrollment = _history(connected_workspace.id, portal_id)
    logged_in.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    assert _connection(connected_workspace.id).portal_id == portal_id
    assert db.session.get(Enrollment, enrollment.id) is not None
    assert db.session.get(Sequence, sequence.id).removed_at is None


def test_disconnected_workspace_has_no_client(connected_workspace, logged_in):
    logged_in.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    with pytest.raises(NeedsReconnect):
        for_workspace(connected_workspace.id)


def test_members_cannot_disconnect(connected_workspace, member_client):
    from autoseq.models import Role

    member = member_client(Role.MEMBER)
    member.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    assert _connection(connected_workspace.id).status == "connected"


# -- reconnect ----------------------------------------------------------------------------------


def test_reconnect_same_portal_keeps_sequences_and_history(
    connected_workspace, logged_in, portal_id, oauth_dance
):
    sequence, enrollment = _history(connected_workspace.id, portal_id)
    logged_in.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    response = oauth_dance(logged_in, connected_workspace.id, portal_id)
    assert response.status_code == 302
    connection = _connection(connected_workspace.id)
    assert connection.status == "connected"
    assert connection.portal_id == portal_id
    assert db.session.get(Sequence, sequence.id).removed_at is None
    assert db.session.get(Enrollment, enrollment.id) is not None
    assert "is reconnected" in logged_in.get(response.headers["Location"]).get_data(as_text=True)


def test_reconnect_requests_a_reconnect_sync(
    connected_workspace, logged_in, portal_id, oauth_dance, redis
):
    db.session.execute(db.delete(SyncRun))
    db.session.commit()
    redis.flushdb()  # forget the connect sync's "one at a time" lock and job
    oauth_dance(logged_in, connected_workspace.id, portal_id)
    triggers = db.session.scalars(
        db.select(SyncRun.trigger).filter_by(workspace_id=connected_workspace.id)
    ).all()
    assert triggers == ["reconnect"]


def test_reconnect_after_needs_reconnect_clears_the_error(
    connected_workspace, logged_in, sandbox_admin, portal_id, oauth_dance
):
    sandbox_admin.patch(f"/portals/{portal_id}/faults", {"revoke": True})
    with pytest.raises(NeedsReconnect):
        for_workspace(connected_workspace.id).get("/crm/v3/owners")
    oauth_dance(logged_in, connected_workspace.id, portal_id)
    connection = _connection(connected_workspace.id)
    assert connection.status == "connected"
    assert connection.last_error is None
    assert for_workspace(connected_workspace.id).get("/crm/v3/owners")["results"]


def test_different_portal_is_refused_without_confirmation(
    connected_workspace, logged_in, sandbox_admin, portal_id, oauth_dance
):
    other = _second_portal(sandbox_admin)
    before = _connection(connected_workspace.id).refresh_token_enc
    response = oauth_dance(logged_in, connected_workspace.id, other)
    assert response.status_code == 302
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert f"you picked portal {other}" in page
    assert "Replace the connected portal" in page
    connection = _connection(connected_workspace.id)
    assert connection.portal_id == portal_id
    assert connection.refresh_token_enc == before


def test_different_portal_with_confirmation_replaces_and_retires_old_sequences(
    connected_workspace, logged_in, sandbox, sandbox_admin, portal_id, oauth_dance
):
    sequence, enrollment = _history(connected_workspace.id, portal_id)
    old_refresh = tokens.decrypt(_connection(connected_workspace.id).refresh_token_enc)
    other = _second_portal(sandbox_admin)
    response = oauth_dance(logged_in, connected_workspace.id, other, replace=True)
    assert response.status_code == 302
    connection = _connection(connected_workspace.id)
    assert connection.portal_id == other
    assert connection.hub_domain == "second.hubspot.com"
    assert db.session.get(Sequence, sequence.id).removed_at is not None
    assert db.session.get(Enrollment, enrollment.id).portal_id == portal_id
    with sandbox.state.lock:
        assert sandbox.state.refresh_tokens[old_refresh].revoked


# -- tokens at rest -----------------------------------------------------------------------------


def test_stored_tokens_are_not_the_tokens(connected_workspace):
    table = HubSpotConnection.__table__
    with db.engine.connect() as conn:
        row = conn.execute(table.select().where(table.c.workspace_id == connected_workspace.id))
        row = row.first()
    access = tokens.decrypt(row.access_token_enc)
    refresh = tokens.decrypt(row.refresh_token_enc)
    assert access.startswith("sbx-at-") and refresh.startswith("sbx-rt-")
    for raw in (row.access_token_enc, row.refresh_token_enc):
        assert access not in raw and refresh not in raw


def test_tokens_cannot_be_read_with_another_key(connected_workspace):
    stored = _connection(connected_workspace.id).refresh_token_enc
    with pytest.raises(TokenDecryptError):
        tokens.decrypt(stored, [Fernet.generate_key().decode()])


def test_key_rotation_reencrypts_with_the_new_key(app, connected_workspace):
    old_keys = list(app.config["TOKEN_ENCRYPTION_KEYS"])
    refresh = tokens.decrypt(_connection(connected_workspace.id).refresh_token_enc)
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, *old_keys]
    try:
        assert tokens.rotate_all().rotated == 1
        stored = _connection(connected_workspace.id).refresh_token_enc
        assert tokens.decrypt(stored, [new_key]) == refresh  # the new key alone reads it
        with pytest.raises(TokenDecryptError):
            tokens.decrypt(stored, old_keys)
    finally:
        app.config["TOKEN_ENCRYPTION_KEYS"] = old_keys
        tokens.rotate_all([*old_keys, new_key])


def test_old_key_listed_after_the_new_one_still_decrypts(app, connected_workspace):
    old_keys = list(app.config["TOKEN_ENCRYPTION_KEYS"])
    app.config["TOKEN_ENCRYPTION_KEYS"] = [Fernet.generate_key().decode(), *old_keys]
    try:
        client = for_workspace(connected_workspace.id)
        assert client.get("/crm/v3/owners", {"limit": 1})["results"]
    finally:
        app.config["TOKEN_ENCRYPTION_KEYS"] = old_keys


# -- current API versions -------------------------------------------------------------------------


@pytest.fixture
def retired_refused(sandbox_admin):
    """The shared sandbox refuses HubSpot's retired paths (410) for this test only."""
    sandbox_admin.patch("/legacy", {"refuse": True})
    before = dict(sandbox_admin.get("/legacy")["calls"])
    yield before
    sandbox_admin.patch("/legacy", {"refuse": False})


def test_connect_sync_and_disconnect_use_only_current_paths(
    retired_refused, sandbox_admin, connected_workspace, logged_in, sandbox
):
    from autoseq.services.sync import run_sync

    connection = _connection(connected_workspace.id)
    assert connection.status == "connected" and connection.hub_domain  # exchange + introspect
    refresh_token = tokens.decrypt(connection.refresh_token_enc)
    assert run_sync(connected_workspace.id).status == "succeeded"
    logged_in.post_form(f"/w/{connected_workspace.id}/settings/hubspot/disconnect")
    with sandbox.state.lock:
        assert sandbox.state.refresh_tokens[refresh_token].revoked  # the dated revoke
    assert sandbox_admin.get("/legacy")["calls"] == retired_refused
