"""HubSpot tokens at rest: encrypted with MultiFernet over app.config["TOKEN_ENCRYPTION_KEYS"].

The first key encrypts; every listed key decrypts. To rotate: put the new key first, keep the old
ones after it, deploy, run :func:`rotate_all`, then drop the old keys.
Tokens are never logged: nothing here formats a token into a message.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class TokenDecryptError(Exception):
    """A stored token cannot be decrypted with any configured key."""


def fernet(keys: Sequence[str] | None = None) -> MultiFernet:
    """The MultiFernet of ``keys`` (default: the app's TOKEN_ENCRYPTION_KEYS, first = primary)."""
    if keys is None:
        keys = current_app.config["TOKEN_ENCRYPTION_KEYS"]
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    if not keys:
        raise RuntimeError("TOKEN_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(token: str | None, keys: Sequence[str] | None = None) -> str | None:
    """Encrypt a token for storage (None stays None)."""
    if token is None:
        return None
    return fernet(keys).encrypt(token.encode()).decode()


def decrypt(stored: str | None, keys: Sequence[str] | None = None) -> str | None:
    """Decrypt a stored token (None stays None); :class:`TokenDecryptError` with no good key."""
    if stored is None:
        return None
    try:
        return fernet(keys).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise TokenDecryptError(
            "stored token cannot be decrypted with the configured keys"
        ) from None


def rotate(stored: str | None, keys: Sequence[str] | None = None) -> str | None:
    """Re-encrypt a stored token with the primary key (it may have been made with an old key)."""
    if stored is None:
        return None
    try:
        return fernet(keys).rotate(stored.encode()).decode()
    except InvalidToken:
        raise TokenDecryptError(
            "stored token cannot be decrypted with the configured keys"
        ) from None


def rotate_all(keys: Sequence[str] | None = None) -> int:
    """Re-encrypt every stored HubSpot token with the primary key, commit; return rows changed."""
    from ..extensions import db
    from ..models import HubSpotConnection

    count = 0
    rows = db.session.scalars(db.select(HubSpotConnection)).all()
    for row in rows:
        changed = False
        for attr in ("access_token_enc", "refresh_token_enc"):
            value = getattr(row, attr)
            if value is not None:
                setattr(row, attr, rotate(value, keys))
                changed = True
        count += changed
    db.session.commit()
    return count
