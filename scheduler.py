"""The scheduler process: reconcile the periodic jobs, then run rq-scheduler.

rq-scheduler takes a Redis lock, so a second scheduler process waits instead of doubling ticks.
"""

from __future__ import annotations

import sys

from rq_scheduler import Scheduler

from autoseq import create_app
from autoseq.jobs.schedule import reconcile


def main() -> int:
    app = create_app()
    connection = app.extensions["redis"]
    with app.app_context():
        reconcile(connection)
    Scheduler(connection=connection, interval=5).run()  # the 15-second sweep needs it
    return 0


if __name__ == "__main__":
    sys.exit(main())
