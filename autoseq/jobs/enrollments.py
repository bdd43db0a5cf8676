"""Enrollment jobs (queue "enrollments", drained before "sync")."""

from __future__ import annotations

import logging
from datetime import timedelta

from rq import get_current_job

from ..services import enrollment

log = logging.getLogger(__name__)


def enroll_contact(enrollment_id: int) -> str | None:
    """Enroll the contact of one recorded execution and complete its callback.

    A transient HubSpot failure raises, so RQ retries the job with the queue's backoff; on the
    last retry the enrollment is failed (and the workflow told) instead of left hanging.
    """
    job = get_current_job()
    final = job is None or not job.retries_left
    try:
        return enrollment.process_enrollment(enrollment_id, final_attempt=final)
    except enrollment.Transient as exc:
        log.warning(
            "enrollment %s: HubSpot transient failure, will retry (job %s): %s",
            enrollment_id,
            job.id if job else "-",
            exc,
        )
        raise


def complete_callbacks(workspace_id: int) -> int:
    """Complete the workspace's finished callbacks in batches (HubSpot's batch endpoint).

    A 5xx or 429 raises, so RQ retries the flush with its backoff; the last retry gives up on the
    batch (the sweep asks for another flush later while HubSpot still waits).
    """
    job = get_current_job()
    final = job is None or not job.retries_left
    return enrollment.flush_callbacks(workspace_id, final_attempt=final)


def requeue_stuck_enrollments(seconds: int = 20) -> int:
    """Periodic: re-enqueue enrollments left queued with no live job; flush uncompleted ones.

    A job whose worker died has no heartbeat after 15 s; a row is looked at once it has not
    moved for ``seconds``: with this running every 15 s, a lost job runs again within a minute.
    """
    return enrollment.requeue_stuck(timedelta(seconds=seconds))
