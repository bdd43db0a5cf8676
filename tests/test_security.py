"""Security headers on every response, bounded request bodies, and the v3-only signature setting."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from autoseq.hubspot.signatures import SignatureError, sign_v2, sign_v3, verify_request

from .test_bad_input import SECRET, execution, signed  # noqa: F401  (the fixture)


@pytest.mark.parametrize(
    "path", ["/login", "/signup", "/nowhere", "/healthz", "/static/app.js", "/w/1/sequences/"]
)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers  # the base URL is http here


def test_hsts_when_the_public_base_url_is_https(app, client):
    app.config["PUBLIC_BASE_URL"] = "https://autoseq.example.com"
    try:
        response = client.get("/login")
    finally:
        app.config["PUBLIC_BASE_URL"] = "http://localhost:5000"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_pages_have_no_inline_script_or_style(logged_in, workspace, make_user):
    from autoseq.services import accounts

    accounts.add_member(workspace, make_user(), "member")  # settings then offers "Remove"
    for path in ("sequences/", "analytics/", "mailboxes/", "settings", "settings/hubspot/"):
        html = logged_in.get(f"/w/{workspace.id}/{path}").get_data(as_text=True)
        assert "<script>" not in html and "<style" not in html and " style=" not in html, path
        assert " onsubmit=" not in html and " onclick=" not in html, path


def test_a_body_over_the_global_limit_is_413(app, client):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/login", data={"email": "a@example.com", "password": big})
    assert response.status_code == 413


def test_a_large_body_is_refused_before_it_is_read(app):
    """An unsigned 100 MB POST is answered 413 at once: the server does not wait for the body."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
            start = time.perf_counter()
            sock.sendall(
                b"POST /hubspot/actions/enroll HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"
            )
            answer = sock.recv(200)
            elapsed = time.perf_counter() - start
    finally:
        server.shutdown()
    print(f"100 MB unsigned POST answered in {elapsed * 1000:.1f} ms")
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert elapsed < 1.0


def _raw_request(app, request: bytes) -> bytes:
    """Send raw bytes to the app on a real port; the first bytes of the answer."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(request)
            return sock.recv(200)
    finally:
        server.shutdown()


def test_a_chunked_body_over_the_hubspot_limit_is_cut_off(app):
    chunk = b"x" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
    answer = _raw_request(
        app,
        b"POST /hubspot/actions/enroll HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_a_form_typed_body_to_a_hubspot_endpoint_is_bounded_too(app, client):
    big = "x" * (app.config["HUBSPOT_MAX_BODY"] + 1)
    response = client.post("/hubspot/actions/options", data={"a": big})
    assert response.status_code == 413


def test_the_hubspot_endpoints_take_small_bodies_only(app, signed):  # noqa: F811
    padding = "x" * app.config["HUBSPOT_MAX_BODY"]
    response = signed("/hubspot/actions/enroll", execution(padding=padding))
    assert response.status_code == 413
    assert response.get_json()["error"] == "Too large"


def test_v3_only_refuses_v2_signatures(app, signed):  # noqa: F811
    body = execution(origin={"portalId": 777})  # no such portal: a 400 once the signature passes
    assert signed("/hubspot/actions/enroll", body, version="v2").status_code == 400
    app.config["HUBSPOT_SIGNATURE_V3_ONLY"] = True
    try:
        refused = signed("/hubspot/actions/enroll", body, version="v2")
        accepted = signed("/hubspot/actions/enroll", body, version="v3")
    finally:
        app.config["HUBSPOT_SIGNATURE_V3_ONLY"] = False
    assert refused.status_code == 401 and "v2 is not accepted" in refused.get_json()["message"]
    assert accepted.status_code == 400  # past the signature check


def test_verify_request_v3_only():
    uri, body = "https://a.b/x", b"{}"
    headers = {"X-HubSpot-Signature": sign_v2(SECRET, "POST", uri, body)}
    assert verify_request(SECRET, "POST", uri, body, headers).version == "v2"
    with pytest.raises(SignatureError, match="v2 is not accepted"):
        verify_request(SECRET, "POST", uri, body, headers, v3_only=True)
    ts = str(int(time.time() * 1000))
    v3 = {
        "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", uri, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
    }
    assert verify_request(SECRET, "POST", uri, body, v3, v3_only=True).version == "v3"
