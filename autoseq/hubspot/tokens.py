"""HubSpot tokens at rest: encrypted with MultiFernet over a list of keys (the app's
``TOKEN_ENCRYPTION_KEYS``, which :mod:`autoseq.services.tokens` passes in).

The first key encrypts; every listed key decrypts. To rotate: put the new key first, keep the old
ones after it, deploy, run ``flask --app wsgi hubspot rotate-token-keys``
(:func:`autoseq.services.tokens.rotate_all`) until it reports 0 rows under old keys, then drop the
old keys. Tokens are never logged: nothing here formats a token into a message.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenDecryptError(Exception):
    """A stored token cannot be decrypted with any configured key."""


def key_list(keys: Sequence[str] | str) -> list[str]:
    """``keys`` as a list (a comma-separated string is accepted), first = primary."""
    if isinstance(keys, str):
        return [k.strip() for k in keys.split(",") if k.strip()]
    return list(keys)


def fernet(keys: Sequence[str] | str) -> MultiFernet:
    """The MultiFernet of ``keys`` (first = primary)."""
    keys = key_list(keys)
    if not keys:
        raise RuntimeError("TOKEN_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(token: str | None, keys: Sequence[str]) -> str | None:
    """Encrypt a token for storage (None stays None)."""
    if token is None:
        return None
    return fernet(keys).encrypt(token.encode()).decode()


def decrypt(stored: str | None, keys: Sequence[str]) -> str | None:
    """Decrypt a stored token (None stays None); :class:`TokenDecryptError` with no good key."""
    if stored is None:
        return None
    try:
        return fernet(keys).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise TokenDecryptError(
            "stored token cannot be decrypted with the configured keys"
        ) from None


def rotate(stored: str | None, keys: Sequence[str]) -> str | None:
    """Re-encrypt a stored token with the primary key (it may have been made with an old key)."""
    if stored is None:
        return None
    try:
        return fernet(keys).rotate(stored.encode()).decode()
    except InvalidToken:
        raise TokenDecryptError(
            "stored token cannot be decrypted with the configured keys"
        ) from None


def under_primary_key(stored: str | None, keys: Sequence[str]) -> bool:
    """True when the first key alone decrypts ``stored`` (None counts as True)."""
    if stored is None:
        return True
    try:
        fernet(key_list(keys)[:1]).decrypt(stored.encode())
    except InvalidToken:
        return False
    return True
