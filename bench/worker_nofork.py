"""Bench helper, not the product: AutoSeq's worker without the fork per job (rq's SimpleWorker),
to show how much of the pipeline's CPU goes to forking a work horse for every job.

    python bench/worker_nofork.py enrollments
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rq.worker import SimpleWorker  # noqa: E402

from autoseq import create_app  # noqa: E402
from autoseq.extensions import db  # noqa: E402
from autoseq.jobs import QUEUE_NAMES, get_queue  # noqa: E402


class NoForkWorker(SimpleWorker):
    app = None

    def perform_job(self, job, queue):
        with self.app.app_context():
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()


def main(argv: list[str]) -> int:
    app = create_app()
    connection = app.extensions["redis"]
    worker = NoForkWorker(
        [get_queue(name, connection) for name in (argv or QUEUE_NAMES)], connection=connection
    )
    worker.app = app
    worker.work(with_scheduler=False, logging_level="WARNING")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
