"""The HubSpot client: every call AutoSeq makes to HubSpot goes through this package.

- :mod:`.client` — :class:`HubSpotClient` (portal-scoped: tokens, paging, typed helpers)
- :mod:`.http` — :class:`Transport` (timeouts, retries, rate slots, typed errors)
- :mod:`.oauth` — authorize URL, code exchange, refresh, token info, revoke
- :mod:`.ratelimit` — the per-portal rate limiter shared through Redis
- :mod:`.tokens` — tokens encrypted at rest (MultiFernet)
- :mod:`.errors` — the typed errors
"""

from .client import HubSpotClient
from .errors import (
    HubSpotAuthError,
    HubSpotClientError,
    HubSpotError,
    HubSpotUnavailable,
    NeedsReconnect,
    RateLimited,
)

__all__ = [
    "HubSpotAuthError",
    "HubSpotClient",
    "HubSpotClientError",
    "HubSpotError",
    "HubSpotUnavailable",
    "NeedsReconnect",
    "RateLimited",
]
