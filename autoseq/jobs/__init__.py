"""RQ entry points (top floor, beside ``views/``): thin functions that load ids and call a service.

Queues, enqueueing, job state and heartbeats live on the ground floor, in :mod:`autoseq.queue`
(the only module that imports RQ). The names below are re-exported for callers not yet moved
(other branches at merge); new code imports :mod:`autoseq.queue`.
"""

from __future__ import annotations

from ..queue import (  # noqa: F401  (re-exported for callers not yet moved)
    ALIVE_BEAT,
    ALIVE_PREFIX,
    ALIVE_TTL,
    QUEUE_NAMES,
    QUEUES,
    QueueSpec,
    enqueue,
    get_queue,
    job_alive,
    redis_connection,
)
