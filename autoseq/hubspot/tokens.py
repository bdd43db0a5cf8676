"""HubSpot tokens at rest: encrypted with MultiFernet over app.config["TOKEN_ENCRYPTION_KEYS"].

The first key encrypts; every listed key decrypts. To rotate: put the new key first, keep the old
ones after it, deploy, run ``flask --app wsgi hubspot rotate-token-keys`` (:func:`rotate_all`)
until it reports 0 rows under old keys, then drop the old keys.
Tokens are never logged: nothing here formats a token into a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass
class RotationReport:
    rotated: int  # rows re-encrypted under the first key
    under_old_keys: int  # rows still holding a token the first key cannot read
    unreadable: list[int]  # ids of rows no configured key can read (left as they are)


def under_primary_key(stored: str | None, keys: Sequence[str] | None = None) -> bool:
    """True when the first key alone decrypts ``stored`` (None counts as True)."""
    if stored is None:
        return True
    keys = current_app.config["TOKEN_ENCRYPTION_KEYS"] if keys is None else keys
    try:
        fernet(list(keys)[:1]).decrypt(stored.encode())
    except InvalidToken:
        return False
    return True


def rotate_all(keys: Sequence[str] | None = None) -> RotationReport:
    """Re-encrypt every stored HubSpot token under the first key, one row per transaction.

    Each row is read ``FOR UPDATE`` (PostgreSQL), so a token refresh in a worker cannot be
    overwritten by the re-encrypted old token. Rows no key can read are reported, not changed.
    """
    from ..extensions import db
    from ..models import HubSpotConnection

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
            values = {attr: rotate(getattr(row, attr), keys) for attr in columns}
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
        if not all(under_primary_key(getattr(row, attr), keys) for attr in columns)
    )
    db.session.commit()
    return RotationReport(rotated, left, unreadable)
