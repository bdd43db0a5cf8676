"""Keyset page cursors, shared by the action's dropdowns and the analytics log.

A cursor is the position just past a page's last row: that row's sort-key values. Callers see an
opaque string, base64url of the values (JSON) and of an HMAC-SHA256 of them (96 bits) under the
app's ``SECRET_KEY`` and the list it belongs to. An edited, truncated or foreign cursor (another
list's, another deployment's) is refused with :class:`BadCursor` and a reason, which the views
answer with a 400: never a 500 from the database, never a silent restart of the list.

The query side is :func:`beyond`: ``(k1, k2, ...) > (v1, v2, ...)`` as one row comparison, which
PostgreSQL reads as a range of a btree whose columns are in that order (an ``OR`` of the same
conditions is only a filter: page 50 scanned the 49 pages before it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from flask import current_app
from sqlalchemy import literal, tuple_
from sqlalchemy.sql.elements import ColumnElement

MAX_LENGTH = 1024  # a cursor is a few dozen characters; anything longer was not made here
MAX_TEXT = 1000  # a text key (the dropdown's sort key is at most 200 characters)
MAC_BYTES = 12
_INT_RANGE = range(-(2**63) + 1, 2**63)


class BadCursor(ValueError):
    """A cursor that was not made here for this list (or no longer fits it); ``reason`` is the
    sentence a 400 carries."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(kind: str, payload: bytes) -> bytes:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, kind.encode() + b"\0" + payload, hashlib.sha256).digest()[:MAC_BYTES]


def encode(kind: str, values: tuple) -> str:
    """The cursor of the position ``values`` (str and int only) in the list ``kind``."""
    payload = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_b64(payload)}.{_b64(_mac(kind, payload))}"


def decode(kind: str, token, shape: tuple[type, ...]) -> tuple:
    """The values of a cursor made by :func:`encode` for ``kind``, each of the type in ``shape``
    (``str`` or ``int``); :class:`BadCursor` otherwise."""
    if not isinstance(token, str) or not token:
        raise BadCursor("the cursor must be a non-empty string")
    if len(token) > MAX_LENGTH:
        raise BadCursor(f"the cursor is longer than {MAX_LENGTH} characters")
    body, dot, signature = token.partition(".")
    try:
        payload, mac = _unb64(body), _unb64(signature)
    except (binascii.Error, ValueError):
        raise BadCursor("the cursor is not one this list gave out") from None
    if not dot or not hmac.compare_digest(mac, _mac(kind, payload)):
        raise BadCursor("the cursor is not one this list gave out (edited, or from elsewhere)")
    try:
        values = json.loads(payload)
    except ValueError:
        raise BadCursor("the cursor is not one this list gave out") from None
    if not isinstance(values, list) or len(values) != len(shape):
        raise BadCursor("the cursor does not fit this list")
    for value, kind_of in zip(values, shape, strict=True):
        _check(value, kind_of)
    return tuple(values)


def _check(value, kind_of: type) -> None:
    if kind_of is int:
        if type(value) is not int or value not in _INT_RANGE:
            raise BadCursor("the cursor does not fit this list")
    elif kind_of is str:
        if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
            raise BadCursor("the cursor does not fit this list")
    else:  # pragma: no cover (a programming error, not a request's)
        raise TypeError(f"cursor values are str or int, not {kind_of}")


def beyond(columns, values, descending: bool = False) -> ColumnElement[bool]:
    """Rows past the position ``values`` in the order of ``columns`` (all ascending, or all
    descending): one row comparison, a btree range on an index of those columns. A value that
    is not already a SQL expression (a bound parameter) is bound with its column's type."""
    bound = [
        v if isinstance(v, ColumnElement) else literal(v, c.type)
        for c, v in zip(columns, values, strict=True)
    ]
    left, right = tuple_(*columns), tuple_(*bound)
    return left < right if descending else left > right
