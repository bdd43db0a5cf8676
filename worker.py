"""The RQ worker process: ``python worker.py [enrollments | sync | queue ...]``.

Runs :class:`autoseq.queue.Worker` (RQ 2, no fork per job) over the queues in
priority order; each job runs inside the app context. SIGTERM finishes the current job, then stops.
Two kinds run in production (Procfile): ``enrollments`` (enrollments and callback flushes, which
never wait behind a sync that may run for hours) and ``sync`` (syncs and the small periodic jobs).
With no argument one worker serves every queue.
The periodic jobs are rq-scheduler's (scheduler.py); RQ's own scheduler only re-queues retries.
A Redis outage does not end the process: it logs, waits with backoff until Redis answers, and
starts a fresh worker (a job lost with the connection is found again by RQ's registries and the
enrollment sweep).
"""

from __future__ import annotations

import sys

from autoseq import create_app
from autoseq.jobs.reconnect import run_reconnecting
from autoseq.queue import QUEUE_NAMES, run_worker

WORKER_KINDS = {"enrollments": ("enrollments",), "sync": ("sync", "default")}


def queue_names(argv: list[str]) -> list[str]:
    """The queues a worker started with ``argv`` serves, in priority order."""
    names = [name for arg in argv for name in WORKER_KINDS.get(arg, (arg,))] or list(QUEUE_NAMES)
    unknown = sorted(set(names) - set(QUEUE_NAMES))
    if unknown:
        raise SystemExit(f"unknown queue or worker kind: {', '.join(unknown)}")
    return list(dict.fromkeys(names))


def main(argv: list[str]) -> int:
    queues_served = queue_names(argv)
    app = create_app()
    connection = app.extensions["redis"]

    def work():
        # RQ's own scheduler moves delayed jobs (retries, drains waiting for a rate slot) back
        # onto their queue; it takes a Redis lock, so one worker at a time does it.
        run_worker(app, queues_served, connection, with_scheduler=True, logging_level="INFO")

    run_reconnecting("worker", connection, work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
