"""The sync job against the sandbox over HTTP, run by a real worker."""

from __future__ import annotations

import pytest

from autoseq.extensions import db
from autoseq.models import (
    ConnectionStatus,
    Enrollment,
    HubSpotConnection,
    HubSpotUser,
    Mailbox,
    Sequence,
    SyncRun,
)
from autoseq.services.sync import request_sync


def sequences(ws_id, removed=False):
    query = db.select(Sequence).filter_by(workspace_id=ws_id)
    query = query.where(
        Sequence.removed_at.is_not(None) if removed else Sequence.removed_at.is_(None)
    )
    db.session.expire_all()
    return {s.hubspot_id: s for s in db.session.scalars(query)}


def sync(ws_id, run_jobs, trigger="manual") -> SyncRun:
    run = request_sync(ws_id, trigger)
    run_jobs(["sync"])
    db.session.expire_all()
    return db.session.get(SyncRun, run.id)


@pytest.fixture
def ws_id(connected_workspace) -> int:
    return connected_workspace.id


def admin_id(sandbox_admin):
    return next(u["id"] for u in sandbox_admin.users() if u["email"] == "admin@acme.test")


def test_first_sync_brings_users_mailboxes_and_every_sequence(ws_id, sandbox_admin, run_jobs):
    ada = admin_id(sandbox_admin)
    bob = sandbox_admin.add_user("bob@acme.test", firstName="Bob")["id"]
    sandbox_admin.add_user("nina@acme.test", seat=False)
    team = sandbox_admin.add_sequence("Team one", ada, shared=True, folderId="1001")
    private = sandbox_admin.add_sequence("Bob's own", bob, shared=False, state="paused")

    run = sync(ws_id, run_jobs, "connect")

    assert run.status == "succeeded", run.error
    assert (run.added, run.updated, run.removed, run.users) == (2, 0, 0, 3)
    rows = sequences(ws_id)
    assert set(rows) == {team["id"], private["id"]}
    assert rows[team["id"]].sharing == "team"
    assert sorted(rows[team["id"]].sender_user_ids) == sorted([str(ada), str(bob)])
    assert rows[team["id"]].folder_id == "1001"
    assert rows[private["id"]].sharing == "private"
    assert rows[private["id"]].sender_user_ids == [str(bob)]
    assert rows[private["id"]].owner_hubspot_user_id == str(bob)
    assert rows[private["id"]].state == "unknown"  # the portal does not report states
    assert (
        rows[team["id"]].hs_created_at is not None and rows[team["id"]].last_synced_at is not None
    )
    users = {u.email: u for u in db.session.scalars(db.select(HubSpotUser))}
    assert users["bob@acme.test"].has_seat and not users["nina@acme.test"].has_seat
    assert users["admin@acme.test"].super_admin and users["admin@acme.test"].owner_id
    boxes = db.session.scalars(db.select(Mailbox).filter_by(is_default=True)).all()
    assert sorted(b.email for b in boxes) == ["admin@acme.test", "bob@acme.test", "nina@acme.test"]


def test_state_is_taken_from_hubspot_when_the_portal_reports_it(ws_id, sandbox_admin, run_jobs):
    sandbox_admin.settings(include_state=True)
    ada = admin_id(sandbox_admin)
    paused = sandbox_admin.add_sequence("P", ada, state="paused")
    draft = sandbox_admin.add_sequence("D", ada, state="draft")
    sync(ws_id, run_jobs)
    rows = sequences(ws_id)
    assert rows[paused["id"]].state == "paused" and rows[draft["id"]].state == "draft"


def test_rename_share_unshare_delete_and_recreate_are_reflected(ws_id, sandbox_admin, run_jobs):
    ada = admin_id(sandbox_admin)
    bob = sandbox_admin.add_user("bob@acme.test")["id"]
    a = sandbox_admin.add_sequence("Alpha", ada, shared=True)
    b = sandbox_admin.add_sequence("Beta", bob, shared=False)
    c = sandbox_admin.add_sequence("Gamma", ada, shared=True)
    assert sync(ws_id, run_jobs).added == 3
    gamma_row_id = sequences(ws_id)[c["id"]].id
    db.session.add(
        Enrollment(
            workspace_id=ws_id,
            callback_id="cb-1",
            portal_id=1,
            contact_id="1",
            sequence_id=gamma_row_id,
            sequence_hubspot_id=c["id"],
            sequence_name="Gamma",
            status="enrolled",
        )
    )
    db.session.commit()

    sandbox_admin.patch_sequence(a["id"], name="Alpha renamed", shared=False)
    sandbox_admin.patch_sequence(b["id"], shared=True)
    sandbox_admin.delete_sequence(c["id"])
    run = sync(ws_id, run_jobs)

    assert (run.added, run.updated, run.removed) == (0, 2, 1), run.error
    rows = sequences(ws_id)
    assert rows[a["id"]].name == "Alpha renamed" and rows[a["id"]].sharing == "private"
    assert rows[a["id"]].sender_user_ids == [str(ada)]
    assert rows[b["id"]].sharing == "team"
    gone = sequences(ws_id, removed=True)[c["id"]]
    assert gone.id == gamma_row_id and gone.enrollments.count() == 1


def test_a_sequence_recreated_with_the_same_id_clears_removed_at(
    ws_id, sandbox, sandbox_admin, run_jobs
):
    ada = admin_id(sandbox_admin)
    c = sandbox_admin.add_sequence("Gamma", ada)
    sync(ws_id, run_jobs)
    row_id = sequences(ws_id)[c["id"]].id
    sandbox_admin.delete_sequence(c["id"])
    sync(ws_id, run_jobs)
    assert c["id"] in sequences(ws_id, removed=True)

    portal = sandbox.state.portals[sandbox_admin.portal_id]
    sandbox.state.add_sequence(portal, "Gamma again", ada, sequence_id=c["id"])
    run = sync(ws_id, run_jobs)

    assert run.updated == 1 and run.added == 0
    row = sequences(ws_id)[c["id"]]
    assert row.id == row_id and row.removed_at is None and row.name == "Gamma again"


def test_resync_with_nothing_changed_updates_nothing(ws_id, sandbox_admin, run_jobs):
    ada = admin_id(sandbox_admin)
    for i in range(5):
        sandbox_admin.add_sequence(f"S{i}", ada)
    sync(ws_id, run_jobs)
    run = sync(ws_id, run_jobs)
    assert (run.status, run.added, run.updated, run.removed) == ("succeeded", 0, 0, 0)


def test_users_no_longer_listed_are_kept_inactive(ws_id, sandbox_admin, run_jobs):
    bob = sandbox_admin.add_user("bob@acme.test")["id"]
    sync(ws_id, run_jobs)
    sandbox_admin.patch_user(bob, active=False)
    run = sync(ws_id, run_jobs)
    bob_row = db.session.scalar(db.select(HubSpotUser).filter_by(hubspot_user_id=str(bob)))
    assert run.users == 1
    assert bob_row is not None and bob_row.active is False
    assert db.session.scalar(db.select(Mailbox).filter_by(hubspot_user_id=bob_row.id)) is not None


def test_two_requests_at_once_run_once(ws_id, sandbox_admin, run_jobs):
    first = request_sync(ws_id, "manual")
    second = request_sync(ws_id, "manual")
    assert second.id == first.id
    run_jobs(["sync"])
    assert db.session.scalar(db.select(db.func.count()).select_from(SyncRun)) == 1
    third = request_sync(ws_id, "manual")
    assert third.id != first.id


def test_revoked_token_fails_the_run_with_a_reason_and_needs_reconnect(
    ws_id, sandbox_admin, run_jobs
):
    sandbox_admin.faults(revoke=True)
    run = sync(ws_id, run_jobs)
    assert run.status == "failed"
    assert "reconnect" in run.error.lower()
    connection = db.session.scalar(db.select(HubSpotConnection))
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT


def test_a_workspace_that_needs_reconnecting_fails_at_once(ws_id, run_jobs):
    connection = db.session.scalar(db.select(HubSpotConnection))
    connection.status = ConnectionStatus.NEEDS_RECONNECT.value
    db.session.commit()
    run = sync(ws_id, run_jobs)
    assert run.status == "failed" and "reconnect" in run.error.lower()
