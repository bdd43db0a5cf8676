"""Sync jobs (queue "sync"): one workspace's sync, and the hourly tick that requests due ones."""

from __future__ import annotations

import logging

from .. import queue
from ..services import sync as sync_service

log = logging.getLogger(__name__)


def sync_workspace(workspace_id: int, trigger: str = "manual", sync_run_id: int | None = None):
    """Sync one workspace with HubSpot; progress goes to ``job.meta``; returns the run id.

    Without ``sync_run_id`` (an older caller enqueuing directly), the job joins a queued or
    running sync of the workspace instead of starting a second one.
    """
    job_id = queue.current_job_id()
    if sync_run_id is None:
        current = sync_service.active_run(workspace_id)
        if current is not None and (job_id is None or current.job_id != job_id):
            log.info("sync of workspace %s already queued as run %s", workspace_id, current.id)
            return current.id

    run = sync_service.run_sync(
        workspace_id, trigger=trigger, sync_run_id=sync_run_id, progress=queue.progress_reporter()
    )
    return run.id if run is not None else None


def recover_interrupted_syncs() -> list[int]:
    """Periodic (every 30 s): a sync whose worker died is failed and asked for again, so it
    finishes within about a minute of the crash (the worker's heartbeat stops after 15 s)."""
    return [run.id for run in sync_service.recover_interrupted()]


def sync_due_workspaces(limit: int | None = None) -> list[int]:
    """The hourly tick: request a sync of every connected workspace not synced for 24 h.

    Safe to run late, twice or not at all: a workspace is due only by its last successful sync,
    and a request joins the queued or running sync of that workspace.
    """
    runs = sync_service.request_due_syncs(limit=limit)
    log.info("sync tick: %s workspaces due", len(runs))
    return [run.id for run in runs]
