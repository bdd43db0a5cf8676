"""Rolling-window rate limiter, one window per key (portal)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class RollingLimiter:
    """Allow ``limit`` hits per rolling ``interval`` seconds per key."""

    def __init__(self):
        self._lock = threading.Lock()
        self._hits: dict[object, deque] = {}

    def hit(self, key, limit: int, interval: float, now: float | None = None):
        """Try to take a slot. Return ``(allowed, remaining, retry_after_seconds)``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            window = self._hits.setdefault(key, deque())
            cutoff = now - interval
            while window and window[0] <= cutoff:
                window.popleft()
            if len(window) < limit:
                window.append(now)
                return True, limit - len(window), 0
            wait = window[0] + interval - now
            return False, 0, max(1, math.ceil(wait))

    def reset(self, key=None) -> None:
        """Forget hits of one key (or all)."""
        with self._lock:
            if key is None:
                self._hits.clear()
            else:
                self._hits.pop(key, None)
