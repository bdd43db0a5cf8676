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
