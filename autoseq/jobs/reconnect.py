"""Long-running processes (worker, scheduler) outlive a Redis outage: reconnect with backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
LOST = (RedisConnectionError, RedisTimeoutError)


def run_reconnecting(
    name: str,
    connection: Redis,
    step: Callable[[], object],
    first_wait: float = 1.0,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
):
    """Run ``step()`` until it returns (a clean stop); when it loses Redis, log it, wait with
    doubling backoff (``first_wait`` up to ``max_wait`` seconds) until Redis answers a PING, and
    run ``step()`` again. Any other exception is not ours to swallow: it propagates.
    """
    while True:
        try:
            return step()
        except LOST as exc:
            log.warning("%s lost Redis (%s): reconnecting with backoff", name, exc)
        wait = first_wait
        outage = time.monotonic()
        while True:
            sleep(wait)
            try:
                connection.ping()
            except LOST as exc:
                wait = min(wait * 2, max_wait)
                log.warning("%s: Redis still unreachable (%s); next try in %.0f s", name, exc, wait)
                continue
            log.info("%s reconnected to Redis after %.1f s", name, time.monotonic() - outage)
            break
