"""The queue floor: the only module that imports RQ (and rq-scheduler) or knows its Redis keys.

Everything above speaks in dotted job names, job ids and plain dicts: queues and their defaults
(:data:`QUEUES`), :func:`enqueue` (now or after a delay), a job's state and progress meta, the
current job's retry budget, due retries moved by hand when no RQ scheduler is on duty, worker
heartbeats (:class:`Worker`), the periodic schedule (:class:`PeriodicScheduler`) and one lock idiom
(:class:`Lock`). Upgrading RQ touches this file.

Jobs are plain functions that take ids, load what they need, call a service and commit. They are
enqueued by dotted name (``enqueue("autoseq.jobs.sync.sync_workspace", ...)``) so that the web
process never imports worker-only code, and a job can be enqueued before the module that defines
it is deployed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.utils import current_timestamp
from rq.worker import SimpleWorker
from rq_scheduler import Scheduler

from .extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    timeout: int  # seconds a job may run before the worker kills it
    result_ttl: int  # seconds a finished job's result is kept
    failure_ttl: int  # seconds a failed job stays in the failed registry
    retry: tuple[int, tuple[int, ...]] | None  # (max retries, backoff intervals)


# Listed in priority order: a worker drains enrollments before it starts a sync. Enrollment
# drains retry by themselves (the row keeps its own backoff), so their queue has no RQ retry.
QUEUES: dict[str, QueueSpec] = {
    "enrollments": QueueSpec("enrollments", 120, 600, 7 * 24 * 3600, None),
    "sync": QueueSpec("sync", 30 * 60, 24 * 3600, 7 * 24 * 3600, None),
    "default": QueueSpec("default", 300, 3600, 7 * 24 * 3600, None),
}
QUEUE_NAMES: tuple[str, ...] = tuple(QUEUES)


# A running job's heartbeat: its worker renews this key every ALIVE_BEAT seconds while the job runs
# (:class:`Worker`). A job STARTED without it for ALIVE_TTL seconds lost its worker.
ALIVE_PREFIX = "autoseq:job-alive:"
ALIVE_TTL = 15  # seconds
ALIVE_BEAT = 5  # seconds


def redis_connection() -> Redis:
    """The app's Redis client (built in the factory, kept in ``app.extensions``)."""
    return current_app.extensions["redis"]


def job_alive(connection: Redis, job_id: str) -> bool:
    """True while the worker running ``job_id`` is beating."""
    return bool(connection.exists(ALIVE_PREFIX + job_id))


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


def retry(max_retries: int, intervals) -> Retry:
    """A retry policy for :func:`enqueue` (``retry=``): ``max_retries`` after ``intervals`` s."""
    return Retry(max=max_retries, interval=list(intervals))


# -- delays kept to the millisecond -------------------------------------------------------------
#
# RQ's scheduled registry counts whole seconds and its scheduler looks once a second, so a job
# delayed by 0.3 s ran on average ~0.5 s late: a drain waiting for its portal's next rate slot left
# the budget idle that long (bench/bench_action.py measured 10.2 enrollments/s of 11). A delay of
# up to SOON seconds is kept here instead: the job (dotted name, arguments, id) in a hash, its due
# time (Redis's clock, ms) in a sorted set, and every worker process moves due ones to the queue
# (:func:`move_due`: a thread sleeping until the next one is due, and before each dequeue). The job
# is created in RQ when it is due; until then :func:`job_state` says "live" for it.

WAKEUP_PREFIX = "autoseq:wakeups:"  # + queue name: sorted set, job id -> due (ms, Redis clock)
WAKEUP_JOBS_PREFIX = "autoseq:wakeup-jobs:"  # + queue name: hash, job id -> the job (JSON)
SOON = 10.0  # seconds: a shorter delay is kept to the millisecond; a longer one goes to RQ
WAKEUP_POLL = 0.5  # seconds: how stale a worker's view of other processes' delays may get
_WAKE = threading.Event()  # set when this process delays a job: its mover looks again

# KEYS: the sorted set, the hash.  ARGV: job id, delay (ms), the job (JSON).
_WAKE_LATER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# KEYS: the sorted set, the hash.  ARGV: at most this many.  Takes the due jobs (each by one caller
# only); answers {ms until the next one is due (-1: none), job, job, ...}.
_TAKE_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local out = {'-1'}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local job = redis.call('HGET', KEYS[2], id)
    redis.call('HDEL', KEYS[2], id)
    if job then out[#out + 1] = job end
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then out[1] = tostring(math.max(0, tonumber(nxt[2]) - now)) end
return out
"""


def _wake_later(connection: Redis, queue: str, func: str, args, kwargs, job_id, delay) -> str:
    job_id = job_id or secrets.token_hex(16)
    payload = json.dumps({"func": func, "args": list(args), "kwargs": kwargs, "id": job_id})
    connection.eval(
        _WAKE_LATER,
        2,
        WAKEUP_PREFIX + queue,
        WAKEUP_JOBS_PREFIX + queue,
        job_id,
        int(delay * 1000),
        payload,
    )
    _WAKE.set()
    return job_id


def move_due(connection: Redis, queue_names=QUEUE_NAMES) -> tuple[int, float | None]:
    """Enqueue the delayed jobs (:data:`SOON`) whose time has come; (how many, seconds until the
    next one is due or None)."""
    moved, next_in = 0, None
    for name in queue_names:
        answer = connection.eval(_TAKE_DUE, 2, WAKEUP_PREFIX + name, WAKEUP_JOBS_PREFIX + name, 50)
        wait_ms = float(answer[0])
        if wait_ms >= 0:
            next_in = wait_ms / 1000 if next_in is None else min(next_in, wait_ms / 1000)
        for raw in answer[1:]:
            job = json.loads(raw)
            spec = QUEUES[name]
            Queue(name, connection=connection, default_timeout=spec.timeout).enqueue_call(
                job["func"],
                args=job["args"],
                kwargs=job["kwargs"],
                job_id=job["id"],
                timeout=spec.timeout,
                result_ttl=spec.result_ttl,
                failure_ttl=spec.failure_ttl,
            )
            moved += 1
    return moved, next_in


def delayed_job_ids(queue_name: str, within: float) -> list[str]:
    """Ids of the jobs of ``queue_name`` delayed to at most ``within`` seconds from now (RQ's
    scheduled registry and the precise delays)."""
    connection = redis_connection()
    registry = ScheduledJobRegistry(queue=get_queue(queue_name))
    ids = list(registry.get_jobs_to_schedule(int(time.time() + within)))
    now_s, now_us = connection.time()
    horizon = now_s * 1000 + now_us / 1000 + within * 1000
    ids += [
        job_id.decode() if isinstance(job_id, bytes) else job_id
        for job_id in connection.zrangebyscore(WAKEUP_PREFIX + queue_name, "-inf", horizon)
    ]
    return ids


def jobs_waiting(queue_name: str) -> int:
    """Jobs queued for a worker now (none of them has one yet)."""
    return int(redis_connection().llen(Queue.redis_queue_namespace_prefix + queue_name))


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
    waits in RQ's scheduled registry until then (a worker's RQ scheduler moves it to the queue, or
    :func:`enqueue_due` when none is on duty).
    """
    spec = QUEUES[queue]
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in _ENQUEUE_OPTIONS}
    if delay and 0 < delay <= SOON and not options:
        return _wake_later(redis_connection(), queue, func, args, kwargs, job_id, delay)
    if "retry" not in options and spec.retry:
        options["retry"] = retry(*spec.retry)
    options.setdefault("result_ttl", spec.result_ttl)
    options.setdefault("failure_ttl", spec.failure_ttl)
    options.setdefault("timeout", spec.timeout)
    if delay and delay > 0:
        return get_queue(queue).enqueue_in(
            timedelta(seconds=delay), func, args=args, kwargs=kwargs, job_id=job_id, **options
        )
    return get_queue(queue).enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id, **options)


# -- the job that is running -----------------------------------------------------------------


def current_job_id() -> str | None:
    job = get_current_job()
    return job.id if job is not None else None


def current_worker_name() -> str | None:
    job = get_current_job()
    return job.worker_name if job is not None else None


def is_final_attempt() -> bool:
    """True when RQ will not retry the running job again (or no job is running)."""
    job = get_current_job()
    return job is None or not job.retries_left


def progress_reporter():
    """A function merging a dict into the running job's progress meta (read back with
    :func:`job_meta`); bound to the job now, so it may be called from the job's threads."""
    job = get_current_job()

    def report(meta: dict) -> None:
        if job is not None:
            job.meta.update(meta)
            job.save_meta()

    return report


# -- any job, by id ----------------------------------------------------------------------------

LIVE_STATUSES = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
ENDED_STATUSES = ("failed", "stopped", "canceled", "finished")


def job_meta(job_id: str | None) -> dict:
    """A job's progress meta; empty when the job is unknown (expired, or Redis lost it)."""
    if not job_id:
        return {}
    try:
        return dict(Job.fetch(job_id, connection=redis_connection()).meta or {})
    except NoSuchJobError:
        return {}


def job_status(job_id: str) -> str | None:
    """RQ's status of a job (``queued``, ``started``, ``finished``, ...), None when unknown."""
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=False)
    return None if status is None else str(getattr(status, "value", status))


def job_state(job_id: str | None, heartbeat_grace: float | None = None) -> str:
    """``live`` (waiting, or running and heartbeating), ``dead`` (exists, done or abandoned) or
    ``absent``.

    A running job is live while its worker renews the job's alive key (every 5 s, 15 s TTL), or
    for the key's first 15 s. ``heartbeat_grace`` instead judges it by RQ's own timestamps (tests
    that have just killed a worker pass 0).
    """
    if not job_id:
        return "absent"
    connection = redis_connection()
    try:
        job = Job.fetch(job_id, connection=connection)
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        if any(connection.zscore(WAKEUP_PREFIX + name, job_id) is not None for name in QUEUES):
            return "live"  # delayed to the millisecond (:func:`move_due`): created when due
        return "absent"
    if status in LIVE_STATUSES:
        return "live"
    if status == JobStatus.STARTED:
        if heartbeat_grace is None and job_alive(connection, job_id):
            return "live"
        grace = ALIVE_TTL if heartbeat_grace is None else heartbeat_grace
        beat = job.last_heartbeat or job.started_at
        if beat is None:
            return "live"
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        if datetime.now(UTC) - beat < timedelta(seconds=grace):
            return "live"
    return "dead"


def enqueue_due(queue_name: str) -> int:
    """Move jobs whose delay is over to their queue: the precise delays (:func:`move_due`), and
    RQ's scheduled registry's.

    RQ keeps a longer delayed job (a retry's backoff) in its scheduled registry until a worker
    running RQ's scheduler moves it; when no such worker holds the queue's scheduler lock, this
    does it (the enrollment sweep calls it), so nothing is stranded. Returns how many were moved.
    """
    connection = redis_connection()
    moved, _ = move_due(connection, (queue_name,))
    if connection.exists(RQScheduler.get_locking_key(queue_name)):
        return moved  # a worker's RQ scheduler is on duty
    queue = get_queue(queue_name)
    registry = ScheduledJobRegistry(queue=queue)
    job_ids = registry.get_jobs_to_schedule(current_timestamp())
    if not job_ids:
        return moved
    with connection.pipeline() as pipeline:
        for job in Job.fetch_many(job_ids, connection=connection):
            if job is not None:
                queue._enqueue_job(job, pipeline=pipeline, at_front=job.should_enqueue_at_front())
        for job_id in job_ids:
            registry.remove(job_id, pipeline=pipeline)
        pipeline.execute()
    log.info("moved %d due jobs of queue %s", len(job_ids), queue_name)
    return moved + len(job_ids)


# -- one lock idiom ----------------------------------------------------------------------------

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lock:
    """SET NX EX lock with a token, released (or renewed) only by its holder.

    Also the idiom of a "one of these at a time" marker: ``Lock(key, ttl, token=job_id)`` holds
    the key while that job is pending, and :meth:`holder` says which job holds it.
    """

    def __init__(self, key: str, ttl: int, token: str | None = None, redis: Redis | None = None):
        self.key, self.ttl = key, ttl
        self.token = token or secrets.token_hex(8)
        self.redis = redis or redis_connection()

    def acquire(self, wait: float = 0.0) -> bool:
        deadline = time.monotonic() + wait
        while True:
            if self.redis.set(self.key, self.token, nx=True, ex=self.ttl):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def release(self) -> bool:
        return bool(self.redis.eval(_RELEASE, 1, self.key, self.token))

    def renew(self) -> bool:
        """Push the expiry back to a full TTL, if the lock is still ours."""
        return bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl))

    def holder(self) -> str | None:
        value = self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


# -- the worker process ------------------------------------------------------------------------


class Worker(SimpleWorker):
    """An RQ 2 worker that runs each job in its own process, inside a fresh Flask app context.

    Why not RQ's default fork per job: a forked work horse starts with none of SQLAlchemy's compiled
    statements and a new connection pool, so every job paid ~140 ms of CPU recompiling the same
    SQL (bench/bench_action.py measured 42% of the HubSpot budget used with a fork per job against
    91% without). Jobs here are short, take ids and commit their own work, so the isolation a fork
    buys is not worth that. Timeouts still apply (SIGALRM); SIGTERM lets the current job finish,
    a second one stops it; a job lost with its process is found again by RQ's registries and by
    the enrollment sweep.
    """

    app: Flask | None = None

    def work(self, *args, burst: bool = False, **kwargs):
        """RQ's loop, with a thread moving this worker's queues' precise delays (:func:`move_due`)
        when each is due. A burst worker (tests) moves them only before each dequeue."""
        if burst:
            return super().work(*args, burst=True, **kwargs)
        stop = threading.Event()
        mover = threading.Thread(target=self._move_delayed, args=(stop,), daemon=True)
        mover.start()
        try:
            return super().work(*args, burst=False, **kwargs)
        finally:
            stop.set()
            _WAKE.set()
            mover.join(timeout=2)

    def _move_delayed(self, stop: threading.Event) -> None:
        names = self.queue_names()
        while not stop.is_set():
            _WAKE.clear()
            try:
                _, next_in = move_due(self.connection, names)
            except RedisError:
                next_in = WAKEUP_POLL
            except Exception:  # a malformed delayed job must not stop the moving
                log.exception("moving delayed jobs failed")
                next_in = WAKEUP_POLL
            _WAKE.wait(WAKEUP_POLL if next_in is None else min(next_in, WAKEUP_POLL))

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        with contextlib.suppress(RedisError):
            move_due(self.connection, self.queue_names())  # a burst worker has no time to wait
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def perform_job(self, job, queue):
        with self._beating(job.id):
            if self.app is None:
                return super().perform_job(job, queue)
            with self.app.app_context():
                try:
                    return super().perform_job(job, queue)
                finally:
                    db.session.remove()

    @contextlib.contextmanager
    def _beating(self, job_id: str):
        """Renew the job's alive key from a thread while it runs: a killed worker stops beating,
        and the enrollment sweep takes its work back ALIVE_TTL seconds later, not after the job's
        whole timeout."""
        key = ALIVE_PREFIX + job_id
        stop = threading.Event()

        def beat():
            while True:
                with contextlib.suppress(RedisError):
                    self.connection.set(key, self.name, ex=ALIVE_TTL)
                if stop.wait(ALIVE_BEAT):
                    return

        # The first beat before the job starts: work it claims is never seen without a beat.
        with contextlib.suppress(RedisError):
            self.connection.set(key, self.name, ex=ALIVE_TTL)
        thread = threading.Thread(target=beat, name=f"beat-{job_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=2)
            with contextlib.suppress(RedisError):
                self.connection.delete(key)


def run_worker(app: Flask, queue_names, connection: Redis, **work_options) -> Worker:
    """Build a :class:`Worker` over ``queue_names`` (priority order) and run it."""
    worker = Worker([get_queue(name, connection) for name in queue_names], connection=connection)
    worker.app = app
    worker.work(**work_options)
    return worker


# -- periodic jobs (rq-scheduler) --------------------------------------------------------------

PERIODIC_ID_PREFIX = "periodic-"


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
        return PERIODIC_ID_PREFIX + self.name

    @property
    def fingerprint(self) -> str:
        data = json.dumps(
            [self.func, self.interval, self.queue, self.kwargs, self.at_front],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(data.encode()).hexdigest()[:16]


def reconcile_schedule(connection: Redis, definitions: list[PeriodicJob]) -> dict:
    """Make Redis's schedule match ``definitions``; report what was added, kept, changed, cut."""
    scheduler = Scheduler(connection=connection)
    wanted = {d.job_id: d for d in definitions}
    existing = {
        job.id: job for job in scheduler.get_jobs() if job.id.startswith(PERIODIC_ID_PREFIX)
    }
    report: dict[str, list[str]] = {"added": [], "unchanged": [], "changed": [], "removed": []}
    for job_id, job in existing.items():
        if job_id not in wanted:
            scheduler.cancel(job)
            job.delete()
            report["removed"].append(job_id[len(PERIODIC_ID_PREFIX) :])
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


def missing_from_schedule(connection: Redis, definitions: list[PeriodicJob]) -> list[str]:
    """Names of the periodic jobs absent from the schedule (e.g. Redis came back empty)."""
    key = Scheduler.scheduled_jobs_key
    pipe = connection.pipeline(transaction=False)
    for definition in definitions:
        pipe.zscore(key, definition.job_id)
    return [d.name for d, score in zip(definitions, pipe.execute(), strict=True) if score is None]


def scheduled_times(connection: Redis) -> list[tuple[str, datetime, object]]:
    """(job id, next run, interval) of every periodic job in the schedule."""
    return [
        (job.id, when, job.meta.get("interval"))
        for job, when in Scheduler(connection=connection).get_jobs(with_times=True)
    ]


class PeriodicScheduler(Scheduler):
    """rq-scheduler that puts the periodic jobs back when it finds them missing from Redis.

    Checked each time it takes the lock (every ``interval`` seconds): one pipelined ZSCORE per
    periodic job.
    """

    definitions: list[PeriodicJob] = []

    def enqueue_jobs(self):
        gone = missing_from_schedule(self.connection, self.definitions)
        if gone:
            log.warning("periodic jobs missing from the schedule, reconciling: %s", gone)
            reconcile_schedule(self.connection, self.definitions)
        return super().enqueue_jobs()
