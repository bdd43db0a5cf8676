"""Operational jobs."""

from __future__ import annotations

import logging

from rq import get_current_job

from ..extensions import db
from ..models import Heartbeat

log = logging.getLogger(__name__)


def record_heartbeat() -> int:
    """Write a heartbeat row; returns its id. Safe to run twice (one row per job id)."""
    job = get_current_job()
    job_id = job.id if job else "manual"
    existing = db.session.scalar(db.select(Heartbeat).filter_by(job_id=job_id))
    if existing:
        return existing.id
    beat = Heartbeat(job_id=job_id, worker=job.worker_name if job else None)
    db.session.add(beat)
    db.session.commit()
    log.info("heartbeat %s recorded", job_id)
    return beat.id
