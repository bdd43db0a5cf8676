"""RQ queues and enqueue defaults, declared once.

Jobs are plain functions named verb_noun that take ids, load what they need, call a service and
commit. They are enqueued by dotted name (``enqueue("autoseq.jobs.sync.sync_workspace", ...)``) so
that the web process never imports worker-only code, and so that a job can be enqueued before the
module that defines it is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from redis import Redis
from rq import Queue, Retry
from rq.job import Job


@dataclass(frozen=True)
class QueueSpec:
    name: str
    timeout: int  # seconds a job may run before the worker kills it
    result_ttl: int  # seconds a finished job's result is kept
    failure_ttl: int  # seconds a failed job stays in the failed registry
    retry: tuple[int, tuple[int, ...]] | None  # (max retries, backoff intervals)


# Listed in priority order: a worker drains enrollments before it starts a sync.
QUEUES: dict[str, QueueSpec] = {
    "enrollments": QueueSpec("enrollments", 120, 24 * 3600, 7 * 24 * 3600, (5, (5, 30, 120, 600))),
    "sync": QueueSpec("sync", 30 * 60, 24 * 3600, 7 * 24 * 3600, None),
    "default": QueueSpec("default", 300, 3600, 7 * 24 * 3600, None),
}
QUEUE_NAMES: tuple[str, ...] = tuple(QUEUES)


# A running job's heartbeat: its worker renews this key every ALIVE_BEAT seconds while the job runs
# (jobs/worker.py). A job STARTED without it for ALIVE_TTL seconds lost its worker.
ALIVE_PREFIX = "autoseq:job-alive:"
ALIVE_TTL = 15  # seconds
ALIVE_BEAT = 5  # seconds


def job_alive(connection: Redis, job_id: str) -> bool:
    """True while the worker running ``job_id`` is beating."""
    return bool(connection.exists(ALIVE_PREFIX + job_id))


def redis_connection() -> Redis:
    """The app's Redis client (built in the factory, kept in ``app.extensions``)."""
    return current_app.extensions["redis"]


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    spec = QUEUES[name]
    return Queue(
        spec.name, connection=connection or redis_connection(), default_timeout=spec.timeout
    )


# Keywords of :meth:`rq.Queue.enqueue_call` that ``enqueue`` passes to RQ; any other keyword is
# an argument of the job itself (as with RQ's own ``Queue.enqueue``).
_ENQUEUE_OPTIONS = frozenset(
    {
        "timeout",
        "result_ttl",
        "ttl",
        "failure_ttl",
        "description",
        "depends_on",
        "at_front",
        "meta",
        "retry",
        "on_success",
        "on_failure",
        "on_stopped",
        "pipeline",
    }
)


def enqueue(
    func: str,
    *args,
    queue: str = "default",
    job_id: str | None = None,
    delay: float | None = None,
    **kwargs,
) -> Job:
    """Enqueue ``func`` (a dotted name) with the queue's declared defaults.

    Keywords named in ``_ENQUEUE_OPTIONS`` (``retry``, ``timeout``, ``meta``, ...) override the
    queue's defaults; every other keyword is passed to the job. With ``delay`` (seconds) the job
    waits in RQ's scheduled registry until then (a worker's RQ scheduler moves it to the queue).
    """
    spec = QUEUES[queue]
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in _ENQUEUE_OPTIONS}
    if "retry" not in options and spec.retry:
        max_retries, intervals = spec.retry
        options["retry"] = Retry(max=max_retries, interval=list(intervals))
    options.setdefault("result_ttl", spec.result_ttl)
    options.setdefault("failure_ttl", spec.failure_ttl)
    options.setdefault("timeout", spec.timeout)
    if delay:
        return get_queue(queue).enqueue_in(
            timedelta(seconds=delay), func, args=args, kwargs=kwargs, job_id=job_id, **options
        )
    return get_queue(queue).enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id, **options)
