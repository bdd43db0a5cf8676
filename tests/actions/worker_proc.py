"""A real AutoSeq worker in its own process (tests kill it):
``python worker_proc.py '<json>' [queue ...]`` (default: the enrollments queue).

The JSON holds the app config overrides of the test's app, so the worker sees the same database,
Redis and HubSpot sandbox.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from autoseq import create_app
    from autoseq.queue import Worker as AutoSeqWorker
    from autoseq.queue import get_queue

    config = json.loads(sys.argv[1])
    for key, value in list(config.items()):
        if isinstance(value, list):
            config[key] = tuple(value) if key != "TOKEN_ENCRYPTION_KEYS" else value
    app = create_app(config)
    connection = app.extensions["redis"]
    names = sys.argv[2:] or ["enrollments"]
    worker = AutoSeqWorker([get_queue(n, connection) for n in names], connection=connection)
    worker.app = app
    worker.work(burst=True)


if __name__ == "__main__":
    main()
