"""Signatures: HubSpot's public v2 test vector and a v3 round trip with the official SDK."""

from __future__ import annotations

import time

from hubspot.utils.signature import Signature

from hubspot_sandbox.signing import normalize_v3_uri, sign_v2, sign_v3, signed_headers

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://www.example.com/webhook_uri"
BODY = '{"example_field":"example_value"}'


def test_v2_public_vector():
    expected = "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    assert sign_v2(SECRET, "POST", URI, BODY) == expected
    assert Signature.is_valid(
        signature=expected,
        client_secret=SECRET,
        request_body=BODY,
        http_uri=URI,
        http_method="POST",
        signature_version="v2",
    )


def test_v3_round_trip_with_official_client():
    ts = str(int(time.time() * 1000))
    sig = sign_v3(SECRET, "POST", URI, BODY, ts)
    assert Signature.is_valid(
        signature=sig,
        client_secret=SECRET,
        request_body=BODY,
        http_uri=URI,
        http_method="POST",
        signature_version="v3",
        timestamp=ts,
    )


def test_v3_decodes_only_listed_escapes():
    uri = "https://x.test/a%3Ab?q=%40me%2C%20you"
    assert normalize_v3_uri(uri) == "https://x.test/a:b?q=@me,%20you"
    ts = "1700000000000"
    sig = sign_v3(SECRET, "POST", uri, BODY, ts)
    assert sig == Signature.get_signature(
        SECRET, BODY, "v3", "https://x.test/a:b?q=@me,%20you", "POST", ts
    )


def test_signed_headers_carry_both_versions():
    headers = signed_headers(SECRET, "POST", URI, BODY, timestamp_ms=1700000000000)
    assert headers["X-HubSpot-Signature-Version"] == "v2"
    assert headers["X-HubSpot-Request-Timestamp"] == "1700000000000"
    assert headers["X-HubSpot-Signature"] == sign_v2(SECRET, "POST", URI, BODY)
    assert headers["X-HubSpot-Signature-v3"] == sign_v3(SECRET, "POST", URI, BODY, "1700000000000")
