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
