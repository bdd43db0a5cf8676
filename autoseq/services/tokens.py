"""A workspace's HubSpot tokens, kept in its connection row and encrypted under the app's keys.

- :func:`encrypt` / :func:`decrypt`: :mod:`autoseq.hubspot.tokens` with the app's
  ``TOKEN_ENCRYPTION_KEYS`` (or the keys given).
- :class:`ConnectionTokenStore`: the :class:`~autoseq.hubspot.store.TokenStore` the HubSpot client
  is handed. It reads and writes the row on its own database connection and commits at once, so a
  refresh made in the middle of a job survives the job's rollback and never commits the caller's
  pending changes. Built in an app context; none needed after that (sync threads use it).
- :func:`rotate_all`: re-encrypt every row under the first key (``flask hubspot
  rotate-token-keys``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app

from ..extensions import db
from ..hubspot import tokens as crypto
from ..hubspot.errors import NeedsReconnect
from ..hubspot.store import StoredTokens
from ..models import ConnectionStatus, HubSpotConnection

TokenDecryptError = crypto.TokenDecryptError


def app_keys() -> list[str]:
    """The app's TOKEN_ENCRYPTION_KEYS (first = primary)."""
    return crypto.key_list(current_app.config["TOKEN_ENCRYPTION_KEYS"])


def encrypt(token: str | None, keys: Sequence[str] | None = None) -> str | None:
    """Encrypt a token for storage under ``keys`` (default: the app's); None stays None."""
    return crypto.encrypt(token, app_keys() if keys is None else keys)


def decrypt(stored: str | None, keys: Sequence[str] | None = None) -> str | None:
    """Decrypt a stored token (default keys: the app's); :class:`TokenDecryptError` if none
    reads it."""
    return crypto.decrypt(stored, app_keys() if keys is None else keys)


def under_primary_key(stored: str | None, keys: Sequence[str] | None = None) -> bool:
    """True when the first key alone decrypts ``stored`` (None counts as True)."""
    return crypto.under_primary_key(stored, app_keys() if keys is None else keys)


class ConnectionTokenStore:
    """The tokens of one connection row, for :class:`~autoseq.hubspot.client.HubSpotClient`."""

    def __init__(self, connection: HubSpotConnection, keys: Sequence[str] | None = None):
        # Captured now, so that after construction the store needs no app context (threads).
        self.connection_id = connection.id
        self.portal_id = connection.portal_id
        self._keys = app_keys() if keys is None else list(keys)
        self._engine = db.engine

    def tokens_of(self, connection: HubSpotConnection) -> StoredTokens:
        """The tokens of ``connection`` (a row the caller already holds), decrypted."""
        return self._tokens(connection)

    def _tokens(self, row) -> StoredTokens:
        return StoredTokens(
            access_token=crypto.decrypt(row.access_token_enc, self._keys),
            refresh_token=crypto.decrypt(row.refresh_token_enc, self._keys),
            expires_at=row.expires_at,
            lifetime=row.token_lifetime,
            version=row.refresh_token_enc,
        )

    def load(self) -> StoredTokens:
        """The row as committed now (not the caller's session's possibly old copy)."""
        table = HubSpotConnection.__table__
        with self._engine.connect() as conn:
            row = conn.execute(table.select().where(table.c.id == self.connection_id)).first()
        if row is None or row.status != ConnectionStatus.CONNECTED or not row.refresh_token_enc:
            status = row.status if row is not None else "gone"
            raise NeedsReconnect(f"HubSpot portal {self.portal_id} is {status}")
        return self._tokens(row)

    def save_if_unchanged(self, old: StoredTokens, new: StoredTokens) -> bool:
        return self._write(
            old,
            access_token_enc=crypto.encrypt(new.access_token, self._keys),
            refresh_token_enc=crypto.encrypt(new.refresh_token, self._keys),
            expires_at=new.expires_at,
            token_lifetime=new.lifetime,
        )

    def mark_needs_reconnect(self, old: StoredTokens, reason: str) -> None:
        self._write(old, status=ConnectionStatus.NEEDS_RECONNECT.value, last_error=reason)

    def _write(self, old: StoredTokens, **values) -> bool:
        """Update the row only if it still holds the refresh token ``old`` was read with (else:
        it was disconnected or reconnected meanwhile, and what we learnt is stale)."""
        values["updated_at"] = datetime.now(UTC)
        table = HubSpotConnection.__table__
        with self._engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.id == self.connection_id,
                    table.c.status == ConnectionStatus.CONNECTED.value,
                    table.c.refresh_token_enc == old.version,
                )
                .values(**values)
            )
        return bool(result.rowcount)


@dataclass
class RotationReport:
    rotated: int  # rows re-encrypted under the first key
    under_old_keys: int  # rows still holding a token the first key cannot read
    unreadable: list[int]  # ids of rows no configured key can read (left as they are)


def rotate_all(keys: Sequence[str] | None = None) -> RotationReport:
    """Re-encrypt every stored HubSpot token under the first key, one row per transaction.

    Each row is read ``FOR UPDATE`` (PostgreSQL), so a token refresh in a worker cannot be
    overwritten by the re-encrypted old token. Rows no key can read are reported, not changed.
    """
    keys = app_keys() if keys is None else crypto.key_list(keys)
    columns = ("access_token_enc", "refresh_token_enc")
    rotated, unreadable = 0, []
    ids = db.session.scalars(db.select(HubSpotConnection.id).order_by(HubSpotConnection.id)).all()
    db.session.commit()
    for row_id in ids:
        row = db.session.get(
            HubSpotConnection, row_id, with_for_update=True, populate_existing=True
        )
        if row is None:
            db.session.commit()
            continue
        try:
            values = {attr: crypto.rotate(getattr(row, attr), keys) for attr in columns}
        except TokenDecryptError:
            unreadable.append(row_id)
            db.session.rollback()
            continue
        for attr, value in values.items():
            setattr(row, attr, value)
        rotated += any(v is not None for v in values.values())
        db.session.commit()
    left = sum(
        1
        for row in db.session.scalars(db.select(HubSpotConnection))
        if not all(crypto.under_primary_key(getattr(row, attr), keys) for attr in columns)
    )
    db.session.commit()
    return RotationReport(rotated, left, unreadable)
