"""HubSpot request signatures (hubspot-api.md section 5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

# Escapes HubSpot decodes in the URI before computing a v3 signature.
_V3_DECODES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def normalize_v3_uri(uri: str) -> str:
    """Decode only the escapes HubSpot decodes for v3 (case-insensitive hex)."""
    out = uri
    for enc, dec in _V3_DECODES.items():
        out = out.replace(enc, dec).replace(enc.lower(), dec)
    return out


def sign_v2(client_secret: str, method: str, uri: str, body: str) -> str:
    """v2: hex SHA-256 of ``client_secret + method + uri + body``."""
    source = f"{client_secret}{method}{uri}{body}"
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def sign_v3(client_secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    """v3: Base64 HMAC-SHA256 (key: client secret) of ``method + uri + body + timestamp``."""
    source = f"{method}{normalize_v3_uri(uri)}{body}{timestamp}"
    digest = hmac.new(client_secret.encode("utf-8"), source.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def signed_headers(
    client_secret: str, method: str, uri: str, body: str, timestamp_ms: int | None = None
) -> dict[str, str]:
    """Headers HubSpot sends with an action request: both v3 and v2 signatures."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": sign_v3(client_secret, method, uri, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
        "X-HubSpot-Signature": sign_v2(client_secret, method, uri, body),
        "X-HubSpot-Signature-Version": "v2",
    }
