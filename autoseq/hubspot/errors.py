"""Typed HubSpot errors, parsed from HubSpot's error JSON (hubspot-api.md §7).

Every field of the error JSON is optional when parsing: HubSpot's OAuth endpoints answer RFC 6749
style (``error``, ``error_description``) with legacy ``status``/``message``, the APIs answer
``category``/``subCategory``/``correlationId``, and a proxy in between may answer HTML.
"""

from __future__ import annotations


class HubSpotError(Exception):
    """A call to HubSpot failed. ``status`` is the HTTP status (None when no answer came)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        category: str | None = None,
        sub_category: str | None = None,
        correlation_id: str | None = None,
        context: dict | None = None,
        error: str | None = None,
        policy_name: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.category = category
        self.sub_category = sub_category
        self.correlation_id = correlation_id
        self.context = context
        self.error = error  # RFC 6749 ``error`` of the OAuth endpoints (e.g. invalid_grant)
        self.policy_name = policy_name
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.status:
            parts.append(f"(HTTP {self.status}")
            detail = self.sub_category or self.category or self.error
            parts[-1] += f", {detail})" if detail else ")"
        return " ".join(parts)


class HubSpotAuthError(HubSpotError):
    """HubSpot refused the access token (401), even after one refresh."""


class NeedsReconnect(HubSpotError):
    """The refresh token is dead (invalid_grant) or the workspace is not connected.

    The connection is marked ``needs_reconnect``; jobs should stop retrying until an admin
    reconnects.
    """


class RateLimited(HubSpotError):
    """A 429 that could not be waited out (policy DAILY, or the wait was too long)."""


class HubSpotUnavailable(HubSpotError):
    """5xx, timeout or dropped connection, after the bounded retries."""


class HubSpotClientError(HubSpotError):
    """Any other 4xx (validation, permission, not found...)."""


def _retry_after(headers) -> float | None:
    value = (headers or {}).get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(response, cls: type[HubSpotError] | None = None) -> HubSpotError:
    """Build the typed error for a failed ``requests`` response."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    message = body.get("message") or body.get("error_description") or ""
    if not isinstance(message, str) or not message:
        message = f"HubSpot answered HTTP {status}"
    if cls is None:
        if status == 429:
            cls = RateLimited
        elif status == 401:
            cls = HubSpotAuthError
        elif status >= 500:
            cls = HubSpotUnavailable
        else:
            cls = HubSpotClientError
    context = body.get("context")
    return cls(
        message,
        status=status,
        category=_str_or_none(body.get("category")),
        sub_category=_str_or_none(body.get("subCategory")),
        correlation_id=_str_or_none(body.get("correlationId")),
        context=context if isinstance(context, dict) else None,
        error=_str_or_none(body.get("error")),
        policy_name=_str_or_none(body.get("policyName")),
        retry_after=_retry_after(response.headers),
    )


def _str_or_none(value) -> str | None:
    return value if isinstance(value, str) and value else None
