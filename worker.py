"""The RQ worker process: ``python worker.py [queue ...]``.

Runs :class:`autoseq.jobs.worker.AutoSeqWorker` (an RQ 2 HerokuWorker) over the queues in priority
order; each job runs inside the app context. SIGTERM finishes the current job, then stops.
"""

from __future__ import annotations

import sys

from autoseq import create_app
from autoseq.jobs import QUEUE_NAMES, get_queue
from autoseq.jobs.worker import AutoSeqWorker


def main(argv: list[str]) -> int:
    app = create_app()
    queue_names = argv or list(QUEUE_NAMES)
    connection = app.extensions["redis"]
    queues = [get_queue(name, connection) for name in queue_names]
    worker = AutoSeqWorker(queues, connection=connection)
    worker.app = app
    worker.work(with_scheduler=False, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
