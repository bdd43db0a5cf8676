"""The RQ worker class AutoSeq runs: Heroku-friendly shutdown, app context, fork-safe database."""

from __future__ import annotations

from flask import Flask
from rq.worker import HerokuWorker

from ..extensions import db


class AutoSeqWorker(HerokuWorker):
    """An RQ 2 worker that runs each job inside the Flask app context.

    SIGTERM lets the current job finish (the horse gets SIGRTMIN only if it overstays), as Heroku
    expects. The parent never touches the database; each forked horse throws away the connection
    pool it inherited, so no two processes ever share a database socket.
    """

    app: Flask | None = None

    def main_work_horse(self, job, queue):
        if self.app is not None:
            with self.app.app_context():
                db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)

    def perform_job(self, job, queue):
        if self.app is None:
            return super().perform_job(job, queue)
        with self.app.app_context():
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()
