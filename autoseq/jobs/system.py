"""Operational jobs."""

from __future__ import annotations

import logging

from .. import queue
from ..extensions import db
from ..models import Heartbeat

log = logging.getLogger(__name__)


def record_heartbeat() -> int:
    """Write a heartbeat row; returns its id. Safe to run twice (one row per job id)."""
    job_id = queue.current_job_id() or "manual"
    existing = db.session.scalar(db.select(Heartbeat).filter_by(job_id=job_id))
    if existing:
        return existing.id
    beat = Heartbeat(job_id=job_id, worker=queue.current_worker_name())
    db.session.add(beat)
    db.session.commit()
    log.info("heartbeat %s recorded", job_id)
    return beat.id
