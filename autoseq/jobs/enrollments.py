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


def requeue_stuck_enrollments(minutes: int = 3) -> int:
    """Periodic: re-enqueue enrollments left queued (or uncompleted) with no live job."""
    return enrollment.requeue_stuck(timedelta(minutes=minutes))
