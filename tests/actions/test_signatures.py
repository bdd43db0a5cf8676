"""Only HubSpot may call the action endpoints: v3 (or v2 when v3 is absent), rebuilt URL."""

from __future__ import annotations

import json
import time

import pytest
import requests
from hubspot.utils.signature import Signature

from autoseq.hubspot.signatures import (
    SignatureError,
    normalize_v3_uri,
    sign_v2,
    sign_v3,
    verify_request,
)
from autoseq.models import Enrollment

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"


def test_v2_matches_hubspots_published_vector():
    body = '{"example_field":"example_value"}'
    assert (
        sign_v2(SECRET, "POST", "https://www.example.com/webhook_uri", body)
        == "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    )


def test_v3_matches_the_official_sdk():
    uri = "https://www.example.com/webhook_uri?x=1"
    expected = Signature.get_signature(
        SECRET, "{}", "v3", http_uri=uri, http_method="POST", timestamp="1700000000000"
    )
    assert sign_v3(SECRET, "POST", uri, b"{}", "1700000000000") == expected


def test_v3_decodes_only_the_listed_escapes():
    assert normalize_v3_uri("https://a.b/p%3Ax%2fy?q=%40%20%2B") == "https://a.b/p:x/y?q=@%20%2B"


def _headers(uri, body, ts=None, secret=SECRET):
    ts = str(ts if ts is not None else int(time.time() * 1000))
    return {
        "X-HubSpot-Signature-v3": sign_v3(secret, "POST", uri, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
    }


def test_a_stale_timestamp_is_refused():
    uri, body = "https://a.b/x", b"{}"
    old = int(time.time() * 1000) - 6 * 60 * 1000
    with pytest.raises(SignatureError, match="stale"):
        verify_request(SECRET, "POST", uri, body, _headers(uri, body, old))


def test_missing_signature_is_refused():
    with pytest.raises(SignatureError, match="missing"):
        verify_request(SECRET, "POST", "https://a.b/x", b"{}", {})


# -- over HTTP, against the running app -----------------------------------------------------


@pytest.fixture
def signed(world):
    """POST to the execution endpoint with headers signed by the sandbox app's secret."""
    secret = world.state.app.client_secret
    url = world.url + "/hubspot/actions/enroll"
    contact = world.contacts(1)[0]
    payload = {
        "callbackId": "ap-sig-1",
        "origin": {"portalId": world.portal_id},
        "context": {"workflowId": 5},
        "object": {"objectId": contact, "objectType": "CONTACT"},
        "inputFields": world.direct("team", "ada@acme.test"),
    }
    body = json.dumps(payload).encode()
    return secret, url, body


def _post(url, body, headers):
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers})


def test_a_correctly_signed_request_is_accepted(signed):
    secret, url, body = signed
    response = _post(url, body, _headers(url, body, secret=secret))
    assert response.status_code == 200, response.text
    assert Enrollment.query.count() == 1


@pytest.mark.parametrize("tamper", ["body", "url", "timestamp", "secret"])
def test_tampered_requests_are_refused_and_leave_no_trace(signed, tamper):
    secret, url, body = signed
    headers = _headers(url, body, secret=secret)
    target = url
    if tamper == "body":
        body = body.replace(b"ap-sig-1", b"ap-sig-2")
    elif tamper == "url":
        target = url + "?extra=1"
    elif tamper == "timestamp":
        stamp = int(headers["X-HubSpot-Request-Timestamp"])
        headers["X-HubSpot-Request-Timestamp"] = str(stamp + 1)
    else:
        headers = _headers(url, body, secret="not-the-secret")
    response = _post(target, body, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid signature" and response.json()["message"]
    assert Enrollment.query.count() == 0


def test_a_stale_request_is_refused_over_http(signed):
    secret, url, body = signed
    old = int(time.time() * 1000) - 10 * 60 * 1000
    response = _post(url, body, _headers(url, body, old, secret=secret))
    assert response.status_code == 401 and "stale" in response.json()["message"]


def test_v2_is_accepted_when_v3_headers_are_absent(signed):
    secret, url, body = signed
    headers = {
        "X-HubSpot-Signature": sign_v2(secret, "POST", url, body),
        "X-HubSpot-Signature-Version": "v2",
    }
    assert _post(url, body, headers).status_code == 200
    assert Enrollment.query.count() == 1


def test_a_wrong_v2_signature_is_refused(signed):
    secret, url, body = signed
    headers = {"X-HubSpot-Signature": sign_v2("nope", "POST", url, body)}
    assert _post(url, body, headers).status_code == 401


def test_the_url_is_rebuilt_from_public_base_url_not_the_host_header(signed, app):
    secret, url, body = signed
    headers = _headers(url, body, secret=secret)
    headers["Host"] = "evil.example"
    assert _post(url, body, headers).status_code == 200
