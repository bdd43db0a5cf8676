"""The sync job against the sandbox over HTTP (the seeded demo portal), run by a real worker."""

from __future__ import annotations

import threading
import time

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
from autoseq.queue import get_queue
from autoseq.services.sync import request_sync


def sequences(ws_id, removed=False) -> dict[str, Sequence]:
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


def test_connecting_runs_a_first_sync_of_users_mailboxes_and_sequences(ws_id, portal, run_jobs):
    queued = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=ws_id))
    assert queued.trigger == "connect" and queued.status == "queued"
    run_jobs(["sync"])
    run = db.session.get(SyncRun, queued.id)
    db.session.refresh(run)

    assert run.status == "succeeded", run.error
    expected = portal.visible_to_senders()
    assert (run.added, run.updated, run.removed) == (len(expected), 0, 0)
    rows = sequences(ws_id)
    assert set(rows) == expected
    senders = sorted(str(u["id"]) for u in portal.users() if u["active"])
    for source in portal.sequences():
        if source["id"] not in rows:
            continue
        row = rows[source["id"]]
        assert row.name == source["name"] and row.owner_hubspot_user_id == source["userId"]
        assert row.folder_id == source.get("folderId")
        assert row.sharing == ("team" if source["shared"] else "private")
        assert sorted(row.sender_user_ids) == (senders if source["shared"] else [source["userId"]])
        assert row.state == "unknown"  # this portal does not report states: none invented
        assert row.hs_created_at is not None and row.last_synced_at is not None

    users = {u.email.split("@")[0]: u for u in db.session.scalars(db.select(HubSpotUser))}
    assert run.users == 7 and len(users) == 8
    assert users["alice.martin"].super_admin and users["alice.martin"].owner_id
    assert not users["grace.kim"].has_seat and users["grace.kim"].active
    assert not users["hiro.tanaka"].active  # deactivated: listed only as an archived owner
    boxes = db.session.scalars(db.select(Mailbox).filter_by(is_default=True)).all()
    assert sorted(b.email for b in boxes) == sorted(
        u["email"] for u in portal.users() if u["active"]
    )


def test_state_is_taken_from_hubspot_when_the_portal_reports_it(ws_id, portal, run_jobs):
    portal.settings(include_state=True)
    alice = portal.user_id("alice")
    paused = portal.add_sequence("P", alice, state="paused")
    draft = portal.add_sequence("D", alice, state="draft")
    sync(ws_id, run_jobs)
    rows = sequences(ws_id)
    assert rows[paused["id"]].state == "paused" and rows[draft["id"]].state == "draft"
    assert {r.state for r in rows.values()} <= {"active", "paused", "draft", "archived"}


def test_rename_share_unshare_and_delete_are_reflected_and_history_kept(ws_id, portal, run_jobs):
    alice, bruno = portal.user_id("alice"), portal.user_id("bruno")
    a = portal.add_sequence("Alpha", alice, shared=True)
    b = portal.add_sequence("Beta", bruno, shared=False)
    c = portal.add_sequence("Gamma", alice, shared=True)
    assert sync(ws_id, run_jobs).status == "succeeded"
    gamma_id = sequences(ws_id)[c["id"]].id
    db.session.add(
        Enrollment(
            workspace_id=ws_id,
            callback_id="cb-1",
            portal_id=portal.id,
            contact_id="1",
            sequence_id=gamma_id,
            sequence_hubspot_id=c["id"],
            sequence_name="Gamma",
            status="enrolled",
        )
    )
    db.session.commit()

    portal.patch_sequence(a["id"], name="Alpha renamed", shared=False)
    portal.patch_sequence(b["id"], shared=True)
    portal.delete_sequence(c["id"])
    run = sync(ws_id, run_jobs)

    assert (run.added, run.updated, run.removed) == (0, 2, 1), run.error
    rows = sequences(ws_id)
    assert rows[a["id"]].name == "Alpha renamed" and rows[a["id"]].sharing == "private"
    assert rows[a["id"]].sender_user_ids == [str(alice)]
    # a team sequence may be sent by every active user (seats are HubSpot's call at enrollment)
    assert rows[b["id"]].sharing == "team" and len(rows[b["id"]].sender_user_ids) == 7
    assert c["id"] not in rows
    gone = sequences(ws_id, removed=True)[c["id"]]
    assert gone.id == gamma_id and gone.enrollments.count() == 1


def test_a_sequence_recreated_with_the_same_id_clears_removed_at(ws_id, sandbox, portal, run_jobs):
    alice = portal.user_id("alice")
    c = portal.add_sequence("Gamma", alice)
    sync(ws_id, run_jobs)
    row_id = sequences(ws_id)[c["id"]].id
    portal.delete_sequence(c["id"])
    sync(ws_id, run_jobs)
    assert c["id"] in sequences(ws_id, removed=True)

    state = sandbox.state
    state.add_sequence(state.portals[portal.id], "Gamma again", alice, sequence_id=c["id"])
    run = sync(ws_id, run_jobs)

    assert (run.added, run.updated) == (0, 1)
    row = sequences(ws_id)[c["id"]]
    assert row.id == row_id and row.removed_at is None and row.name == "Gamma again"


def test_odd_names_arrive_as_they_are(ws_id, portal, run_jobs):
    alice = portal.user_id("alice")
    odd = [
        '<img src=x onerror="alert(1)">',
        "🚀 Launch — ünïcødé",
        "x" * 10_000,
        "'quoted' & \"double\"",
    ]
    ids = [portal.add_sequence(name, alice)["id"] for name in odd]
    run = sync(ws_id, run_jobs)
    assert run.status == "succeeded", run.error
    rows = sequences(ws_id)
    assert [rows[i].name for i in ids] == odd


def test_resync_with_nothing_changed_updates_nothing(ws_id, run_jobs):
    added_first = sync(ws_id, run_jobs).added
    again = sync(ws_id, run_jobs)
    assert added_first > 0
    assert (again.status, again.added, again.updated, again.removed) == ("succeeded", 0, 0, 0)


def test_users_no_longer_listed_are_kept_inactive_with_their_mailboxes(ws_id, portal, run_jobs):
    bruno = portal.user_id("bruno")
    sync(ws_id, run_jobs)
    portal.patch_user(bruno, active=False)
    run = sync(ws_id, run_jobs)
    row = db.session.scalar(db.select(HubSpotUser).filter_by(hubspot_user_id=str(bruno)))
    assert run.users == 6
    assert row is not None and row.active is False
    assert db.session.scalar(db.select(Mailbox).filter_by(hubspot_user_id=row.id)) is not None


def test_mailboxes_added_by_admins_are_never_deleted(ws_id, portal, run_jobs):
    sync(ws_id, run_jobs)
    alice = db.session.scalar(db.select(HubSpotUser).where(HubSpotUser.email.like("alice%")))
    alice_id, alice_email = alice.id, alice.email
    db.session.add(Mailbox(workspace_id=ws_id, hubspot_user_id=alice_id, email="sales@demo.test"))
    db.session.commit()
    sync(ws_id, run_jobs)
    boxes = db.session.scalars(db.select(Mailbox).filter_by(hubspot_user_id=alice_id)).all()
    assert sorted((b.email, b.is_default) for b in boxes) == [
        (alice_email, True),
        ("sales@demo.test", False),
    ]


def test_requests_at_once_create_one_run_and_one_job(app, ws_id, run_jobs):
    run_jobs(["sync"])  # the first sync, requested by the connect flow
    results = []

    def click():
        with app.app_context():
            try:
                results.append(request_sync(ws_id, "manual").id)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert get_queue("sync").count == 1
    run_jobs(["sync"])
    runs = db.session.scalars(db.select(SyncRun).order_by(SyncRun.id)).all()
    assert [(r.trigger, r.status) for r in runs] == [
        ("connect", "succeeded"),
        ("manual", "succeeded"),
    ]


def test_a_duplicate_job_never_runs_in_parallel(ws_id, redis, run_jobs):
    run_id = db.session.scalar(db.select(SyncRun.id).filter_by(workspace_id=ws_id))
    redis.set(f"autoseq:sync:{ws_id}:running", "someone-else", ex=60)  # a sync holds the lock
    run_jobs(["sync"])
    run = db.session.get(SyncRun, run_id)
    assert run.status == "failed" and "already running" in run.error
    assert sequences(ws_id) == {}


def test_a_token_revoked_mid_sync_fails_the_run_with_a_reason(ws_id, app, portal, run_jobs):
    portal.faults(latency_ms=100)
    portal.admin.delete(portal.base + "/stats")

    def revoke_after_three_calls():
        deadline = time.monotonic() + 20
        while portal.stats()["requests"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        portal.faults(revoke=True)

    revoker = threading.Thread(target=revoke_after_three_calls)
    revoker.start()
    run_jobs(["sync"])
    revoker.join()

    assert portal.stats()["by_status"].get("200", 0) >= 3  # it was under way when revoked
    run = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=ws_id))
    db.session.refresh(run)
    assert run.status == "failed" and "reconnect" in run.error.lower()
    assert sequences(ws_id) == {}  # nothing half-written
    connection = db.session.scalar(db.select(HubSpotConnection))
    db.session.refresh(connection)
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT


def test_a_workspace_that_needs_reconnecting_fails_at_once_without_calling_hubspot(
    ws_id, portal, run_jobs
):
    connection = db.session.scalar(db.select(HubSpotConnection))
    connection.status = ConnectionStatus.NEEDS_RECONNECT.value
    db.session.commit()
    portal.admin.delete(portal.base + "/stats")
    run_jobs(["sync"])
    run = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=ws_id))
    db.session.refresh(run)
    assert run.status == "failed" and "reconnect" in run.error.lower()
    assert portal.stats()["requests"] == 0


def test_progress_is_kept_in_the_job_meta(ws_id, portal, redis, run_jobs):
    from rq.job import Job

    run_jobs(["sync"])
    run = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=ws_id))
    meta = Job.fetch(run.job_id, connection=redis).meta
    assert meta["phase"] == "saving"
    assert meta["users_done"] == meta["users_total"] == 7  # every active user, seat or not
    assert meta["sequences_seen"] == len(portal.visible_to_senders())


def test_flask_sync_inline_runs_here_and_reports(ws_id, runner):
    result = runner.invoke(args=["sync", "--workspace", str(ws_id), "--inline"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "7 users" in result.output
    assert len(sequences(ws_id)) > 0


def test_users_who_lost_their_seats_still_have_their_sequences_listed(ws_id, portal, run_jobs):
    sync(ws_id, run_jobs)
    before = set(sequences(ws_id))
    for user in portal.users():
        if user["seat"]:
            portal.patch_user(user["id"], seat=False)
    run = sync(ws_id, run_jobs)
    assert run.status == "succeeded", run.error
    assert set(sequences(ws_id)) == before and run.removed == 0
    users = db.session.scalars(db.select(HubSpotUser).filter_by(active=True)).all()
    assert users and not any(u.has_seat for u in users)  # HubSpot named other seats: plain


@pytest.mark.parametrize("mode", ["omitted", "empty"])
def test_seat_names_missing_or_empty_hide_nobody(ws_id, portal, run_jobs, mode):
    portal.settings(seat_names=mode)
    run = sync(ws_id, run_jobs)
    assert run.status == "succeeded", run.error
    assert set(sequences(ws_id)) == portal.visible_to_senders()
    users = {u.email.split("@")[0]: u for u in db.session.scalars(db.select(HubSpotUser))}
    # grace.kim has no Sales seat in the sandbox, but HubSpot did not say so: she may send.
    assert users["grace.kim"].has_seat and users["alice.martin"].has_seat
    grace = str(portal.user_id("grace"))
    team = [s for s in sequences(ws_id).values() if s.sharing == "team"]
    assert team and all(grace in s.sender_user_ids for s in team)


def test_seat_names_listed_mark_only_the_plainly_seatless(ws_id, portal, run_jobs):
    portal.settings(seat_names="listed")
    run = sync(ws_id, run_jobs)
    assert run.status == "succeeded", run.error
    users = {u.email.split("@")[0]: u for u in db.session.scalars(db.select(HubSpotUser))}
    assert not users["grace.kim"].has_seat and users["alice.martin"].has_seat


def test_private_sequences_of_a_user_who_lost_the_seat_are_not_called_removed(
    ws_id, portal, run_jobs
):
    bruno = portal.user_id("bruno")
    own = portal.add_sequence("Bruno's own", bruno, shared=False)
    sync(ws_id, run_jobs)
    portal.patch_user(bruno, seat=False)
    run = sync(ws_id, run_jobs)
    assert run.removed == 0
    assert own["id"] in sequences(ws_id)
