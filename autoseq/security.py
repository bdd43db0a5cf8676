"""What every request passes through: trusted proxies, bounded ids, no NUL bytes, headers."""

from __future__ import annotations

from flask import Flask, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

# The largest id a URL may carry: PostgreSQL's ``integer`` (our primary keys). A longer number
# is a 404 at routing, never an overflow in the database driver.
MAX_URL_ID = 2**31 - 1

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Paths whose bodies come from HubSpot (a few KB each) and the setting that bounds them.
SMALL_BODIES = (("/hubspot/actions/", "HUBSPOT_MAX_BODY"),)


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` in every route: ASCII digits, at most :data:`MAX_URL_ID`."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_URL_ID)
        super().__init__(map, *args, **kwargs)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, but a request without the cookie (every HubSpot call, the
    health checks) gets its empty session without building a signer first: the execution
    endpoint is hot, and the signer is the largest part of opening a session."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Install the request guards and headers; call before any blueprint adds its routes."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.session_interface = CookieSessionInterface()
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # Trust exactly the configured proxies: the client address is the one the outermost
        # trusted proxy saw, whatever a client writes into X-Forwarded-For before it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    # Runs before anything that could read the body (the NUL check reads forms).
    app.before_request(bound_small_bodies)
    app.before_request(refuse_nul_bytes)
    app.after_request(add_security_headers)


def bound_small_bodies():
    """Refuse a HubSpot endpoint's body over its small limit before reading any of it.

    A declared length over the limit is a 413 at once (an unsigned 100 MB POST no longer holds a
    web thread); a body without a declared length (chunked) is cut off by Werkzeug at the same
    limit while it is read (``request.max_content_length``). Elsewhere MAX_CONTENT_LENGTH applies.
    """
    for prefix, setting in SMALL_BODIES:
        if request.path.startswith(prefix):
            limit = current_app.config[setting]
            request.max_content_length = limit
            if request.content_length is not None and request.content_length > limit:
                abort(413, f"The body may be at most {limit} bytes.")


def refuse_nul_bytes():
    """A NUL byte in the path, the query or a form is a 400: no database stores one in text."""
    if "\x00" in request.path:
        abort(400, "The address holds a NUL byte.")
    sources = [request.args]
    if request.mimetype in _FORM_TYPES:
        sources.append(request.form)
    for source in sources:
        for key, value in source.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400, f"The parameter {key.replace(chr(0), '')!r} holds a NUL byte.")


def add_security_headers(response):
    """CSP (own scripts and styles), no framing, no sniffing, short referrer; HSTS on https."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if current_app.config["PUBLIC_BASE_URL"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response
