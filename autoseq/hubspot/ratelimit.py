"""A per-portal rate limiter shared by every process, in Redis: callers wait for a slot.

A rolling window over a sorted set of timestamps, taken atomically by a Lua script with Redis's own
clock (so every web and worker process, on any machine, agrees on the time). Callers are never
refused: :meth:`RateLimiter.acquire` sleeps until the earliest slot frees, bounded by ``max_wait``.

Why a slot is stamped again when its call ends: HubSpot counts a request when it *arrives*, which
is some time after we took the slot. Two requests taken exactly one window apart can arrive less
than a window apart if the first was slow on the wire; HubSpot would then answer 429. Re-stamping
the slot with the time the answer came back (which is after HubSpot counted it) makes the window
we keep always at least as long as the one HubSpot sees, at the cost of one request latency per
window (a fraction of a percent of the budget over 10 s).

Why the stamp may come late: a caller making one call after another (a paging loop) hands the
stamp of its last slot to the script that takes its next one (:meth:`RateLimiter.release_later`):
one Redis round trip per call instead of two. A slot no next call stamps in time is stamped by a
background thread within about ``2 * STAMP_DELAY``. Either way the stamp is the time the answer came
back (the script is told how long ago that was, and never moves a slot earlier than it was): a
stamp taken when the script ran held each slot of a drain's steady 11 calls a second 50-100 ms
too long, about 1% of the budget. Measured: under load, the sync of 10,000 sequences spent a tenth
of its time on these round trips (bench/bench_sync.py).
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
import uuid
import weakref
from contextlib import contextmanager

from redis import Redis

from .errors import RateLimited

log = logging.getLogger(__name__)

KEY_PREFIX = "autoseq:hubspot:rate:"
STAMP_DELAY = 0.05  # seconds a slot's stamp may wait for the caller's next call
# While a portal has enrollments waiting (its drain set the flag), callers outside
# :func:`priority` (syncs, background checks) may use only this share of its budget.
BACKGROUND_SHARE = 0.2

_PRIORITY = contextvars.ContextVar("autoseq_rate_priority", default=False)


@contextmanager
def priority():
    """HubSpot calls made inside take the portal's whole budget: the enrollment drain's. Every
    other caller (a sync and its threads included) is background: while the portal's drain has
    work (:meth:`RateLimiter.mark_busy`) it gets at most ``BACKGROUND_SHARE`` of the window."""
    token = _PRIORITY.set(True)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


# KEYS[1] the window, KEYS[2] the portal's "enrollments waiting" flag; ARGV: limit, window (ms),
# member, background limit (-1: a priority caller), a slot to stamp first ("" for none), how
# long ago (ms) its call ended. Answers {1, 0} (taken) or {0, wait ms}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
if ARGV[5] ~= '' then
  local stamp = now - tonumber(ARGV[6])
  local old = redis.call('ZSCORE', KEYS[1], ARGV[5])
  if old and tonumber(old) < stamp then redis.call('ZADD', KEYS[1], 'XX', stamp, ARGV[5]) end
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local background = tonumber(ARGV[4])
if background >= 0 and redis.call('EXISTS', KEYS[2]) == 1 then limit = background end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 2) + 1000)
  return {1, 0}
end
local nth = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
if nth[2] == nil then return {0, math.ceil(window)} end
return {0, math.max(1, math.ceil(tonumber(nth[2]) + window - now))}
"""

# KEYS[1] the window; ARGV: limit, window (ms), want. Takes nothing; answers {free slots, ms until
# ``want`` slots are free (0 when they are)}.
_HEADROOM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local free = limit - used
if free >= want then return {free, 0} end
local nth = redis.call('ZRANGE', KEYS[1], want - free - 1, want - free - 1, 'WITHSCORES')
if nth[2] == nil then return {free, 1} end
return {free, math.max(1, math.ceil(tonumber(nth[2]) + window - now))}
"""

# KEYS[1] the window; ARGV[1] member, ARGV[2] how long ago (ms) its call ended: move the slot's
# time to then (only if it is still there, and never earlier than it was).
_STAMP = """
local t = redis.call('TIME')
local stamp = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 - tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old and tonumber(old) < stamp then redis.call('ZADD', KEYS[1], 'XX', stamp, ARGV[1]) end
return 1
"""


class RateLimiter:
    """``limit`` calls per rolling ``window`` seconds per key (a portal id), across processes."""

    def __init__(
        self,
        redis: Redis,
        limit: int = 110,
        window: float = 10.0,
        max_wait: float = 60.0,
        prefix: str = KEY_PREFIX,
    ):
        self.redis = redis
        self.limit = int(limit)
        self.window_ms = float(window) * 1000.0
        self.max_wait = float(max_wait)
        self.prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._stamp = redis.register_script(_STAMP)
        self._headroom = redis.register_script(_HEADROOM)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, float]] = {}  # key -> (slot to stamp, since)

    @classmethod
    def from_config(cls, config, redis: Redis) -> RateLimiter:
        """The limiter every HubSpot call of ``config`` (a Flask config) shares."""
        limit, window = config["HUBSPOT_RATE_LIMIT"]
        return cls(redis, limit, window, max_wait=float(config["HUBSPOT_RATE_LIMIT_MAX_WAIT"]))

    def key(self, key) -> str:
        return f"{self.prefix}{key}"

    def try_acquire(
        self, key, member: str | None = None, stamp: str = "", ended: float | None = None
    ) -> tuple[str | None, float]:
        """Take a slot if one is free: ``(member, 0)``, else ``(None, seconds to wait)``.

        ``stamp``: a slot whose call is over (at ``ended``, ``time.monotonic()``), stamped in the
        same round trip.
        """
        member = member or uuid.uuid4().hex
        background = -1 if _PRIORITY.get() else int(self.limit * BACKGROUND_SHARE)
        taken, wait_ms = self._acquire(
            keys=[self.key(key), self.busy_key(key)],
            args=[self.limit, self.window_ms, member, background, stamp, _ago_ms(ended)],
        )
        if int(taken):
            return member, 0.0
        return None, int(wait_ms) / 1000.0

    def busy_key(self, key) -> str:
        return f"{self.prefix}{key}:enrollments-waiting"

    def mark_busy(self, key, seconds: float) -> None:
        """The portal has enrollments waiting for the next ``seconds``: background callers leave
        it most of the budget (:func:`priority`)."""
        self.redis.set(self.busy_key(key), "1", px=max(1, int(seconds * 1000)))

    def clear_busy(self, key) -> None:
        self.redis.delete(self.busy_key(key))

    def headroom(self, key, want: int = 1) -> tuple[int, float]:
        """``(slots free now, seconds until want slots are free)``; takes nothing.

        What a drain asks before it claims work: it takes as many rows as there are free slots,
        and when there are none it yields its worker until ``want`` are free, instead of sleeping.
        """
        want = max(1, min(int(want), self.limit))
        free, wait_ms = self._headroom(
            keys=[self.key(key)], args=[self.limit, self.window_ms, want]
        )
        return int(free), int(wait_ms) / 1000.0

    def acquire(self, key) -> str:
        """Wait for a slot and take it; return its id. :class:`RateLimited` after ``max_wait``.

        A slot handed to :meth:`release_later` for this key is stamped by the same script.
        """
        deadline = time.monotonic() + self.max_wait
        member = uuid.uuid4().hex
        stamp, ended = self._take_pending(key)
        while True:
            taken, wait = self.try_acquire(key, member, stamp, ended)
            stamp = ""
            if taken:
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RateLimited(
                    f"no HubSpot rate slot for portal {key} within {self.max_wait:g} s",
                    status=None,
                )
            # A little jitter so that waiters woken by the same free slot do not stampede.
            time.sleep(min(wait + random.uniform(0, 0.005), remaining))

    def release(self, key, member: str, ended: float | None = None) -> None:
        """The call made with this slot is over (now, or at ``ended``, ``time.monotonic()``):
        count the slot from then (see module docstring)."""
        self._stamp(keys=[self.key(key)], args=[member, _ago_ms(ended)])

    def release_later(self, key, member: str) -> None:
        """:meth:`release`, done by this key's next :meth:`acquire` if it comes within
        ``STAMP_DELAY``, else by a background thread (one Redis round trip less per call)."""
        with self._lock:
            previous = self._pending.pop(key, None)
            self._pending[key] = (member, time.monotonic())
        if previous is not None:
            self.release(key, *previous)
        _stamper.watch(self)

    def flush(self, older_than: float = 0.0) -> bool:
        """Stamp the slots waiting for a stamp ``older_than`` seconds or more; whether any wait
        still."""
        now = time.monotonic()
        with self._lock:
            due = [(k, m, t) for k, (m, t) in self._pending.items() if now - t >= older_than]
            for key, _, _ in due:
                del self._pending[key]
            waiting = bool(self._pending)
        for key, member, ended in due:
            self.release(key, member, ended)
        return waiting

    def _take_pending(self, key) -> tuple[str, float | None]:
        with self._lock:
            pending = self._pending.pop(key, None)
        return pending if pending else ("", None)

    @contextmanager
    def slot(self, key):
        """``with limiter.slot(portal_id): <one HTTP call>``."""
        member = self.acquire(key)
        try:
            yield member
        finally:
            self.release(key, member)

    def used(self, key) -> int:
        """Slots taken in the current window (for tests and the benchmark)."""
        now_s, now_us = self.redis.time()
        now = now_s * 1000 + now_us / 1000
        return int(self.redis.zcount(self.key(key), now - self.window_ms, "+inf"))


def _ago_ms(ended: float | None) -> int:
    return 0 if ended is None else max(0, int((time.monotonic() - ended) * 1000))


class _Stamper:
    """One daemon thread per process: stamps the slots no next call stamped in time."""

    def __init__(self):
        self.limiters: weakref.WeakSet[RateLimiter] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def watch(self, limiter: RateLimiter) -> None:
        with self.lock:
            self.limiters.add(limiter)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="rate-stamp", daemon=True)
                self.thread.start()
        self.wake.set()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            time.sleep(STAMP_DELAY)
            with self.lock:
                limiters = list(self.limiters)
            waiting = False
            for limiter in limiters:
                try:
                    waiting = limiter.flush(older_than=STAMP_DELAY) or waiting
                except Exception:  # Redis away: the slot keeps the stamp it was taken with
                    log.warning("rate limiter: a slot could not be stamped", exc_info=True)
            if waiting:
                self.wake.set()


_stamper = _Stamper()
