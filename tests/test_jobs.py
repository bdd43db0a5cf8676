"""The queue path web -> Redis -> worker -> database, and the periodic schedule."""

from __future__ import annotations

import time

from rq_scheduler import Scheduler

from autoseq.extensions import db
from autoseq.jobs.schedule import PERIODIC_JOBS, PeriodicJob, reconcile
from autoseq.models import Heartbeat
from autoseq.queue import QUEUES, enqueue, retry


def test_worker_round_trip_records_a_heartbeat(run_jobs):
    job = enqueue("autoseq.jobs.system.record_heartbeat")
    assert job.timeout == QUEUES["default"].timeout
    run_jobs()
    job.refresh()
    assert job.get_status() == "finished", job.exc_info
    beat = db.session.scalar(db.select(Heartbeat).filter_by(job_id=job.id))
    assert beat is not None and beat.id == job.return_value()


def test_enqueue_defaults_come_from_the_queue_declaration():
    job = enqueue("autoseq.jobs.system.record_heartbeat", queue="enrollments")
    spec = QUEUES["enrollments"]
    assert job.origin == "enrollments"
    assert job.timeout == spec.timeout and job.result_ttl == spec.result_ttl
    # Drains retry rows by themselves (the row's backoff), so the queue declares no RQ retry.
    assert job.failure_ttl == spec.failure_ttl and spec.retry is None and not job.retries_left
    again = enqueue("autoseq.jobs.system.record_heartbeat", queue="sync", retry=retry(2, (1, 5)))
    assert again.retries_left == 2 and again.retry_intervals == [1, 5]


def test_schedule_reconcile_adds_keeps_changes_and_removes(redis):
    first = [
        PeriodicJob("a", "autoseq.jobs.system.record_heartbeat", interval=60),
        PeriodicJob("b", "autoseq.jobs.system.record_heartbeat", interval=120),
    ]
    assert reconcile(redis, first) == {
        "added": ["a", "b"],
        "unchanged": [],
        "changed": [],
        "removed": [],
    }
    second = [
        PeriodicJob("a", "autoseq.jobs.system.record_heartbeat", interval=60),
        PeriodicJob("b", "autoseq.jobs.system.record_heartbeat", interval=300),
        PeriodicJob("c", "autoseq.jobs.system.record_heartbeat", interval=60),
    ]
    report = reconcile(redis, second)
    assert report == {"added": ["c"], "unchanged": ["a"], "changed": ["b"], "removed": []}
    report = reconcile(redis, second[1:])
    assert report["removed"] == ["a"]
    scheduled = {job.id: job for job in Scheduler(connection=redis).get_jobs()}
    assert set(scheduled) == {"periodic-b", "periodic-c"}
    assert scheduled["periodic-b"].meta["interval"] == 300
    assert scheduled["periodic-b"].result_ttl > 300


def test_scheduled_job_runs_on_the_worker_and_twice_is_harmless(redis, run_jobs):
    reconcile(redis, [p for p in PERIODIC_JOBS if p.name == "heartbeat"])
    scheduler = Scheduler(connection=redis)
    scheduler.enqueue_jobs()  # what the scheduler process does on its tick
    run_jobs()
    scheduler.enqueue_jobs()  # a doubled tick: nothing due yet, nothing runs twice
    run_jobs()
    assert db.session.scalar(db.select(db.func.count()).select_from(Heartbeat)) == 1


def test_enqueue_passes_other_keywords_to_the_job():
    job = enqueue("autoseq.jobs.system.record_heartbeat", 7, queue="sync", trigger="connect")
    assert job.args == (7,) and job.kwargs == {"trigger": "connect"}
    assert job.timeout == QUEUES["sync"].timeout


def report_alive() -> bool:
    """A job that says whether its worker is beating for it while it runs."""
    from rq import get_current_job

    from autoseq.queue import job_alive

    job = get_current_job()
    return job_alive(job.connection, job.id)


def test_a_running_job_beats_and_a_started_job_without_beats_is_dead(redis, run_jobs):
    """A killed worker's job is known dead 15 s after its last beat, not after its timeout."""
    from datetime import UTC, datetime, timedelta

    from rq.job import JobStatus

    from autoseq.queue import ALIVE_PREFIX, ALIVE_TTL, job_alive
    from autoseq.queue import job_state as _job_state

    job = enqueue("tests.test_jobs.report_alive")
    run_jobs()
    job.refresh()
    assert job.return_value() is True
    assert not job_alive(redis, job.id)  # gone with the job

    silent = enqueue("autoseq.jobs.system.record_heartbeat", queue="enrollments")
    silent.set_status(JobStatus.STARTED)
    silent.started_at = silent.last_heartbeat = datetime.now(UTC) - timedelta(seconds=ALIVE_TTL + 5)
    silent.save()
    assert _job_state(silent.id) == "dead"
    redis.set(ALIVE_PREFIX + silent.id, "worker", ex=ALIVE_TTL)
    assert _job_state(silent.id) == "live"


def test_the_sweep_runs_often_and_ahead_of_a_backlog():
    sweep = next(j for j in PERIODIC_JOBS if j.name == "requeue-stuck-enrollments")
    assert sweep.interval <= 15 and sweep.at_front and sweep.queue == "enrollments"


def test_a_short_delay_is_kept_to_the_millisecond_and_run_by_a_worker(redis, run_jobs):
    """A delay of up to queue.SOON seconds waits outside RQ (whose scheduled registry counts
    whole seconds): live while it waits, moved to the queue once due and not before, then run."""
    from autoseq.queue import delayed_job_ids, get_queue, job_state, move_due

    job_id = "delayed-heartbeat"
    enqueue("autoseq.jobs.system.record_heartbeat", job_id=job_id, delay=0.4)
    assert job_state(job_id) == "live"  # the sweep must not ask for another
    assert job_id in delayed_job_ids("default", within=1.0)
    assert move_due(redis, ("default",))[0] == 0  # not due yet
    assert get_queue("default", redis).count == 0
    time.sleep(0.45)
    moved, next_in = move_due(redis, ("default",))
    assert (moved, next_in) == (1, None)
    assert get_queue("default", redis).job_ids == [job_id]
    run_jobs()
    beat = db.session.scalar(db.select(Heartbeat).filter_by(job_id=job_id))
    assert beat is not None
