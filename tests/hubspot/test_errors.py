"""HubSpot's error JSON becomes typed errors; every field is optional."""

from __future__ import annotations

import json

import requests

from autoseq.hubspot.errors import (
    HubSpotAuthError,
    HubSpotClientError,
    HubSpotUnavailable,
    RateLimited,
    error_from_response,
)
from autoseq.hubspot.http import safe_path


def _response(status: int, body, headers=None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update(headers or {})
    return response


def test_full_error_json_is_parsed():
    error = error_from_response(
        _response(
            400,
            {
                "status": "error",
                "message": "Contact already enrolled in a sequence",
                "correlationId": "abc-123",
                "category": "VALIDATION_ERROR",
                "subCategory": "ALREADY_ENROLLED",
                "context": {"contactId": ["42"]},
            },
        )
    )
    assert isinstance(error, HubSpotClientError)
    assert (error.status, error.category, error.sub_category) == (
        400,
        "VALIDATION_ERROR",
        "ALREADY_ENROLLED",
    )
    assert error.correlation_id == "abc-123"
    assert error.context == {"contactId": ["42"]}
    assert error.message == "Contact already enrolled in a sequence"


def test_a_body_that_is_not_json_still_gives_a_typed_error():
    error = error_from_response(_response(502, b"<html>Bad gateway</html>"))
    assert isinstance(error, HubSpotUnavailable)
    assert error.status == 502
    assert error.category is None and error.correlation_id is None
    assert "502" in error.message


def test_oauth_style_errors_keep_the_rfc6749_code():
    error = error_from_response(
        _response(400, {"status": "BAD_REFRESH_TOKEN", "error": "invalid_grant"})
    )
    assert error.error == "invalid_grant"
    assert error.message  # falls back to a readable text


def test_daily_429_carries_its_policy_and_retry_after():
    error = error_from_response(
        _response(
            429,
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY"},
            {"Retry-After": "3"},
        )
    )
    assert isinstance(error, RateLimited)
    assert error.policy_name == "DAILY"
    assert error.retry_after == 3.0


def test_401_is_an_auth_error():
    error = error_from_response(_response(401, {"category": "EXPIRED_AUTHENTICATION"}))
    assert isinstance(error, HubSpotAuthError)
    assert error.category == "EXPIRED_AUTHENTICATION"


def test_tokens_in_paths_are_masked():
    assert safe_path("/oauth/v1/access-tokens/sbx-at-secret") == "/oauth/v1/access-tokens/***"
    assert safe_path("/oauth/v1/refresh-tokens/rt?x=1") == "/oauth/v1/refresh-tokens/***?x=1"
    assert safe_path("/automation/v4/actions/1?limit=5&hapikey=k-1&x=2") == (
        "/automation/v4/actions/1?limit=5&hapikey=***&x=2"
    )
