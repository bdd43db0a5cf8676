"""Periodic jobs as data, reconciled with the schedule each time the scheduler starts.

Every definition has a deterministic job id (``periodic-<name>``). ``reconcile`` compares what is
scheduled in Redis with :data:`PERIODIC_JOBS` and adds the new ones, keeps the unchanged ones (so a
restart does not reset their clock), reschedules the changed ones and cancels the removed ones
(:func:`autoseq.queue.reconcile_schedule`). Periodic jobs must be safe to run twice or late: a tick
only does work that is due.
"""

from __future__ import annotations

import json

from redis import Redis

from ..queue import (
    PERIODIC_ID_PREFIX,
    PeriodicJob,
    PeriodicScheduler,
    missing_from_schedule,
    reconcile_schedule,
)

ID_PREFIX = PERIODIC_ID_PREFIX

PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob("heartbeat", "autoseq.jobs.system.record_heartbeat", interval=10 * 60),
    # Every 15 s, ahead of any backlog: work whose drain died runs again within a minute
    # (its heartbeat stops after 15 s; rq-scheduler polls every 5 s).
    PeriodicJob(
        "requeue-stuck-enrollments",
        "autoseq.jobs.enrollments.requeue_stuck_enrollments",
        interval=15,
        queue="enrollments",
        at_front=True,
    ),
    PeriodicJob("sync-tick", "autoseq.jobs.sync.sync_due_workspaces", interval=3600),
    # On the enrollment workers' queue, at the front: the sync workers may all be busy (or dead).
    PeriodicJob(
        "recover-syncs",
        "autoseq.jobs.sync.recover_interrupted_syncs",
        interval=30,
        queue="enrollments",
        at_front=True,
    ),
]


def reconcile(connection: Redis, definitions: list[PeriodicJob] | None = None) -> dict:
    """Make Redis's schedule match ``definitions`` (default :data:`PERIODIC_JOBS`)."""
    return reconcile_schedule(connection, PERIODIC_JOBS if definitions is None else definitions)


def missing(connection: Redis, definitions: list[PeriodicJob] | None = None) -> list[str]:
    """Names of the periodic jobs absent from the schedule (e.g. Redis came back empty)."""
    return missing_from_schedule(connection, PERIODIC_JOBS if definitions is None else definitions)


class ReconcilingScheduler(PeriodicScheduler):
    """rq-scheduler that puts :data:`PERIODIC_JOBS` back when it finds them missing from Redis."""

    definitions = PERIODIC_JOBS


def register_cli(app) -> None:
    import click

    @app.cli.command("schedule")
    def schedule_show():
        """Reconcile and print the periodic jobs scheduled in Redis."""
        from ..queue import redis_connection, scheduled_times

        connection = redis_connection()
        click.echo(json.dumps(reconcile(connection)))
        for job_id, when, interval in scheduled_times(connection):
            click.echo(f"{job_id}\tnext {when:%Y-%m-%d %H:%M:%S} UTC\tevery {interval}s")
