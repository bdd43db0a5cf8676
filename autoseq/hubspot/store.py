"""Where a portal's tokens live, as the client sees it: a small store it is handed.

The client knows nothing of rows, sessions or apps: it asks a :class:`TokenStore` for the tokens
as they are stored now, and writes a refresh back only if nobody changed them meanwhile. The
service layer implements the store over the connection row
(:class:`autoseq.services.tokens.ConnectionTokenStore`); encryption at rest is the store's
business, so the client only ever holds plain tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredTokens:
    """A portal's tokens as stored. ``repr`` hides the tokens.

    ``version`` is the store's own compare-and-set marker (the client passes it back untouched):
    two loads with the same version hold the same refresh token.
    """

    access_token: str | None = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    lifetime: int | None = None  # seconds the access token was issued for
    version: Any = field(default=None, repr=False, compare=False)


class TokenStore(Protocol):
    """What a :class:`~autoseq.hubspot.client.HubSpotClient` needs to keep its tokens fresh.

    Every method may be called from any thread, without an app context, and must commit at once
    (a refresh made in the middle of a job survives the job's rollback).
    """

    def load(self) -> StoredTokens:
        """The tokens as committed now; :class:`~.errors.NeedsReconnect` when the portal is no
        longer connected (disconnected, needs a reconnect, or gone)."""
        ...

    def save_if_unchanged(self, old: StoredTokens, new: StoredTokens) -> bool:
        """Store ``new`` only if the stored tokens are still ``old`` and still connected (else
        the portal was disconnected or reconnected meanwhile and ``new`` is stale). True when
        stored."""
        ...

    def mark_needs_reconnect(self, old: StoredTokens, reason: str) -> None:
        """HubSpot refused ``old``'s refresh token: the portal needs a reconnect, for ``reason``
        (shown to the user). Only if the stored tokens are still ``old``."""
        ...
