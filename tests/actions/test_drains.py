"""A drain and its portal's budget: it waits for the next slot itself when no other job wants
the worker, and hands over to a delayed successor when one does (issue 12: fair, and no budget
left idle while a successor waits for RQ's scheduler)."""

from __future__ import annotations

import time

import pytest

from autoseq.extensions import db
from autoseq.queue import delayed_job_ids, enqueue, get_queue
from autoseq.services import enrollment as enrollment_service
from autoseq.services.enrollment import queueing

LIMIT, WINDOW = 4, 1.0  # 4 calls a second


@pytest.fixture
def backlog(world, app, redis, monkeypatch):
    """Ten queued rows in a portal allowed 4 calls a second; the endpoint's drain job taken out
    of the queue (the test runs the drain itself)."""
    monkeypatch.setitem(app.config, "HUBSPOT_RATE_LIMIT", (LIMIT, WINDOW))
    monkeypatch.setitem(app.config, "CALLBACK_FLUSH_DELAY", 30.0)  # completions out of the way
    callbacks = world.fire(world.contacts(10), world.direct("team", "ada@acme.test"))
    get_queue("enrollments", redis).empty()
    time.sleep(WINDOW)
    db.session.remove()
    return callbacks


def test_with_no_job_waiting_a_drain_waits_for_its_portals_slots_itself(world, backlog):
    started = time.monotonic()
    report = enrollment_service.drain(world.workspace_id, job_id="drain-test-1")
    elapsed = time.monotonic() - started
    # One run enrolled all ten at the budget's pace: 4 at once, then one as each slot freed.
    assert report.enrolled == 10
    assert 1.2 < elapsed < 5.0, elapsed
    assert sorted(world.enrolled_contacts()) == sorted(world.contacts(10))


def test_with_a_job_waiting_a_drain_hands_over_when_its_slots_run_out(world, backlog, redis):
    enqueue("autoseq.jobs.system.record_heartbeat", queue="enrollments")  # another portal's turn
    started = time.monotonic()
    report = enrollment_service.drain(world.workspace_id, job_id="drain-test-2")
    assert time.monotonic() - started < 1.0  # it did not sleep on its budget
    assert report.enrolled == LIMIT
    assert report.next_in is not None and 0 < report.next_in <= WINDOW
    # Its successor waits outside RQ's whole-second registry, for when slots free again.
    successor = queueing.drain_pending(world.workspace_id)
    assert successor in delayed_job_ids("enrollments", within=WINDOW + 0.1)
    assert len(world.enrolled_contacts()) == LIMIT
