"""The per-workspace Redis locks behind "one sync at a time"."""

from __future__ import annotations

from autoseq.services.sync import _RedisLock


def test_a_held_lock_refuses_a_second_holder_until_released(redis):
    first, second = _RedisLock("t:lock", 60), _RedisLock("t:lock", 60)
    assert first.acquire() and not second.acquire()
    second.release()  # not the holder: changes nothing
    assert not second.acquire()
    first.release()
    assert second.acquire()


def test_renewing_pushes_the_expiry_back_only_for_the_holder(redis):
    holder, other = _RedisLock("t:lock", 300), _RedisLock("t:lock", 300)
    assert holder.acquire()
    redis.expire("t:lock", 5)
    other.renew()
    assert redis.ttl("t:lock") <= 5
    holder.renew()
    assert redis.ttl("t:lock") > 290


def test_a_run_whose_job_vanished_is_failed_and_a_new_one_starts(app, workspace):
    from autoseq.extensions import db
    from autoseq.models import SyncRun
    from autoseq.queue import get_queue
    from autoseq.services.sync import request_sync

    ghost = SyncRun(workspace_id=workspace.id, trigger="manual", status="running", job_id="gone")
    db.session.add(ghost)
    db.session.commit()
    run = request_sync(workspace.id, "manual")
    db.session.refresh(ghost)
    assert run.id != ghost.id and run.status == "queued"
    assert ghost.status == "failed" and "interrupted" in ghost.error
    job = get_queue("sync").fetch_job(run.job_id)
    assert job.timeout == app.config["SYNC_JOB_TIMEOUT"]


def _ghost(workspace_id, trigger="stale"):
    """A run "running" whose job is gone (its worker was killed), the workspace's only one."""
    from autoseq.extensions import db
    from autoseq.models import SyncRun
    from autoseq.models.base import utcnow

    for run in db.session.scalars(db.select(SyncRun).filter_by(workspace_id=workspace_id)):
        run.status, run.finished_at = "succeeded", utcnow()
    ghost = SyncRun(workspace_id=workspace_id, trigger=trigger, status="running", job_id="gone")
    db.session.add(ghost)
    db.session.commit()
    return ghost


def test_an_interrupted_sync_is_asked_for_again_and_its_lock_freed(connected_workspace, redis):
    from autoseq.extensions import db
    from autoseq.services.sync import INTERRUPTED, _RedisLock, recover_interrupted

    ghost = _ghost(connected_workspace.id)
    key = f"autoseq:sync:{connected_workspace.id}:running"
    assert _RedisLock(key, 600, token=f"run-{ghost.id}").acquire()  # left by the killed worker
    [again] = recover_interrupted()
    db.session.refresh(ghost)
    assert (ghost.status, ghost.error) == ("failed", INTERRUPTED)
    assert (again.trigger, again.status) == ("stale", "queued")
    assert redis.get(key) is None  # the dead run's lock is gone; the new run can take it
    assert recover_interrupted() == []  # the new run is queued and alive: left alone


def test_a_workspace_whose_syncs_keep_dying_waits_for_its_daily_sync(connected_workspace):
    from autoseq.extensions import db
    from autoseq.models import SyncRun
    from autoseq.models.base import utcnow
    from autoseq.services.sync import INTERRUPTED, recover_interrupted

    for _ in range(3):
        db.session.add(
            SyncRun(
                workspace_id=connected_workspace.id,
                trigger="daily",
                status="failed",
                error=INTERRUPTED,
                finished_at=utcnow(),
            )
        )
    ghost = _ghost(connected_workspace.id, "daily")
    assert recover_interrupted() == []
    db.session.refresh(ghost)
    assert ghost.status == "failed"
    active = db.select(SyncRun).where(SyncRun.status.in_(("queued", "running")))
    assert db.session.scalars(active).all() == []
