"""The one door every HubSpot HTTP call goes through: timeouts, retries, rate slots, typed errors.

:class:`Transport` knows nothing of tokens or Flask: it sends one request and
- takes a slot of the portal's shared rate budget first (when given a ``rate_key``),
- retries 5xx, timeouts and dropped connections with exponential backoff and jitter, a bounded
  number of times, then raises :class:`HubSpotUnavailable`,
- on a 429 waits ``Retry-After`` (or one rate window when absent) and retries, a bounded number
  of times; a DAILY policy is not retried (:class:`RateLimited`),
- never retries another 4xx: it raises the typed error at once (the 401 refresh is the client's).
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import requests
from redis.exceptions import RedisError

from .errors import HubSpotError, HubSpotUnavailable, RateLimited, error_from_response
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05  # seconds (a little over a multiple of 3, TCP's retransmission window)


def _timeout(setting) -> tuple[float, float]:
    """HUBSPOT_TIMEOUT: a read timeout in seconds (the environment), or (connect, read)."""
    if isinstance(setting, (tuple, list)):
        return float(setting[0]), float(setting[1])
    return CONNECT_TIMEOUT, float(setting)


_TOKEN_IN_PATH = re.compile(r"(/(?:access-tokens|refresh-tokens)/|[?&]hapikey=)[^/?&\s]+")
_DROPPED = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def safe_path(path: str) -> str:
    """``path`` with any token or developer key in it masked: the only form of a path we put in
    logs or errors."""
    return _TOKEN_IN_PATH.sub(r"\1***", path)


class RedactTokens(logging.Filter):
    """Mask secrets in URLs that urllib3 logs at DEBUG (HubSpot's legacy token info and revoke
    put the token in the path; the legacy action definitions take ``?hapikey=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(safe_path(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = safe_path(record.msg)
        return True


def _install_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, RedactTokens) for f in target.filters):
        target.addFilter(RedactTokens())


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a transport tries (the settings' defaults are in ``autoseq/config.py``). Tests
    shorten the delays through app config."""

    max_retries: int  # retries of 5xx / timeouts / dropped connections (4: 5 tries in all)
    backoff: float  # first backoff, seconds; doubles each retry
    max_backoff: float
    max_429_retries: int
    rate_window: float  # wait after a 429 without Retry-After
    max_rate_wait: float  # a longer Retry-After is not waited out

    @classmethod
    def from_config(cls, config) -> RetryPolicy:
        """Read ``HUBSPOT_MAX_RETRIES``, ``HUBSPOT_RETRY_BACKOFF``... (every one is declared)."""
        _, window = config["HUBSPOT_RATE_LIMIT"]
        return cls(
            max_retries=int(config["HUBSPOT_MAX_RETRIES"]),
            backoff=float(config["HUBSPOT_RETRY_BACKOFF"]),
            max_backoff=float(config["HUBSPOT_RETRY_BACKOFF_MAX"]),
            max_429_retries=int(config["HUBSPOT_429_RETRIES"]),
            rate_window=float(window),
            max_rate_wait=float(config["HUBSPOT_RATE_LIMIT_MAX_WAIT"]),
        )

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (0-based): exponential, half of it jitter."""
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


USER_AGENT = "AutoSeq/1.0"


def _session(base_url: str) -> requests.Session:
    """A session that reads the environment once, not on every request.

    With ``trust_env`` requests looks up the proxy variables, the CA bundle variables and
    ``~/.netrc`` for every request: a sixth of a sync's own CPU time (bench/bench_sync.py,
    cProfile). They are read here instead, once per transport. ``~/.netrc`` is not read at all:
    every HubSpot call carries its own Authorization header, which netrc credentials would replace.
    It was also 12% of an enrollment drain's CPU (bench/bench_action.py's profile).
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    return session


_SHARED: dict[tuple[int, str], requests.Session] = {}
_SHARED_LOCK = threading.Lock()


def shared_session(base_url: str) -> requests.Session:
    """This process's one session to ``base_url``, for transports built one after another on one
    thread (an RQ worker's drains): its pooled connections outlive each transport, where every
    drain job used to open its own (a TCP and TLS handshake with HubSpot) and read the
    environment again. It keeps no cookies: the transports it serves belong to many portals."""
    key = (os.getpid(), base_url)  # a forked child makes its own
    with _SHARED_LOCK:
        session = _SHARED.get(key)
        if session is None:
            session = _SHARED[key] = _session(base_url)
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


class Transport:
    """One ``requests.Session`` (connection pooling) to one HubSpot API host.

    ``shared``: the process's session (:func:`shared_session`), left open by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float],
        retry: RetryPolicy,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        shared: bool = False,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = tuple(timeout)
        self.retry = retry
        self.limiter = limiter
        self.shared = shared and session is None
        if self.shared:
            session = shared_session(self.base_url)
        self.session = session or _session(self.base_url)
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        _install_redaction()

    @classmethod
    def from_config(
        cls, config, redis=None, *, rate_limited: bool = True, shared: bool = False
    ) -> Transport:
        """A transport for ``config`` (a Flask config); with ``redis`` it shares the rate budget."""
        limiter = None
        if rate_limited and redis is not None:
            limiter = RateLimiter.from_config(config, redis)
        return cls(
            config["HUBSPOT_API_BASE"],
            timeout=_timeout(config["HUBSPOT_TIMEOUT"]),
            retry=RetryPolicy.from_config(config),
            limiter=limiter,
            shared=shared,
        )

    def close(self) -> None:
        if self.limiter is not None:
            try:
                self.limiter.flush()
            except RedisError:  # the slots keep the stamps they were taken with
                log.warning("rate limiter: slots not stamped at close", exc_info=True)
        if not self.shared:
            self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params=None,
        json=None,
        data=None,
        headers=None,
        rate_key=None,
        rate_ahead: int = 1,
    ) -> requests.Response:
        """Send, retrying what may be retried; a 2xx/3xx response, else the typed error.

        ``rate_ahead``: how many calls of this key the caller expects soon (a paging loop): the
        rate limiter may take that many slots in one round trip (``RateLimiter.acquire``).
        """
        url = self.base_url + path
        label = _Label(method, path)  # made into text only for a log line or an error
        attempt = 0
        rate_retries = 0
        while True:
            try:
                response = self._send(
                    method, url, params, json, data, headers, rate_key, rate_ahead
                )
            except _DROPPED as exc:
                if attempt >= self.retry.max_retries:
                    # ``from None``: the requests exception text carries the URL (maybe a token).
                    raise HubSpotUnavailable(
                        f"HubSpot did not answer {label} ({type(exc).__name__}) "
                        f"after {attempt + 1} tries"
                    ) from None
                self._sleep_retry(label, attempt, type(exc).__name__)
                attempt += 1
                continue
            status = response.status_code
            if status < 400:
                return response
            error = error_from_response(response)
            if status == 429:
                wait = (
                    error.retry_after if error.retry_after is not None else self.retry.rate_window
                )
                if (
                    (error.policy_name or "").upper() == "DAILY"
                    or rate_retries >= self.retry.max_429_retries
                    or wait > self.retry.max_rate_wait
                ):
                    raise _as(RateLimited, error)
                log.warning(
                    "HubSpot 429 on %s (policy %s): waiting %.1f s", label, error.policy_name, wait
                )
                time.sleep(wait)
                rate_retries += 1
                continue
            if status >= 500:
                if attempt >= self.retry.max_retries:
                    raise _as(HubSpotUnavailable, error)
                self._sleep_retry(label, attempt, f"HTTP {status}")
                attempt += 1
                continue
            raise error

    def _send(
        self, method, url, params, json, data, headers, rate_key, rate_ahead=1
    ) -> requests.Response:
        if self.limiter is None or rate_key is None:
            return self._http(method, url, params, json, data, headers)
        member = self.limiter.acquire(rate_key, rate_ahead)
        try:
            return self._http(method, url, params, json, data, headers)
        finally:
            # Stamped by the next slot script (with the stamps of other calls), or within ~0.1 s.
            self.limiter.release_later(rate_key, member)

    def _http(self, method, url, params, json, data, headers) -> requests.Response:
        return self.session.request(
            method, url, params=params, json=json, data=data, headers=headers, timeout=self.timeout
        )

    def _sleep_retry(self, label: _Label, attempt: int, why: str) -> None:
        delay = self.retry.delay(attempt)
        log.warning("HubSpot %s on %s: retry %d in %.2f s", why, label, attempt + 1, delay)
        time.sleep(delay)


class _Label:
    """``GET /path`` with any secret masked (:func:`safe_path`), built when first shown: most
    calls succeed at once and never show it."""

    __slots__ = ("method", "path")

    def __init__(self, method: str, path: str):
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return f"{self.method} {safe_path(self.path)}"


def _as(cls: type[HubSpotError], error: HubSpotError) -> HubSpotError:
    """Re-type ``error`` (keeping every parsed field)."""
    if isinstance(error, cls):
        return error
    return cls(
        error.message,
        status=error.status,
        category=error.category,
        sub_category=error.sub_category,
        correlation_id=error.correlation_id,
        context=error.context,
        error=error.error,
        policy_name=error.policy_name,
        retry_after=error.retry_after,
    )
