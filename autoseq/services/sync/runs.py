"""Sync runs: requesting one (deduplicated), running it under the workspace's lock, its state, and
the daily schedule."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app

from ...extensions import db
from ...models import (
    ConnectionStatus,
    HubSpotConnection,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from ...models.base import utcnow
from ...queue import Lock, enqueue, job_state, redis_connection
from .fetch import (
    SyncAborted,
    fetch_portal,
)
from .write import (
    load_existing_alongside,
    write_sequences,
    write_users,
    write_workflows,
)

log = logging.getLogger(__name__)

SYNC_JOB = "autoseq.jobs.sync.sync_workspace"
SYNC_INTERVAL = timedelta(hours=24)
# The running lock lives this long unless the sync renews it (each progress report does): a
# worker killed mid-sync blocks the next sync of its workspace for at most this long.
RUN_LOCK_TTL = 10 * 60
REQUEST_LOCK_TTL = 10
STALE_CHECK_TTL = 60
ACTIVE_STATUSES = (SyncStatus.QUEUED.value, SyncStatus.RUNNING.value)
INTERRUPTED = "The sync was interrupted before it finished."
RECOVER_LIMIT = 3  # interrupted syncs a day before a workspace waits for its daily sync


class SyncBusy(Exception):
    """The request lock could not be taken in time (another request holds it)."""


def _run_lock_key(workspace_id: int) -> str:
    return f"autoseq:sync:{workspace_id}:running"


def _request_lock_key(workspace_id: int) -> str:
    return f"autoseq:sync:{workspace_id}:request"


# The one lock idiom (SET NX EX with a token), from the queue floor.
_RedisLock = Lock


def job_id_for(run: SyncRun) -> str:
    """The RQ job id of a sync run: deterministic, so a run is never enqueued twice."""
    return f"sync-ws{run.workspace_id}-run{run.id}"


def active_run(workspace_id: int) -> SyncRun | None:
    """The queued or running sync of the workspace, if one is alive."""
    run = db.session.scalar(
        db.select(SyncRun)
        .where(SyncRun.workspace_id == workspace_id, SyncRun.status.in_(ACTIVE_STATUSES))
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    if run is None:
        return None
    check_run(run)
    return None if run.is_finished else run


def check_run(run: SyncRun) -> SyncRun:
    """Mark a queued/running run failed when its job is gone (so a poller never waits forever)."""
    if not run.is_finished and _is_dead(run):
        db.session.refresh(run)
        if not run.is_finished:
            _finish(run, SyncStatus.FAILED, INTERRUPTED)
            db.session.commit()
            # A worker killed mid-sync leaves the workspace's running lock behind for up to
            # RUN_LOCK_TTL; it is this run's (its token says so), so the next sync need not wait.
            _RedisLock(_run_lock_key(run.workspace_id), RUN_LOCK_TTL, _run_token(run.id)).release()
    return run


def _run_token(sync_run_id: int | None) -> str | None:
    """The running lock's token of a run: known to whoever later finds the run dead."""
    return f"run-{sync_run_id}" if sync_run_id else None


def recover_interrupted(now: datetime | None = None) -> list[SyncRun]:
    """Fail every queued/running sync whose worker died and ask again for each (periodic).

    Without it a sync a killed worker dropped would stay "running" until someone looked at it
    (and, unlooked at, keep its workspace out of the daily tick): the dropdown's stale sync, say,
    would bring a new sequence only after the next check a minute later. A workspace whose syncs
    were interrupted RECOVER_LIMIT times in a day waits for its next daily sync instead, so a
    sync that kills its worker (one too large for its memory, say) is not run in a loop.
    """
    now = now or utcnow()
    asked = []
    active = db.session.scalars(db.select(SyncRun).where(SyncRun.status.in_(ACTIVE_STATUSES)))
    for run in active.all():
        if check_run(run).status != SyncStatus.FAILED.value:
            continue
        interrupted = db.session.scalar(
            db.select(db.func.count())
            .select_from(SyncRun)
            .where(
                SyncRun.workspace_id == run.workspace_id,
                SyncRun.error == INTERRUPTED,
                SyncRun.finished_at > now - timedelta(days=1),
            )
        )
        connection = db.session.scalar(
            db.select(HubSpotConnection).filter_by(workspace_id=run.workspace_id)
        )
        if interrupted > RECOVER_LIMIT or connection is None or not connection.is_connected:
            log.warning("sync run %s was interrupted; not asked again", run.id)
            continue
        try:
            asked.append(request_sync(run.workspace_id, run.trigger, wait=0))
        except SyncBusy:
            continue  # someone is asking for it at this very moment
        log.warning("sync run %s was interrupted; asked again as run %s", run.id, asked[-1].id)
    return asked


def _is_dead(run: SyncRun) -> bool:
    """A queued/running run whose job is gone or ended, or whose worker stopped beating for it
    (a killed worker leaves these behind; RQ itself would notice only after the job's timeout,
    hours for a sync)."""
    if run.job_id is None:
        return utcnow() - run.created_at > timedelta(minutes=1)
    return job_state(run.job_id) != "live"


def request_sync(
    workspace_id: int, trigger: str = SyncTrigger.MANUAL, wait: float = REQUEST_LOCK_TTL
) -> SyncRun:
    """Ask for a sync of the workspace: a new queued run, or the queued/running one to join.

    Race-safe: a short Redis lock makes "look for an active run, else create one and enqueue it"
    atomic across web processes, so two clicks (or a click and a tick) enqueue once. ``wait``:
    how long to wait for that lock before :class:`SyncBusy`.
    """
    lock = _RedisLock(_request_lock_key(workspace_id), REQUEST_LOCK_TTL)
    if not lock.acquire(wait=wait):
        raise SyncBusy(f"could not take the sync request lock of workspace {workspace_id}")
    try:
        db.session.expire_all()
        run = active_run(workspace_id)
        if run is not None:
            return run
        run = SyncRun(workspace_id=workspace_id, trigger=str(SyncTrigger(trigger)), status="queued")
        db.session.add(run)
        db.session.flush()
        run.job_id = job_id_for(run)
        db.session.commit()
        enqueue(
            SYNC_JOB,
            workspace_id,
            run.trigger,
            run.id,
            queue="sync",
            job_id=run.job_id,
            timeout=current_app.config["SYNC_JOB_TIMEOUT"],
        )
        log.info("sync of workspace %s requested (%s): run %s", workspace_id, trigger, run.id)
        return run
    finally:
        lock.release()


def last_success(workspace_id: int) -> datetime | None:
    """When the workspace's last successful sync finished (None: never)."""
    return db.session.scalar(
        db.select(db.func.max(SyncRun.finished_at)).where(
            SyncRun.workspace_id == workspace_id, SyncRun.status == SyncStatus.SUCCEEDED.value
        )
    )


def request_if_stale(workspace_id: int) -> SyncRun | None:
    """Ask for a background sync when the last successful one is older than SYNC_STALE_AFTER.

    Called when HubSpot's workflow editor asks for the sequence options: the answer never waits
    for it (it comes from the database at once), and a sequence created in HubSpot since then is
    offered once the sync finishes. At most one check a minute per workspace (a Redis key), and
    never a second run beside a queued or running one (:func:`request_sync`, without waiting for
    its lock: someone holding it is requesting already).
    """
    redis = redis_connection()
    checked = f"autoseq:sync:{workspace_id}:stale-checked"
    if not redis.set(checked, "1", nx=True, ex=STALE_CHECK_TTL):
        return None
    stale_after = timedelta(seconds=current_app.config["SYNC_STALE_AFTER"])
    last = last_success(workspace_id)
    if last is not None and utcnow() - last < stale_after:
        return None
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=workspace_id)
    )
    if connection is None or not connection.is_connected:
        return None
    try:
        return request_sync(workspace_id, SyncTrigger.STALE, wait=0)
    except SyncBusy:
        return None


def _finish(run: SyncRun, status: SyncStatus, error: str | None = None) -> None:
    run.status = status.value
    run.error = error
    run.finished_at = utcnow()


def _fail(run_id: int, reason: str) -> SyncRun:
    db.session.rollback()
    run = db.session.get(SyncRun, run_id)
    _finish(run, SyncStatus.FAILED, reason)
    db.session.commit()
    log.warning("sync run %s failed: %s", run_id, reason)
    return run


def run_sync(
    workspace_id: int,
    trigger: str = SyncTrigger.MANUAL,
    sync_run_id: int | None = None,
    progress: Callable[[dict], None] | None = None,
    client=None,
) -> SyncRun:
    """Sync one workspace now, in this process; returns its finished :class:`SyncRun`.

    A connection that needs reconnecting ends the run FAILED with that reason and returns (no
    retry storm). Other HubSpot errors end it FAILED and are re-raised so RQ records them.
    """
    from ...hubspot.errors import HubSpotAuthError, HubSpotError, NeedsReconnect

    lock = _RedisLock(_run_lock_key(workspace_id), RUN_LOCK_TTL, token=_run_token(sync_run_id))
    run = db.session.get(SyncRun, sync_run_id) if sync_run_id else None
    if run is not None and run.workspace_id != workspace_id:
        raise ValueError(f"sync run {sync_run_id} is not of workspace {workspace_id}")
    if not lock.acquire():
        reason = "Another sync of this workspace was already running; this one was skipped."
        if run is not None and not run.is_finished:
            _finish(run, SyncStatus.FAILED, reason)
            db.session.commit()
        log.info("sync of workspace %s skipped: one is running", workspace_id)
        return run
    try:
        if run is None:
            run = SyncRun(workspace_id=workspace_id, trigger=str(SyncTrigger(trigger)))
            db.session.add(run)
        if run.is_finished:
            return run
        run.status = SyncStatus.RUNNING.value
        run.started_at = utcnow()
        run.error = None
        db.session.commit()
        run_id = run.id

        connection = db.session.scalar(
            db.select(HubSpotConnection).filter_by(workspace_id=workspace_id)
        )
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            state = "not connected" if connection is None else connection.status.replace("_", " ")
            return _fail(run_id, f"HubSpot is {state}: reconnect HubSpot, then sync again.")
        built: list = []  # the clients built here, closed here (a caller's client is its own)
        started = time.monotonic()
        existing = load_existing_alongside(workspace_id)
        try:
            if client is None:
                from ..connections import for_connection

                workers = current_app.config["SYNC_FETCH_THREADS"]
                built = [for_connection(connection) for _ in range(max(1, workers))]
                client = built[0]
            fetched = fetch_portal(client, _renewing(lock, progress), built[1:])
        except (NeedsReconnect, HubSpotAuthError) as exc:
            return _fail(run_id, f"HubSpot needs reconnecting: {_message(exc)}")
        except SyncAborted as exc:
            return _fail(run_id, exc.reason)
        except HubSpotError as exc:
            _fail(run_id, f"HubSpot answered with an error: {_message(exc)}")
            raise
        finally:
            for c in built:  # slots taken ahead and never used are given back
                c.close()
        fetch_seconds = time.monotonic() - started

        now = utcnow()
        try:
            write_users(workspace_id, fetched.users, now)
            write_workflows(workspace_id, fetched.workflows, now)
            counts = write_sequences(
                workspace_id,
                fetched.sequences,
                now,
                fetched.unreadable_users,
                existing.result(),
            )
            run = db.session.get(SyncRun, run_id)
            run.added, run.updated, run.removed = counts.added, counts.updated, counts.removed
            run.users = sum(1 for r in fetched.users.values() if r["active"])
            _finish(run, SyncStatus.SUCCEEDED)
            db.session.commit()
        except Exception as exc:
            _fail(run_id, f"Saving the sync failed: {exc.__class__.__name__}")
            raise
        if fetched.skipped:
            log.warning("sync run %s skipped %s unreadable records", run_id, fetched.skipped)
        log.info(
            "sync run %s of workspace %s: +%s ~%s -%s, %s users (fetch %.1f s, write %.1f s)",
            run.id,
            workspace_id,
            run.added,
            run.updated,
            run.removed,
            run.users,
            fetch_seconds,
            time.monotonic() - started - fetch_seconds,
        )
        return run
    finally:
        lock.release()


def _renewing(lock: _RedisLock, progress: Callable[[dict], None] | None):
    """A progress callback that also renews the running lock (at most every 30 s)."""
    last = [time.monotonic()]

    def report(meta: dict) -> None:
        now = time.monotonic()
        if now - last[0] > 30:
            last[0] = now
            lock.renew()
        if progress is not None:
            progress(meta)

    return report


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or exc.__class__.__name__


# --------------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------------


def due_workspaces(now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Connected workspaces whose last successful sync is ≥ 24 h old (or never), oldest first."""
    now = now or utcnow()
    last_ok = (
        db.select(SyncRun.workspace_id, db.func.max(SyncRun.finished_at).label("last"))
        .where(SyncRun.status == SyncStatus.SUCCEEDED.value)
        .group_by(SyncRun.workspace_id)
        .subquery()
    )
    busy = db.select(SyncRun.workspace_id).where(SyncRun.status.in_(ACTIVE_STATUSES))
    query = (
        db.select(HubSpotConnection.workspace_id)
        .outerjoin(last_ok, last_ok.c.workspace_id == HubSpotConnection.workspace_id)
        .where(
            HubSpotConnection.status == ConnectionStatus.CONNECTED.value,
            db.or_(last_ok.c.last.is_(None), last_ok.c.last <= now - SYNC_INTERVAL),
            HubSpotConnection.workspace_id.not_in(busy),
        )
        # Never-synced first, then the oldest.
        .order_by(last_ok.c.last.is_not(None), last_ok.c.last, HubSpotConnection.workspace_id)
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def request_due_syncs(now: datetime | None = None, limit: int | None = None) -> list[SyncRun]:
    """Request the daily sync of every due workspace (at most ``limit`` per call)."""
    if limit is None:
        limit = current_app.config["SYNC_MAX_PER_TICK"]
    runs = []
    for workspace_id in due_workspaces(now, limit):
        runs.append(request_sync(workspace_id, SyncTrigger.DAILY))
    return runs
