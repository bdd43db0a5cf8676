"""The hourly tick that requests the daily sync, and ``flask sync``."""

from __future__ import annotations

import itertools
from datetime import timedelta

from autoseq.extensions import db
from autoseq.jobs.schedule import PERIODIC_JOBS
from autoseq.jobs.sync import sync_due_workspaces
from autoseq.models import HubSpotConnection, SyncRun
from autoseq.models.base import utcnow
from autoseq.queue import get_queue
from autoseq.services import accounts

_portal = itertools.count(500001)


def connected(user, name, status="connected", last_ok_hours=None):
    ws = accounts.create_workspace(user, name)
    db.session.add(HubSpotConnection(workspace_id=ws.id, portal_id=next(_portal), status=status))
    if last_ok_hours is not None:
        at = utcnow() - timedelta(hours=last_ok_hours)
        db.session.add(
            SyncRun(
                workspace_id=ws.id,
                trigger="daily",
                status="succeeded",
                started_at=at,
                finished_at=at,
            )
        )
    db.session.commit()
    return ws.id


def requested(ws_id) -> int:
    return db.session.scalar(
        db.select(db.func.count())
        .select_from(SyncRun)
        .filter_by(workspace_id=ws_id, trigger="daily")
        .where(SyncRun.status == "queued")
    )


def test_the_tick_is_scheduled_hourly():
    tick = next(p for p in PERIODIC_JOBS if p.func == "autoseq.jobs.sync.sync_due_workspaces")
    assert tick.interval == 3600


def test_tick_requests_never_synced_and_day_old_workspaces_only(user):
    never = connected(user, "Never")
    old = connected(user, "Old", last_ok_hours=25)
    fresh = connected(user, "Fresh", last_ok_hours=2)
    broken = connected(user, "Broken", status="needs_reconnect")
    ws_ids = sync_due_workspaces()
    assert len(ws_ids) == 2
    assert (requested(never), requested(old), requested(fresh), requested(broken)) == (1, 1, 0, 0)


def test_a_doubled_tick_enqueues_once(user):
    ws = connected(user, "Due")
    first = sync_due_workspaces()
    second = sync_due_workspaces()
    assert len(first) == 1 and second == []
    assert requested(ws) == 1
    assert get_queue("sync").count == 1


def test_a_tick_spreads_load_oldest_first(user):
    oldest = connected(user, "Oldest", last_ok_hours=80)
    never = connected(user, "Never")
    connected(user, "Old", last_ok_hours=30)
    sync_due_workspaces(limit=2)
    assert requested(never) == 1 and requested(oldest) == 1
    assert get_queue("sync").count == 2


def test_flask_sync_requests_a_workspace_sync(runner, user):
    ws = connected(user, "CLI")
    result = runner.invoke(args=["sync", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    run = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=ws))
    assert run.trigger == "cli" and run.status == "queued"
    assert f"run {run.id}" in result.output


def test_flask_sync_needs_a_workspace_or_all(runner):
    result = runner.invoke(args=["sync"])
    assert result.exit_code != 0 and "--workspace ID or --all" in result.output
