"""The HubSpot client: every call AutoSeq makes to HubSpot goes through this package.

- :mod:`.client` — :class:`HubSpotClient` (portal-scoped: tokens, paging, typed helpers)
- :mod:`.http` — :class:`Transport` (timeouts, retries, rate slots, typed errors)
- :mod:`.oauth` — authorize URL, code exchange, refresh, token info, revoke
- :mod:`.ratelimit` — the per-portal rate limiter shared through Redis
- :mod:`.store` — :class:`TokenStore`, what the client is handed to keep its tokens fresh
- :mod:`.tokens` — tokens encrypted at rest (MultiFernet over the keys it is given)

Nothing here imports Flask, SQLAlchemy, the models or the services (tests/hubspot/test_floor.py):
the service layer builds clients (:func:`autoseq.services.connections.for_workspace`).
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
