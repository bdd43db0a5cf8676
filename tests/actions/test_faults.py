"""HubSpot misbehaves, workers die: every contact is still enrolled exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from autoseq.services import enrollment as enrollment_service

from .conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def drain(world, run_jobs, callback_ids, timeout: float = 60.0) -> None:
    """Run the worker (retries come back after their backoff) until every callback completed."""
    deadline = time.monotonic() + timeout
    while True:
        run_jobs()
        if all(world.completion(cb) for cb in callback_ids):
            return
        assert time.monotonic() < deadline, [world.admin.callback(cb) for cb in callback_ids]
        time.sleep(0.5)


def assert_enrolled_once(world, contacts, callback_ids):
    enrolled = world.enrolled_contacts()
    assert sorted(enrolled) == sorted(contacts)  # each exactly once (one entry per contact)
    for cb in callback_ids:
        assert world.outputs(cb)["enrollment_status"] == "enrolled"
        assert world.row(cb).status == "enrolled"


def test_a_5xx_storm_is_retried_and_each_contact_enrolled_once(world, run_jobs):
    contacts = world.contacts(3)
    callback_ids = world.fire(contacts, world.direct("team", "ada@acme.test"))
    world.admin.faults(error_rate=1.0)
    run_jobs()  # the first try fails (the client's retries): the drain backs off the portal
    rows = [world.row(cb) for cb in callback_ids]
    assert all(row.status == "queued" and row.job_id is None for row in rows)
    assert sorted(row.attempts for row in rows) == [0, 0, 1]  # no hammering a failing HubSpot
    tried = next(row for row in rows if row.attempts)
    assert tried.retries == 1 and tried.due_at is not None
    world.admin.faults(error_rate=0.0)
    drain(world, run_jobs, callback_ids)
    assert_enrolled_once(world, contacts, callback_ids)
    assert world.admin.stats()["by_status"].get("500", 0) > 0


def test_a_429_storm_is_waited_out_and_each_contact_enrolled_once(world, run_jobs):
    contacts = world.contacts(3)
    callback_ids = world.fire(contacts, world.direct("team", "ada@acme.test"))
    world.admin.faults(rate_limit_storm_seconds=2)
    drain(world, run_jobs, callback_ids)
    assert_enrolled_once(world, contacts, callback_ids)
    assert world.admin.stats()["rate_limited"] > 0


class _EnrollTrap(dict):
    """The portal's enrollments, turning on a 5xx fault as soon as one is stored: the callback
    completion that follows is refused."""

    def __init__(self, portal, data):
        super().__init__(data)
        self.portal = portal

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.portal.faults.error_rate = 1.0


def test_a_refused_callback_completion_is_retried_without_re_enrolling(world, run_jobs):
    contact = world.contacts(1)[0]
    [cb] = world.fire([contact], world.direct("team", "ada@acme.test"))
    world.portal.enrollments = _EnrollTrap(world.portal, world.portal.enrollments)
    run_jobs()
    row = world.row(cb)
    assert row.status == "enrolled" and row.callback_completed_at is None
    assert world.completion(cb) is None
    world.admin.faults(error_rate=0.0)
    drain(world, run_jobs, [cb])
    row = world.row(cb)
    assert row.attempts == 1 and row.callback_completed_at is not None
    assert world.outputs(cb)["hs_execution_state"] == "SUCCESS"
    assert world.enrolled_contacts() == [contact]


def _worker_config(app) -> dict:
    keys = (
        "SQLALCHEMY_DATABASE_URI",
        "REDIS_URL",
        "SECRET_KEY",
        "PUBLIC_BASE_URL",
        "HUBSPOT_API_BASE",
        "HUBSPOT_CLIENT_ID",
        "HUBSPOT_CLIENT_SECRET",
        "HUBSPOT_APP_ID",
        "HUBSPOT_RATE_LIMIT",
        "HUBSPOT_RETRY_BACKOFF",
        "HUBSPOT_RETRY_BACKOFF_MAX",
        "HUBSPOT_TIMEOUT",
        "TOKEN_ENCRYPTION_KEYS",
    )
    config = {k: app.config[k] for k in keys if app.config.get(k) is not None}
    config["AUTOSEQ_ENV"] = "testing"
    config["TOKEN_ENCRYPTION_KEY"] = ",".join(app.config["TOKEN_ENCRYPTION_KEYS"])
    return config


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL the worker and any process it started."""
    for child in _children(pid):
        os.kill(child, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def _start_worker(app, *queues: str) -> subprocess.Popen:
    """A real worker process on ``queues`` (default: enrollments), for a test to kill."""
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("worker_proc.py")),
            json.dumps(_worker_config(app)),
            *queues,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_after_calling_hubspot_still_enrolls_exactly_once(world, app, run_jobs):
    contact = world.contacts(1)[0]
    [cb] = world.fire([contact], world.direct("team", "ada@acme.test"))
    world.admin.faults(latency_ms=1500)  # the enroll call is slow: time to kill the worker
    proc = _start_worker(app)
    enroll_key = "POST /automation/sequences/2026-03/enrollments"
    try:
        assert wait_until(lambda: world.admin.stats()["by_path"].get(enroll_key), timeout=30)
    finally:
        _kill_tree(proc.pid)
        proc.wait(10)
    # HubSpot finishes the call the dead worker made: the contact is enrolled, AutoSeq not told.
    assert wait_until(lambda: world.enrolled_contacts() == [contact], timeout=10)
    world.admin.faults(latency_ms=0)
    row = world.row(cb)
    assert (row.status, row.attempts) == ("queued", 1)

    # The periodic sweep finds the row with no live job and re-enqueues it; a second worker runs.
    requeued = enrollment_service.requeue_stuck(older_than=timedelta(0), heartbeat_grace=0)
    assert requeued == 1
    drain(world, run_jobs, [cb])
    row = world.row(cb)
    assert row.status == "enrolled"
    assert world.enrolled_contacts() == [contact]
    assert world.outputs(cb)["hs_execution_state"] == "SUCCESS"
    assert world.admin.stats()["by_path"][enroll_key] == 1  # never sent twice


def test_the_stuck_sweep_leaves_rows_with_a_live_job_alone(world, redis):
    world.fire(world.contacts(2), world.direct("team", "ada@acme.test"))
    assert enrollment_service.requeue_stuck(older_than=timedelta(0)) == 0


def test_an_expired_callback_is_not_retried_forever(world, run_jobs, logged_in):
    [cb] = world.fire(world.contacts(1), world.direct("team", "ada@acme.test"))
    with world.state.lock:
        world.state.callbacks[cb].expires_at = time.time() - 1  # HubSpot gave up waiting
    run_jobs()
    row = world.row(cb)
    assert row.status == "enrolled" and row.callback_completed_at is None
    # Recorded on the row (not a Redis key that expires): a callback failure, not a success.
    assert "has expired" in row.callback_error
    assert enrollment_service.callback_state(row) == "refused"
    assert enrollment_service.requeue_stuck(older_than=timedelta(0), heartbeat_grace=0) == 0
    page = logged_in.get(f"/w/{world.workspace_id}/sequences/{row.sequence_id}")
    assert page.status_code == 200
    assert "Callback failed" in page.text and "has expired" in page.text


def test_completing_an_already_completed_callback_counts_as_completed(world, run_jobs):
    from autoseq.extensions import db

    [cb] = world.fire(world.contacts(1), world.direct("team", "ada@acme.test"))
    run_jobs()
    row = world.row(cb)
    row.callback_completed_at = None  # as if the answer to our completion had been lost
    db.session.commit()
    assert enrollment_service.requeue_stuck(older_than=timedelta(0), heartbeat_grace=0) == 1
    run_jobs()
    row = world.row(cb)
    assert row.callback_completed_at is not None and row.attempts == 1
    assert world.enrolled_contacts() == [world.contacts(1)[0]]


def test_retries_are_not_stranded_when_no_worker_runs_rqs_scheduler(world, app, redis):
    """worker.py runs without RQ's scheduler: the sweep moves due retries to the queue."""
    from autoseq.queue import Worker as AutoSeqWorker
    from autoseq.queue import get_queue

    def work():
        from autoseq.extensions import db

        db.session.remove()
        worker = AutoSeqWorker([get_queue("enrollments", redis)], connection=redis)
        worker.app = app
        worker.work(burst=True, with_scheduler=False)

    [cb] = world.fire(world.contacts(1), world.direct("team", "ada@acme.test"))
    world.admin.faults(error_rate=1.0)
    work()  # fails; the row waits out its backoff (5 s) and the drain's successor is scheduled
    world.admin.faults(error_rate=0.0)
    work()
    row = world.row(cb)
    assert (row.status, row.retries, row.job_id) == ("queued", 1, None)  # nobody moved the drain
    time.sleep(5.5)
    assert enrollment_service.enqueue_due_retries() == 1
    work()
    assert world.row(cb).status == "enrolled" and world.completion(cb) is None
    # The callback's completion waits a moment for its batch (CALLBACK_FLUSH_DELAY), its drain in
    # the same scheduled registry: the sweep moves it too.
    time.sleep(app.config["CALLBACK_FLUSH_DELAY"] + 1.1)
    assert enrollment_service.enqueue_due_retries() == 1
    work()
    assert world.outputs(cb)["enrollment_status"] == "enrolled"
    assert world.row(cb).attempts == 2


def test_a_stale_dropdown_offers_a_new_sequence_within_a_minute_though_its_sync_worker_dies(
    world, app, run_jobs
):
    """Issue 16: the workflow editor's dropdown asks for a background sync; the worker running it
    is killed mid-sync; the periodic recovery asks again and the new sequence is offered."""
    from autoseq.extensions import db
    from autoseq.jobs.sync import recover_interrupted_syncs
    from autoseq.models import SyncRun
    from autoseq.models.base import utcnow

    from .test_options import options

    world.state.add_sequence(world.portal, "Made in HubSpot meanwhile", world.users["ada"].id)
    for run in db.session.scalars(db.select(SyncRun)):  # the last sync was an hour ago
        run.finished_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    world.admin.faults(latency_ms=1000)  # a slow HubSpot: time to kill the sync mid-way

    asked = time.monotonic()
    assert "Made in HubSpot meanwhile" not in [
        o["label"] for o in options(world, "sequence")["options"]
    ]
    [stale] = db.session.scalars(db.select(SyncRun).filter_by(trigger="stale")).all()
    proc = _start_worker(app, "sync")

    def running() -> bool:
        db.session.expire_all()
        return db.session.get(SyncRun, stale.id).status == "running"

    try:
        assert wait_until(running, timeout=30)
    finally:
        _kill_tree(proc.pid)
        proc.wait(10)
    world.admin.faults(latency_ms=0)

    # The periodic recovery (every 30 s) fails the run once its worker's heartbeat has stopped
    # (15 s) and asks for the sync again; until then the run is left alone.
    again: list[int] = []
    while not again:
        assert time.monotonic() - asked < 60, "the interrupted sync was not asked for again"
        again = recover_interrupted_syncs()
        if not again:
            time.sleep(2)
    db.session.expire_all()
    assert db.session.get(SyncRun, stale.id).status == "failed"
    [new_run] = again
    assert db.session.get(SyncRun, new_run).trigger == "stale"
    run_jobs()
    db.session.expire_all()
    finished = db.session.get(SyncRun, new_run)
    assert (finished.status, finished.error) == ("succeeded", None)
    labels = [o["label"] for o in options(world, "sequence")["options"]]
    assert "Made in HubSpot meanwhile" in labels
    seconds = time.monotonic() - asked
    print(f"new sequence offered {seconds:.1f} s after the editor asked, its sync worker killed")
    assert seconds < 60
