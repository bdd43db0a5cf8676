"""End to end: "already in a sequence" as a choice (skip, or wait until the sequence ends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from autoseq.extensions import db
from autoseq.models import Enrollment
from autoseq.models.base import utcnow
from autoseq.services import enrollment as enrollment_service
from autoseq.services.enrollment import queueing

from .conftest import wait_until
from .test_faults import ROOT, _kill_tree, _worker_config, drain

ENROLL = "POST /automation/sequences/2026-03/enrollments"
CHECK = "GET /automation/sequences/2026-03/enrollments/contact/"


@pytest.fixture
def quick_checks(app, monkeypatch):
    """Checks every 1 to 2 s instead of 1 min doubling to 1 h."""
    monkeypatch.setitem(app.config, "WAIT_CHECK_FIRST", 1.0)
    monkeypatch.setitem(app.config, "WAIT_CHECK_MAX", 2.0)


def _busy(world, run_jobs, contacts) -> None:
    """Put each contact in the "private" sequence first (another workflow)."""
    world.fire(contacts, world.direct("private", "bob@acme.test"), workflow_id=1)
    run_jobs()
    assert sorted(world.enrolled_contacts()) == sorted(contacts)


def _waiting(world, sequence="team", days=None) -> dict:
    inputs = {**world.direct(sequence, "ada@acme.test"), "when_already_enrolled": "wait"}
    if days is not None:
        inputs["max_wait_days"] = str(days)
    return inputs


def _checks(world) -> int:
    return sum(n for k, n in world.admin.stats()["by_path"].items() if k.startswith(CHECK))


def test_skip_still_reports_already_enrolled(world, run_jobs):
    contact = world.contacts(1)[0]
    _busy(world, run_jobs, [contact])
    inputs = {**world.direct("team", "ada@acme.test"), "when_already_enrolled": "skip"}
    [cb] = world.fire([contact], inputs, workflow_id=2)
    assert world.admin.callback(cb)["outputFields"]["hs_expiration_duration"] == "P1D"
    run_jobs()
    outputs = world.outputs(cb)
    assert (outputs["enrollment_status"], outputs["hs_execution_state"]) == (
        "already_enrolled",
        "FAIL_CONTINUE",
    )
    assert world.row(cb).wait_until is None


def test_a_waiting_contact_is_enrolled_once_its_sequence_ends(world, run_jobs, quick_checks):
    contact = world.contacts(1)[0]
    _busy(world, run_jobs, [contact])
    [cb] = world.fire([contact], _waiting(world), workflow_id=2)
    delivery = world.admin.callback(cb)
    assert delivery["outputFields"]["hs_expiration_duration"] == "P15D"  # 14 days and one
    world.admin.portal("PATCH", f"/enrollments/{contact}", json={"endsIn": 3})
    started = time.monotonic()
    drain(world, run_jobs, [cb], timeout=60)
    assert time.monotonic() - started < 20  # checked every 1-2 s: enrolled within seconds
    row = world.row(cb)
    assert (row.status, row.wait_until) == ("enrolled", None)
    outputs = world.outputs(cb)
    assert (outputs["hs_execution_state"], outputs["enrollment_status"]) == ("SUCCESS", "enrolled")
    [current] = world.admin.enrollments()
    assert (current["contactId"], current["sequenceId"]) == (contact, world.sequences["team"].id)
    assert world.admin.stats()["by_path"][ENROLL] == 3  # private, refused, then enrolled
    assert _checks(world) >= 1


def test_a_wait_that_times_out_finishes_with_the_reason(world, run_jobs, quick_checks):
    contact = world.contacts(1)[0]
    _busy(world, run_jobs, [contact])
    [cb] = world.fire([contact], _waiting(world, days=4 / 86400), workflow_id=2)  # 4 seconds
    assert world.admin.callback(cb)["outputFields"]["hs_expiration_duration"] == "P2D"
    drain(world, run_jobs, [cb], timeout=60)
    row = world.row(cb)
    assert (row.status, row.failure_code) == ("failed", "WAIT_TIMED_OUT")
    outputs = world.outputs(cb)
    assert outputs["hs_execution_state"] == "FAIL_CONTINUE"
    assert outputs["failure_reason"] == (
        "Contact was still in another sequence when the wait for it to end ran out"
    )
    assert world.enrolled_contacts() == [contact]  # still only its first sequence


def test_an_invalid_wait_is_refused_at_the_door(world):
    contact = world.contacts(1)[0]
    inputs = _waiting(world, days=91)
    [cb] = world.fire([contact], inputs, workflow_id=2)
    assert world.row(cb) is None
    assert world.admin.callback(cb)["status"] != "blocked"


def test_the_sequences_and_analytics_pages_count_the_waiting(
    world, run_jobs, app, monkeypatch, logged_in
):
    monkeypatch.setitem(app.config, "WAIT_CHECK_FIRST", 3600.0)
    busy = world.contacts(3)
    _busy(world, run_jobs, busy)
    world.fire(busy, _waiting(world), workflow_id=2)
    run_jobs()
    for path in ("sequences/", "analytics/"):
        page = logged_in.get(f"/w/{world.workspace_id}/{path}")
        assert page.status_code == 200
        assert "3 waiting for a sequence to end" in page.text.replace(
            "3 executions waiting", "3 waiting"
        )
    world.admin.portal("DELETE", f"/enrollments/{busy[0]}")
    db.session.execute(db.update(Enrollment).values(due_at=utcnow()))
    db.session.commit()
    db.session.remove()
    enrollment_service.drain(world.workspace_id, job_id="drain-test-counts")
    page = logged_in.get(f"/w/{world.workspace_id}/analytics/")
    assert "2 waiting for a sequence to end" in page.text


def test_waiting_checks_do_not_delay_fresh_enrollments(world, run_jobs, app, monkeypatch):
    monkeypatch.setitem(app.config, "WAIT_CHECK_FIRST", 3600.0)
    busy, fresh = world.contacts(8)[:4], world.contacts(8)[4:]
    _busy(world, run_jobs, busy)
    waiting_cbs = world.fire(busy, _waiting(world), workflow_id=2)
    run_jobs()
    assert enrollment_service.waiting_count(world.workspace_id) == 4
    # Every waiting row's check is due now, and four fresh executions arrive.
    db.session.execute(
        db.update(Enrollment)
        .where(Enrollment.wait_until.is_not(None))
        .values(due_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    fresh_cbs = world.fire(fresh, world.direct("team", "ada@acme.test"), workflow_id=3)
    checks_before = _checks(world)
    # A budget of exactly four free slots: all go to the fresh rows, none to checks.
    monkeypatch.setitem(app.config, "HUBSPOT_RATE_LIMIT", (4 + _used(world), 60.0))
    db.session.remove()
    report = enrollment_service.drain(world.workspace_id, job_id="drain-test-fresh-first")
    assert report.enrolled == 4 and report.checked == 0
    assert _checks(world) == checks_before
    assert all(world.row(cb).status == "enrolled" for cb in fresh_cbs)
    assert all(world.row(cb).wait_until is not None for cb in waiting_cbs)


def _used(world) -> int:
    from autoseq.hubspot.ratelimit import RateLimiter
    from autoseq.queue import redis_connection

    limiter = RateLimiter(redis_connection(), 100_000, 60.0)
    return limiter.used(world.portal_id)


def _start_worker(app) -> subprocess.Popen:
    config = {**_worker_config(app), "WAIT_CHECK_FIRST": 1.0, "WAIT_CHECK_MAX": 2.0}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests/actions/worker_proc.py"), json.dumps(config)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_while_enrolling_a_freed_contact_enrolls_it_once(
    world, app, run_jobs, monkeypatch, redis
):
    contact = world.contacts(1)[0]
    _busy(world, run_jobs, [contact])
    monkeypatch.setitem(app.config, "WAIT_CHECK_FIRST", 4.0)  # the burst run returns at once
    [cb] = world.fire([contact], _waiting(world), workflow_id=2)
    run_jobs()
    assert world.row(cb).wait_until is not None
    world.admin.portal("DELETE", f"/enrollments/{contact}")  # its sequence ends at once
    world.admin.faults(latency_ms=1500)  # the enroll call is slow: time to kill the worker
    db.session.execute(db.update(Enrollment).values(due_at=utcnow()))  # the check is due
    db.session.commit()
    # A drain now (the one scheduled waits in RQ's scheduled registry for a scheduler)
    redis.delete(f"{queueing.MARKER_PREFIX}{world.workspace_id}")
    assert enrollment_service.request_drain(world.workspace_id)
    proc = _start_worker(app)
    try:
        # the refused call, then the one made once the contact is free
        assert wait_until(lambda: world.admin.stats()["by_path"].get(ENROLL, 0) >= 3, timeout=30)
    finally:
        if proc.poll() is None:
            _kill_tree(proc.pid)
        proc.wait(10)
    world.admin.faults(latency_ms=0)
    assert wait_until(lambda: len(world.admin.enrollments()) == 1, timeout=10)
    row = world.row(cb)
    assert row.status == "queued" and row.attempts == 2
    enrollment_service.requeue_stuck(older_than=timedelta(0), heartbeat_grace=0)
    drain(world, run_jobs, [cb])
    row = world.row(cb)
    assert row.status == "enrolled"
    assert world.outputs(cb)["hs_execution_state"] == "SUCCESS"
    [current] = world.admin.enrollments()
    assert (current["contactId"], current["sequenceId"]) == (contact, world.sequences["team"].id)
    assert world.admin.stats()["by_path"][ENROLL] == 3  # never sent a fourth time


def test_waiting_checks_spend_a_bounded_share_of_the_budget_with_a_backlog(
    world, run_jobs, app, monkeypatch, capsys
):
    """Measured: the share of the portal's budget spent on checks while a backlog drains, and
    after it, with every waiting row's check always due (checks every 0.1-0.2 s)."""
    busy, fresh = world.contacts(50)[:10], world.contacts(50)[10:]
    _busy(world, run_jobs, busy)
    monkeypatch.setitem(app.config, "WAIT_CHECK_FIRST", 3600.0)
    waiting_cbs = world.fire(busy, _waiting(world), workflow_id=2)
    run_jobs()
    assert enrollment_service.waiting_count(world.workspace_id) == 10
    monkeypatch.setitem(app.config, "WAIT_CHECK_FIRST", 0.1)
    monkeypatch.setitem(app.config, "WAIT_CHECK_MAX", 0.2)
    limit, window = 20, 2.0  # 10 calls a second; checks may take 10% (2 a window)
    monkeypatch.setitem(app.config, "HUBSPOT_RATE_LIMIT", (limit, window))
    db.session.execute(db.update(Enrollment).values(due_at=utcnow()))
    db.session.commit()
    fresh_cbs = world.fire(fresh, world.direct("team", "ada@acme.test"), workflow_id=3)
    time.sleep(window)  # the fire's own calls leave the window
    stats0, checks0 = sum(world.admin.stats()["by_path"].values()), _checks(world)
    started = time.monotonic()
    backlog_done = None
    while time.monotonic() - started < 12.0:
        db.session.remove()
        report = enrollment_service.drain(world.workspace_id, job_id=f"drain-m-{time.time()}")
        db.session.remove()
        if backlog_done is None and all(world.row(cb).status != "queued" for cb in fresh_cbs):
            backlog_done = (
                time.monotonic() - started,
                sum(world.admin.stats()["by_path"].values()) - stats0,
                _checks(world) - checks0,
            )
        time.sleep(min(max(report.next_in or 0.05, 0.05), 1.0))
    elapsed = time.monotonic() - started
    calls = sum(world.admin.stats()["by_path"].values()) - stats0
    checks = _checks(world) - checks0
    assert backlog_done is not None, "the backlog of 40 did not drain in 12 s"
    budget = limit * elapsed / window
    with capsys.disabled():
        print(
            f"\nbacklog of 40 drained in {backlog_done[0]:.1f} s: {backlog_done[1]} calls, "
            f"{backlog_done[2]} checks ({backlog_done[2] / max(1, backlog_done[1]):.1%} of calls)"
            f"\nwhole run {elapsed:.1f} s: {calls} calls, {checks} checks = "
            f"{checks / budget:.1%} of the portal's budget ({budget:.0f} slots; share 10%)"
        )
    assert checks <= 0.1 * limit * (elapsed / window + 1)  # within the share (one window slack)
    assert checks >= 1  # and checks did go on once the backlog was done
    assert all(world.row(cb).status == "enrolled" for cb in fresh_cbs)
    assert all(world.row(cb).wait_until is not None for cb in waiting_cbs)
