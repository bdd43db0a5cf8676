"""Periodic jobs as data, reconciled with rq-scheduler each time the scheduler starts.

Every definition has a deterministic job id (``periodic-<name>``). ``reconcile`` compares what is
scheduled in Redis with :data:`PERIODIC_JOBS` and adds the new ones, keeps the unchanged ones (so a
restart does not reset their clock), reschedules the changed ones and cancels the removed ones.
Periodic jobs must be safe to run twice or late: a tick only does work that is due.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis import Redis
from rq_scheduler import Scheduler

from . import QUEUES

log = logging.getLogger(__name__)
ID_PREFIX = "periodic-"


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: str  # dotted name of the job function
    interval: int  # seconds between runs
    queue: str = "default"
    kwargs: dict = field(default_factory=dict)
    at_front: bool = False  # ahead of the queue's backlog (the sweep must not wait behind it)

    @property
    def job_id(self) -> str:
        return ID_PREFIX + self.name

    @property
    def fingerprint(self) -> str:
        data = json.dumps(
            [self.func, self.interval, self.queue, self.kwargs, self.at_front],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(data.encode()).hexdigest()[:16]


PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob("heartbeat", "autoseq.jobs.system.record_heartbeat", interval=10 * 60),
    # Every 15 s, ahead of any backlog: a job whose worker died runs again within a minute
    # (its heartbeat stops after 15 s; rows still for 20 s are looked at; rq-scheduler polls 5 s).
    PeriodicJob(
        "requeue-stuck-enrollments",
        "autoseq.jobs.enrollments.requeue_stuck_enrollments",
        interval=15,
        queue="enrollments",
        at_front=True,
    ),
    PeriodicJob("sync-tick", "autoseq.jobs.sync.sync_due_workspaces", interval=3600),
]


def reconcile(connection: Redis, definitions: list[PeriodicJob] | None = None) -> dict:
    """Make Redis's schedule match ``definitions``; report what was added, kept, changed, cut."""
    definitions = PERIODIC_JOBS if definitions is None else definitions
    scheduler = Scheduler(connection=connection)
    wanted = {d.job_id: d for d in definitions}
    existing = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(ID_PREFIX)}
    report: dict[str, list[str]] = {"added": [], "unchanged": [], "changed": [], "removed": []}
    for job_id, job in existing.items():
        if job_id not in wanted:
            scheduler.cancel(job)
            job.delete()
            report["removed"].append(job_id[len(ID_PREFIX) :])
    for job_id, definition in wanted.items():
        current = existing.get(job_id)
        if current is not None and current.meta.get("fingerprint") == definition.fingerprint:
            report["unchanged"].append(definition.name)
            continue
        if current is not None:
            scheduler.cancel(current)
            current.delete()
            report["changed"].append(definition.name)
        else:
            report["added"].append(definition.name)
        spec = QUEUES[definition.queue]
        scheduler.schedule(
            scheduled_time=datetime.now(UTC),
            func=definition.func,
            kwargs=definition.kwargs,
            interval=definition.interval,
            repeat=None,
            id=job_id,
            queue_name=definition.queue,
            timeout=spec.timeout,
            # Keep the result longer than the interval, so an overlapping run can see the last one.
            result_ttl=definition.interval * 2,
            meta={"fingerprint": definition.fingerprint},
            at_front=definition.at_front,
        )
    log.info("schedule reconciled: %s", {k: v for k, v in report.items() if v})
    return report


def missing(connection: Redis, definitions: list[PeriodicJob] | None = None) -> list[str]:
    """Names of the periodic jobs absent from the schedule (e.g. Redis came back empty)."""
    definitions = PERIODIC_JOBS if definitions is None else definitions
    key = Scheduler.scheduled_jobs_key
    pipe = connection.pipeline(transaction=False)
    for definition in definitions:
        pipe.zscore(key, definition.job_id)
    return [d.name for d, score in zip(definitions, pipe.execute(), strict=True) if score is None]


class ReconcilingScheduler(Scheduler):
    """rq-scheduler that puts the periodic jobs back when it finds them missing from Redis.

    Checked each time it takes the lock (every ``interval`` seconds): one pipelined ZSCORE per
    periodic job.
    """

    def enqueue_jobs(self):
        gone = missing(self.connection)
        if gone:
            log.warning("periodic jobs missing from the schedule, reconciling: %s", gone)
            reconcile(self.connection)
        return super().enqueue_jobs()


def register_cli(app) -> None:
    import click

    @app.cli.command("schedule")
    def schedule_show():
        """Reconcile and print the periodic jobs scheduled in Redis."""
        from . import redis_connection

        connection = redis_connection()
        click.echo(json.dumps(reconcile(connection)))
        for job, when in Scheduler(connection=connection).get_jobs(with_times=True):
            click.echo(
                f"{job.id}\tnext {when:%Y-%m-%d %H:%M:%S} UTC\tevery {job.meta.get('interval')}s"
            )
