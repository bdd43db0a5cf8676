"""Enrollment jobs (queue "enrollments", drained before "sync")."""

from __future__ import annotations

from datetime import timedelta

from ..services import enrollment


def drain_workspace(workspace_id: int) -> dict:
    """Enroll the workspace's due rows and complete its finished callbacks, within its portal's
    rate budget; the drain schedules its own successor when work remains."""
    return enrollment.drain(workspace_id).__dict__


def requeue_stuck_enrollments(seconds: int = 20) -> int:
    """Periodic: take back the rows of dead drains; ask for a drain where work waits without one.

    A drain whose worker died has no heartbeat after 15 s; with this running every 15 s, its rows
    run again within a minute.
    """
    return enrollment.requeue_stuck(timedelta(seconds=seconds))


# Jobs of the one-job-per-contact pipeline still in Redis at the deploy that brings the drains:
# each asks for its workspace's drain instead (the row, not the job, carries the work).


def enroll_contact(enrollment_id: int) -> bool:
    """Old job name: ask for the drain of the enrollment's workspace."""
    from ..extensions import db
    from ..models import Enrollment

    row = db.session.get(Enrollment, enrollment_id)
    return row is not None and enrollment.request_drain(row.workspace_id)


def complete_callbacks(workspace_id: int) -> bool:
    """Old job name: ask for the workspace's drain (it completes the callbacks)."""
    return enrollment.request_drain(workspace_id)
