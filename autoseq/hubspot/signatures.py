"""Verify HubSpot request signatures (hubspot-api.md section 5).

v3 (``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp``) is checked when its headers are
present, else v2 (``X-HubSpot-Signature``). The URI must be the URL HubSpot called: callers rebuild
it from the configured public base URL, never from the ``Host`` header (a proxy may rewrite it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

MAX_AGE_MS = 5 * 60 * 1000

# The only escapes HubSpot decodes in the URI before signing with v3.
_V3_DECODES = (
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
)


class SignatureError(Exception):
    """The request is not signed by HubSpot (bad, missing or stale signature)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    version: str  # "v3" or "v2"


def normalize_v3_uri(uri: str) -> str:
    """Decode only the escapes HubSpot decodes for v3 (hex digits in either case)."""
    for encoded, decoded in _V3_DECODES:
        uri = uri.replace(encoded, decoded).replace(encoded.lower(), decoded)
    return uri


def sign_v3(secret: str, method: str, uri: str, body: bytes | str, timestamp: str) -> str:
    """Base64 HMAC-SHA256 (key: the app's client secret) of ``method + uri + body + timestamp``."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    message = method.encode() + normalize_v3_uri(uri).encode("utf-8") + raw + timestamp.encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v2(secret: str, method: str, uri: str, body: bytes | str) -> str:
    """Hex SHA-256 of ``client_secret + method + uri + body``."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    source = secret.encode("utf-8") + method.encode() + uri.encode("utf-8") + raw
    return hashlib.sha256(source).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts in tests: look the name up case-insensitively
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def verify_request(
    secret: str | None,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    now_ms: int | None = None,
    v3_only: bool = False,
) -> Verified:
    """Check that HubSpot signed this request; else raise :class:`SignatureError` (reason).

    ``v3_only`` refuses v2: v2 signs no timestamp, so a captured v2 request can be replayed
    forever (HUBSPOT_SIGNATURE_V3_ONLY, README "Signatures" says when to turn it on).
    """
    if not secret:
        raise SignatureError("the app has no HubSpot client secret configured")
    method = method.upper()
    v3 = _header(headers, "X-HubSpot-Signature-v3")
    timestamp = _header(headers, "X-HubSpot-Request-Timestamp")
    if v3 or timestamp:
        if not v3 or not timestamp:
            raise SignatureError("incomplete v3 signature headers")
        try:
            ts = int(timestamp)
        except ValueError:
            raise SignatureError("malformed X-HubSpot-Request-Timestamp") from None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if abs(now - ts) > MAX_AGE_MS:
            raise SignatureError("stale request: timestamp is more than 5 minutes away")
        expected = sign_v3(secret, method, uri, body, timestamp)
        if not hmac.compare_digest(expected.encode(), v3.strip().encode()):
            raise SignatureError("v3 signature does not match")
        return Verified("v3")
    v2 = _header(headers, "X-HubSpot-Signature")
    if v3_only:
        raise SignatureError("missing v3 signature (v2 is not accepted)")
    if not v2:
        raise SignatureError("missing signature")
    version = (_header(headers, "X-HubSpot-Signature-Version") or "v2").strip().lower()
    if version != "v2":
        raise SignatureError(f"unsupported signature version {version}")
    expected = sign_v2(secret, method, uri, body)
    if not hmac.compare_digest(expected.encode(), v2.strip().lower().encode()):
        raise SignatureError("v2 signature does not match")
    return Verified("v2")
