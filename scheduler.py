"""The scheduler process: reconcile the periodic jobs, then run rq-scheduler.

rq-scheduler takes a Redis lock, so a second scheduler process waits instead of doubling ticks.
A Redis outage does not end the process: it logs, waits with backoff until Redis answers, then
reconciles and runs again; a schedule found missing while it runs (Redis restarted empty) is
reconciled back (:class:`autoseq.jobs.schedule.ReconcilingScheduler`).
"""

from __future__ import annotations

import sys

from autoseq import create_app
from autoseq.jobs.reconnect import run_reconnecting
from autoseq.jobs.schedule import ReconcilingScheduler, reconcile


def main() -> int:
    app = create_app()
    connection = app.extensions["redis"]

    def run():
        with app.app_context():
            reconcile(connection)
        # Polls every 5 s: the 15-second enrollment sweep needs it.
        ReconcilingScheduler(connection=connection, interval=5).run()

    run_reconnecting("scheduler", connection, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
