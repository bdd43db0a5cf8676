"""Queueing: the enrollment rows are the queue; one drain per workspace works through them.

- The endpoint commits the row and calls :func:`request_drain`: one Redis ``SET NX`` of the
  workspace's drain marker, and only when it was free, one RQ job. No job per contact.
- :func:`drain` (the job ``autoseq.jobs.enrollments.drain_workspace``) claims due rows in batches
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; the claim ``UPDATE`` is guarded by ``job_id IS NULL``
  everywhere), as many as the portal has rate slots free, enrolls each
  (:mod:`.delivery`), and completes finished callbacks in HubSpot batch calls (:mod:`.callbacks`).
- It never holds a worker on its portal's budget while another drain waits for one: with no slot
  free it waits for the next one itself only when that is under ``SHORT_WAIT`` and no job waits in
  the queue; otherwise it hands over to a successor delayed to when slots free (to the millisecond:
  :func:`autoseq.queue.enqueue`) and returns, so the worker serves other portals. After
  ``DRAIN_SLICE`` seconds of work it also hands over, to the back of the queue, when a job waits
  (and after ``DRAIN_MAX`` in any case).
- :func:`requeue_stuck` (the 15-second sweep) takes back rows claimed by a drain that stopped
  beating (its worker died) and asks for a drain wherever work waits with no live drain (a drain
  lost with Redis). The row, not the job, is the truth: exactly once stays the row's guarantee.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError

from ... import queue
from ...extensions import db
from ...hubspot import errors, ratelimit
from ...hubspot.ratelimit import RateLimiter
from ...models import Enrollment, EnrollmentStatus, RecordExecution, Sequence, Workspace
from ...models.base import utcnow
from ...models.failures import FailureCode
from .. import senders
from . import callbacks, delivery, records, waiting
from .claims import claim_rows
from .outcome import Outcomes

log = logging.getLogger(__name__)

QUEUE = "enrollments"
DRAIN_FUNC = "autoseq.jobs.enrollments.drain_workspace"
MARKER_PREFIX = "autoseq:enrollment-drain:"
MARKER_TTL = 120  # seconds beyond a pending drain's delay; the sweep looks sooner than that
CLAIM_BATCH = 50  # rows claimed per transaction (fewer when fewer slots are free)
DRAIN_SLICE = 5.0  # seconds a drain works before it yields its worker to a waiting job
DRAIN_MAX = 30.0  # seconds a drain works before it hands over anyway (the job timeout is 120 s)
# With no slot free and no job waiting for a worker, a drain waits for its portal's next slot
# itself when it frees within this many seconds: handing over through RQ's scheduled registry
# (whole seconds) woke it ~0.5 s late, 10.2 enrollments/s of 11 (bench_action.py pipeline).
SHORT_WAIT = 1.0
WAKE_SLOTS = 1  # the slots a drain waits for itself
# A drain handing over while other jobs wait comes back when this many slots are free: fewer
# successors (each a job, a client and a session) at a cost of a few slots' idle time per window.
YIELD_SLOTS = 5
CLAIM_AHEAD = 1.0  # seconds of the portal's budget a drain that may wait claims beyond free slots
IDLE_FLUSH_DELAY = 1.0  # seconds completions wait once the workspace has nothing queued
BUSY_GRACE = 15.0  # seconds a portal stays "enrollments waiting" after its drain claimed rows
CALLBACK_RETRY = 5.0  # seconds before completions refused by a 5xx/429 are sent again
CALLBACK_HORIZON = timedelta(hours=23)  # HubSpot forgets a blocked execution after a day


def _marker(workspace_id: int, token: str | None = None, ttl: int = MARKER_TTL) -> queue.Lock:
    return queue.Lock(f"{MARKER_PREFIX}{workspace_id}", ttl, token=token)


def _drain_id(workspace_id: int) -> str:
    return f"drain-{workspace_id}-{int(time.time() * 1000)}-{secrets.token_hex(3)}"


def request_drain(workspace_id: int) -> bool:
    """Make sure a drain of the workspace is pending or running; True when one was enqueued.

    One ``SET NX`` when a drain is already on its way (the common case under load).
    """
    job_id = _drain_id(workspace_id)
    marker = _marker(workspace_id, job_id)
    if not marker.acquire():
        return False
    try:
        queue.enqueue(DRAIN_FUNC, workspace_id, queue=QUEUE, job_id=job_id)
    except RedisError:
        with contextlib.suppress(RedisError):
            marker.release()
        raise
    return True


def _hand_over(workspace_id: int, delay: float) -> str:
    """The running drain schedules its successor (after ``delay`` seconds) and hands it the
    marker."""
    job_id = _drain_id(workspace_id)
    queue.enqueue(DRAIN_FUNC, workspace_id, queue=QUEUE, job_id=job_id, delay=delay)
    marker = _marker(workspace_id, job_id, ttl=int(delay) + MARKER_TTL)
    marker.redis.set(marker.key, job_id, ex=marker.ttl)
    return job_id


def drain_pending(workspace_id: int) -> str | None:
    """The id of the workspace's pending or running drain, if any."""
    return _marker(workspace_id).holder()


# -- claims ---------------------------------------------------------------------------------


def _queued(workspace_id: int):
    return (
        Enrollment.workspace_id == workspace_id,
        Enrollment.status == EnrollmentStatus.QUEUED.value,
    )


def claim(workspace_id: int, job_id: str, limit: int) -> list[Enrollment]:
    """Claim up to ``limit`` due, unclaimed rows of the workspace for ``job_id``, oldest first
    (:func:`.claims.claim_rows`). Waiting rows are left to their checks (spare slots only)."""
    now = utcnow()
    return claim_rows(
        Enrollment,
        due=(
            *_queued(workspace_id),
            Enrollment.wait_until.is_(None),
            db.or_(Enrollment.due_at.is_(None), Enrollment.due_at <= now),
        ),
        still=(
            Enrollment.status == EnrollmentStatus.QUEUED.value,
            Enrollment.wait_until.is_(None),
        ),
        order_by=(Enrollment.id,),
        job_id=job_id,
        limit=limit,
        now=now,
    )


def release_claims(job_id: str) -> int:
    """Give back the rows (and record executions) ``job_id`` claimed and did not finish."""
    released = records.release_claims(job_id)
    result = db.session.execute(
        db.update(Enrollment)
        .where(Enrollment.job_id == job_id, Enrollment.status == EnrollmentStatus.QUEUED.value)
        .values(job_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return (result.rowcount or 0) + released


def _back_off(row: Enrollment) -> float:
    """A transient failure: the row waits out its backoff, unclaimed; the delay in seconds."""
    row.retries = (row.retries or 0) + 1
    delay = delivery.RETRY_BACKOFF[min(row.retries, len(delivery.RETRY_BACKOFF)) - 1]
    row.due_at = utcnow() + timedelta(seconds=delay)
    row.job_id = None
    db.session.commit()
    return float(delay)


def next_due_in(workspace_id: int) -> float | None:
    """Seconds until the workspace's next unclaimed queued row is due (0: now), None if none."""
    count, dated, first = db.session.execute(
        db.select(
            db.func.count(), db.func.count(Enrollment.due_at), db.func.min(Enrollment.due_at)
        ).where(*_queued(workspace_id), Enrollment.job_id.is_(None))
    ).one()
    executions = records.next_due_in(workspace_id)
    if not count:
        return executions
    if count > dated:
        return 0.0
    rows = max(0.0, (first - utcnow()).total_seconds())
    return rows if executions is None else min(rows, executions)


# -- the drain ------------------------------------------------------------------------------


@dataclass
class DrainReport:
    enrolled: int = 0  # rows given an outcome
    completed: int = 0  # callbacks completed
    retried: int = 0  # rows sent back to wait out a transient failure
    checked: int = 0  # waiting rows looked at (is the contact's sequence over?)
    next_in: float | None = None  # seconds until the successor runs; None: the drain ended


def _flush_delay() -> float:
    return float(current_app.config["CALLBACK_FLUSH_DELAY"])


def _limiter() -> RateLimiter:
    return RateLimiter.from_config(current_app.config, queue.redis_connection())


def _client_for(workspace_id: int):
    from ..connections import for_workspace

    # Drains run one after another on the worker's thread: they share its HTTP connections.
    return for_workspace(workspace_id, shared_session=True)


def drain(workspace_id: int, job_id: str | None = None) -> DrainReport:
    """Work through the workspace's due rows and finished callbacks within its portal's budget."""
    job_id = job_id or queue.current_job_id() or _drain_id(workspace_id)
    try:
        client = _client_for(workspace_id)
    except errors.NeedsReconnect:
        return _fail_unreachable(workspace_id, job_id)
    session = db.session()
    # The drain commits once or twice per row (attempts before the call, the outcome after):
    # expiring every loaded object at each commit reloaded the row, its sequence and its sender
    # one SELECT at a time (a third of the drain's CPU in bench_action.py's profile). Claimed rows
    # are ours alone; everything else is looked at afresh for each batch (``_Run.work``).
    session.expire_on_commit = False
    try:
        run = _Run(workspace_id, job_id, client)
        with ratelimit.priority():  # enrollments before syncs inside the portal's budget
            report = run.work()
    finally:
        session.expire_on_commit = True
        release_claims(job_id)
        client.close()
    if report.next_in is None:
        run.limiter.clear_busy(run.portal)
        _end(workspace_id, job_id)
    else:
        _hand_over(workspace_id, report.next_in)
    return report


class _Run:
    """One drain run: claim, enroll, complete, until the budget, the work or the slice ends."""

    def __init__(self, workspace_id: int, job_id: str, client):
        self.workspace_id, self.job_id, self.client = workspace_id, job_id, client
        self.portal = client.portal_id
        self.limiter = _limiter()
        self.delay = _flush_delay()
        self.report = DrainReport()
        self.started = time.monotonic()
        self.check_wait: float | None = None  # the checks' share is spent for this long
        self.out_of_slots: float | None = None  # handing over: the successor's delay
        self._checks: RateLimiter | None = None

    def free_slots(self) -> tuple[int, float]:
        return self.limiter.headroom(self.portal, WAKE_SLOTS)

    def others_waiting(self) -> bool:
        """A job waits for a worker (another portal's drain, most likely)."""
        return queue.jobs_waiting(QUEUE) > 0

    def may_wait(self, wait: float) -> bool:
        """Wait ``wait`` seconds for a slot here rather than hand over: a short wait, nobody
        else wanting the worker, and the run not too long."""
        return (
            wait <= SHORT_WAIT
            and time.monotonic() - self.started < DRAIN_MAX
            and not self.others_waiting()
        )

    def wait_for_slot(self) -> tuple[int, float | None]:
        """(free slots, None), waiting for one here if :meth:`may_wait`; else (0, the delay
        after which the successor should run)."""
        while True:
            free, wait = self.free_slots()
            if free > 0:
                return free, None
            if not self.may_wait(wait):
                if wait <= SHORT_WAIT:  # handing over to a waiting job: come back for a few
                    wait = self.limiter.headroom(self.portal, YIELD_SLOTS)[1]
                return 0, wait
            time.sleep(wait)

    def claim_limit(self, free: int) -> int:
        """Rows to claim: the free slots, plus about CLAIM_AHEAD seconds' worth when the drain
        may wait for those slots itself (fewer rounds of claims, settles and callback checks)."""
        if self.others_waiting():
            return min(free, CLAIM_BATCH)
        ahead = int(self.limiter.limit * CLAIM_AHEAD * 1000 / self.limiter.window_ms)
        return min(free + ahead, CLAIM_BATCH)

    def hand_over_now(self) -> bool:
        elapsed = time.monotonic() - self.started
        return elapsed > DRAIN_MAX or (elapsed > DRAIN_SLICE and self.others_waiting())

    def work(self) -> DrainReport:
        while True:
            free, wait = self.wait_for_slot()
            if free <= 0:
                return self._yield(wait)
            db.session.expire_all()  # what other processes changed (mailboxes, caps) since
            # Deal, company and ticket executions first: each becomes rows claimed just below.
            expanded, expand_wait = records.expand_due(
                self.workspace_id, self.job_id, self.client, min(free, CLAIM_BATCH)
            )
            if expanded:
                free, wait = self.free_slots()
                if free <= 0:
                    records.settle(self.workspace_id)
                    return self._yield(wait)
            rows = claim(self.workspace_id, self.job_id, self.claim_limit(free))
            log.debug("drain %s: %d slots free, %d rows claimed", self.job_id, free, len(rows))
            if rows:
                self.limiter.mark_busy(self.portal, DRAIN_MAX + BUSY_GRACE)
            backoff = self._deliver(rows, free) if rows else None
            checked = 0
            if backoff is None and self.out_of_slots is None and len(rows) < min(free, CLAIM_BATCH):
                # No fresh row left due: the slots it left may check waiting rows.
                checked = self._check_waiting(min(free, CLAIM_BATCH) - len(rows))
            records.settle(self.workspace_id)  # executions whose rows all have an outcome
            if expand_wait is not None:
                backoff = expand_wait if backoff is None else min(backoff, expand_wait)
            callbacks_wait = self._complete_callbacks(busy=bool(rows))
            waits = [w for w in (backoff, callbacks_wait, self.out_of_slots) if w is not None]
            if waits:
                return self._yield(min(waits))
            if not rows and not expanded and not checked:
                next_in = self._next_work_in()
                if next_in is not None and self.check_wait is not None:
                    next_in = max(next_in, self.check_wait)
                return self._yield(next_in)
            if self.hand_over_now():
                return self._yield(0.0)

    def _yield(self, next_in: float | None) -> DrainReport:
        self.report.next_in = next_in
        return self.report

    def _deliver(self, rows: list[Enrollment], free: int) -> float | None:
        """Enroll the claimed rows, each when a slot is free; on a transient failure, the backoff
        to wait (rest unclaimed). Out of slots with others waiting: ``out_of_slots`` is set.
        The outcomes are recorded together when the batch ends (:class:`.outcome.Outcomes`),
        before any row is given back."""
        # Held for the batch: the session's identity map keeps objects only while something
        # refers to them, and each row would otherwise load its workspace and sequence again.
        keep = _preload(self.workspace_id, rows)  # noqa: F841
        outcomes = Outcomes()
        try:
            failed = self._enroll_rows(rows, free, outcomes)
        except Exception:
            _record_anyway(outcomes)
            raise
        outcomes.record()
        db.session.commit()
        if failed is None:
            return None
        self.report.retried += 1
        delay = _back_off(failed)
        release_claims(self.job_id)
        return min(delay, delivery.RETRY_BACKOFF[0])

    def _enroll_rows(self, rows: list[Enrollment], free: int, outcomes: Outcomes):
        """Enroll the rows while slots are free; the row HubSpot failed transiently, or None."""
        cache = senders.SenderCache()  # the batch's sender lookups, read once
        self.out_of_slots = None
        for row in rows:
            if free <= 0:
                free, self.out_of_slots = self.wait_for_slot()
                if free <= 0:
                    return None  # the rest is released when the drain hands over
            free -= 1
            try:
                delivery.deliver(row, self.client, cache, outcomes)
            except delivery.Transient as exc:
                log.warning("enrollment %s: HubSpot transient failure: %s", row.id, exc)
                return row
            self.report.enrolled += 1
        return None

    def _check_waiting(self, spare: int) -> int:
        """Check up to ``spare`` waiting rows, within the checks' share of the budget."""
        if self._checks is None:
            self._checks = waiting.check_limiter()
        allowed, wait = self._checks.headroom(self.portal)
        if allowed <= 0:
            self.check_wait = wait
            return 0
        self.check_wait = None
        rows = waiting.claim(self.workspace_id, self.job_id, min(spare, allowed))
        checked = 0
        for row in rows:
            taken, wait = self._checks.try_acquire(self.portal)
            if taken is None:
                self.check_wait = wait
                break
            waiting.check(row, self.client)
            checked += 1
        self.report.checked += checked
        if checked < len(rows):  # the share had no slot left for these: give them back
            db.session.execute(
                db.update(Enrollment)
                .where(
                    Enrollment.id.in_([row.id for row in rows[checked:]]),
                    Enrollment.job_id == self.job_id,
                )
                .values(job_id=None)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
        return checked

    def _flush_delay(self, busy: bool) -> float:
        """Completions wait ``CALLBACK_FLUSH_DELAY`` for a fuller batch while rows keep coming;
        once the workspace's queue is empty, at most ``IDLE_FLUSH_DELAY``."""
        return self.delay if busy else min(self.delay, IDLE_FLUSH_DELAY)

    def _complete_callbacks(self, busy: bool = True) -> float | None:
        """Send the completions that are due; None to go on, else seconds to wait (no slot)."""
        due_in = callbacks.pending(self.workspace_id).due_in(self._flush_delay(busy))
        if due_in is None or due_in > 0:
            return None
        try:
            self.report.completed += callbacks.flush(
                self.workspace_id, self.client, take_slot=lambda: self.free_slots()[0] > 0
            )
        except callbacks.CallbacksTransient as exc:
            log.warning("callbacks of workspace %s: %s; again later", self.workspace_id, exc)
            return CALLBACK_RETRY
        if callbacks.pending(self.workspace_id).due_in(self._flush_delay(busy)) == 0:
            return self.free_slots()[1]  # the budget ran out mid-way
        return None

    def _next_work_in(self) -> float | None:
        waits = [
            w
            for w in (
                next_due_in(self.workspace_id),
                callbacks.pending(self.workspace_id).due_in(self._flush_delay(False)),
            )
            if w is not None
        ]
        return min(waits) if waits else None


def _record_anyway(outcomes: Outcomes) -> None:
    """The batch failed midway: record the outcomes it has, if the database lets us (else their
    rows stay queued with their attempts counted, and are looked at in HubSpot again)."""
    count = len(outcomes)
    try:
        db.session.rollback()
        outcomes.record()
        db.session.commit()
    except Exception:
        log.exception("%d outcomes not recorded; their rows are checked again", count)
        db.session.rollback()


def _preload(workspace_id: int, rows: list[Enrollment]) -> list:
    sequence_ids = {row.sequence_id for row in rows if row.sequence_id}
    loaded: list = [db.session.get(Workspace, workspace_id)]
    if sequence_ids:
        loaded += db.session.scalars(db.select(Sequence).where(Sequence.id.in_(sequence_ids))).all()
    return loaded


def _end(workspace_id: int, job_id: str) -> None:
    """No work left: give up the marker, then look once more (a row committed while the marker
    still stood asked for no drain)."""
    _marker(workspace_id, job_id).release()
    if _has_work(workspace_id):
        request_drain(workspace_id)


def _has_work(workspace_id: int) -> bool:
    queued = db.session.scalar(
        db.select(Enrollment.id).where(*_queued(workspace_id), Enrollment.job_id.is_(None)).limit(1)
    )
    return (
        queued is not None
        or callbacks.pending(workspace_id).count > 0
        or records.has_work(workspace_id)
    )


def _fail_unreachable(workspace_id: int, job_id: str) -> DrainReport:
    """No connection to call HubSpot with: every due row fails with NEEDS_RECONNECT (the callback
    cannot be completed either; HubSpot's block expires)."""
    report = DrainReport()
    report.enrolled += records.fail_unreachable(workspace_id, job_id)
    while rows := claim(workspace_id, job_id, CLAIM_BATCH):
        outcomes = Outcomes()
        for row in rows:
            delivery.fail_unreachable(row, outcomes)
            report.enrolled += 1
        outcomes.record()
        db.session.commit()
    records.settle(workspace_id)
    _marker(workspace_id, job_id).release()
    return report


# -- the sweep ------------------------------------------------------------------------------


def enqueue_due_retries() -> int:
    """Move delayed drains whose time has come to the queue when no RQ scheduler is on duty."""
    return queue.enqueue_due(QUEUE)


def requeue_stuck(
    older_than: timedelta = timedelta(seconds=20), heartbeat_grace: float | None = None
) -> int:
    """Take back claims of dead drains and ask for a drain wherever work waits without a live
    one; first move delayed drains that are due. Returns how many drains were asked for.

    ``older_than``: a claim is looked at once its row has not moved for that long.
    ``heartbeat_grace``: see :func:`autoseq.queue.job_state` (tests that killed a worker pass 0).
    """
    enqueue_due_retries()
    released = _release_dead_claims(utcnow() - older_than, heartbeat_grace)
    requested = 0
    for workspace_id in _workspaces_with_work():
        holder = drain_pending(workspace_id)
        if holder and queue.job_state(holder, heartbeat_grace) == "live":
            continue
        if holder:
            _marker(workspace_id, holder).release()
        if request_drain(workspace_id):
            requested += 1
    if released or requested:
        log.warning(
            "sweep: %d claims of dead drains taken back, %d drains asked for", released, requested
        )
    return requested


def _release_dead_claims(cutoff: datetime, heartbeat_grace: float | None) -> int:
    job_ids = db.session.scalars(
        db.select(Enrollment.job_id)
        .where(
            Enrollment.status == EnrollmentStatus.QUEUED.value,
            Enrollment.job_id.is_not(None),
            Enrollment.updated_at < cutoff,
        )
        .distinct()
        .limit(1000)
    ).all()
    job_ids = sorted(set(job_ids) | set(records.claimed_job_ids(cutoff)))
    return sum(
        release_claims(job_id)
        for job_id in job_ids
        if queue.job_state(job_id, heartbeat_grace) != "live"
    )


def _workspaces_with_work() -> list[int]:
    queued = db.select(Enrollment.workspace_id).where(
        Enrollment.status == EnrollmentStatus.QUEUED.value
    )
    horizon = datetime.now(UTC) - CALLBACK_HORIZON
    uncompleted = db.select(Enrollment.workspace_id).where(
        Enrollment.execution_id.is_(None),  # a record execution's row: its execution completes
        Enrollment.finished_at.is_not(None),
        Enrollment.callback_completed_at.is_(None),
        Enrollment.callback_error.is_(None),
        db.or_(
            Enrollment.failure_code.is_(None),
            Enrollment.failure_code != FailureCode.NEEDS_RECONNECT,
        ),
        Enrollment.finished_at > horizon,
    )
    executions = records.workspaces_with_work()
    uncompleted_executions = db.select(RecordExecution.workspace_id).where(
        RecordExecution.finished_at.is_not(None),
        RecordExecution.callback_completed_at.is_(None),
        RecordExecution.callback_error.is_(None),
        db.or_(
            RecordExecution.failure_code.is_(None),
            RecordExecution.failure_code != FailureCode.NEEDS_RECONNECT,
        ),
        RecordExecution.finished_at > horizon,
    )
    union = db.union(queued, uncompleted, executions, uncompleted_executions)
    return sorted(set(db.session.scalars(union).all()))
