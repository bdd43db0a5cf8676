"""``flask hubspot rotate-token-keys``: every stored token under the first key, and a count left."""

from __future__ import annotations

import itertools

import pytest
from cryptography.fernet import Fernet

from autoseq.extensions import db
from autoseq.models import HubSpotConnection
from autoseq.services import accounts, tokens

_portal = itertools.count(880001)


@pytest.fixture
def keys(app):
    """(new, old): the app's key becomes the old one, a new key goes first; restored after."""
    saved = list(app.config["TOKEN_ENCRYPTION_KEYS"])
    new, old = Fernet.generate_key().decode(), saved[0]
    yield new, old
    app.config["TOKEN_ENCRYPTION_KEYS"] = saved


def _connections(user, n: int, key: str) -> list[int]:
    ids = []
    for i in range(n):
        ws = accounts.create_workspace(user, f"W{i}")
        row = HubSpotConnection(
            workspace_id=ws.id,
            portal_id=next(_portal),
            access_token_enc=tokens.encrypt(f"access-{i}", [key]),
            refresh_token_enc=tokens.encrypt(f"refresh-{i}", [key]),
        )
        db.session.add(row)
        db.session.commit()
        ids.append(row.id)
    return ids


def test_rotate_token_keys_reencrypts_every_row_under_the_first_key(app, runner, user, keys):
    new, old = keys
    ids = _connections(user, 3, old)
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new, old]
    result = runner.invoke(args=["hubspot", "rotate-token-keys"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 3 connection(s)" in result.output
    assert "0 connection(s) remain under old keys" in result.output
    db.session.expire_all()
    for i, row_id in enumerate(ids):
        row = db.session.get(HubSpotConnection, row_id)
        assert tokens.decrypt(row.refresh_token_enc, [new]) == f"refresh-{i}"  # new key alone
        assert tokens.decrypt(row.access_token_enc, [new]) == f"access-{i}"


def test_rows_no_key_can_read_are_reported_and_left_alone(app, runner, user, keys):
    new, old = keys
    _connections(user, 1, old)
    lost = _connections(user, 1, Fernet.generate_key().decode())  # a key nobody kept
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new, old]
    result = runner.invoke(args=["hubspot", "rotate-token-keys"])
    assert result.exit_code != 0
    assert "Re-encrypted 1 connection(s)" in result.output
    assert "1 connection(s) remain under old keys" in result.output
    assert f"connection(s) {lost[0]}" in result.output
