"""The RQ worker class AutoSeq runs: jobs in the worker process itself, each in an app context."""

from __future__ import annotations

import contextlib
import threading

from flask import Flask
from redis.exceptions import RedisError
from rq.worker import SimpleWorker

from ..extensions import db
from . import ALIVE_BEAT, ALIVE_PREFIX, ALIVE_TTL


class AutoSeqWorker(SimpleWorker):
    """An RQ 2 worker that runs each job in its own process, inside a fresh Flask app context.

    Why not RQ's default fork per job: a forked work horse starts with none of SQLAlchemy's compiled
    statements and a new connection pool, so every job paid ~140 ms of CPU recompiling the same
    SQL (bench/bench_action.py measured 42% of the HubSpot budget used with a fork per job against
    91% without). Jobs here are short, take ids and commit their own work, so the isolation a fork
    buys is not worth that. Timeouts still apply (SIGALRM); SIGTERM lets the current job finish,
    a second one stops it; a job lost with its process is found again by RQ's registries and by
    the enrollment sweep.
    """

    app: Flask | None = None

    def perform_job(self, job, queue):
        with self._beating(job.id):
            if self.app is None:
                return super().perform_job(job, queue)
            with self.app.app_context():
                try:
                    return super().perform_job(job, queue)
                finally:
                    db.session.remove()

    @contextlib.contextmanager
    def _beating(self, job_id: str):
        """Renew the job's alive key from a thread while it runs: a killed worker stops beating,
        and the enrollment sweep re-enqueues its job ALIVE_TTL seconds later, not after the job's
        whole timeout."""
        key = ALIVE_PREFIX + job_id
        stop = threading.Event()

        def beat():
            while True:
                with contextlib.suppress(RedisError):
                    self.connection.set(key, self.name, ex=ALIVE_TTL)
                if stop.wait(ALIVE_BEAT):
                    return

        thread = threading.Thread(target=beat, name=f"beat-{job_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=2)
            with contextlib.suppress(RedisError):
                self.connection.delete(key)
