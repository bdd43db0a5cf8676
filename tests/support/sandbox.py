"""The HubSpot sandbox in tests and benchmarks: its admin API, and the app pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests

from hubspot_sandbox.runner import RunnerSettings

# Every setting :func:`pointed_at` may change (and puts back).
SANDBOX_CONFIG_KEYS = (
    "HUBSPOT_API_BASE",
    "HUBSPOT_AUTHORIZE_URL",
    "HUBSPOT_CLIENT_ID",
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_APP_ID",
    "HUBSPOT_DEVELOPER_API_KEY",
    "HUBSPOT_DEVELOPER_TOKEN",
    "HUBSPOT_MAX_RETRIES",
    "HUBSPOT_RETRY_BACKOFF",
    "HUBSPOT_RETRY_BACKOFF_MAX",
    "HUBSPOT_TIMEOUT",
    "HUBSPOT_RATE_LIMIT",
    "HUBSPOT_RATE_LIMIT_MAX_WAIT",
    "HUBSPOT_TOKEN_REFRESH_MARGIN",
    "PUBLIC_BASE_URL",
)

# Retries with tiny delays keep fault tests fast.
FAST_RETRIES = {
    "HUBSPOT_MAX_RETRIES": 4,
    "HUBSPOT_RETRY_BACKOFF": 0.01,
    "HUBSPOT_RETRY_BACKOFF_MAX": 0.05,
    "HUBSPOT_TIMEOUT": (2.0, 10.0),
}


# The workflow runner's delivery settings in tests: short backoffs and timeouts.
FAST_RUNNER = {"backoff_base": 0.05, "max_attempts": 4, "connect_timeout": 1, "read_timeout": 5}


def fast_runner(**overrides) -> RunnerSettings:
    """:data:`FAST_RUNNER` (then ``overrides``) as the runner's settings."""
    return RunnerSettings(**{**FAST_RUNNER, **overrides})


def sandbox_settings(server) -> dict:
    """The app's HubSpot settings for a running sandbox (``server.url``, ``server.state.app``):
    API base, consent page, the app's credentials and developer key and token."""
    app = server.state.app
    return {
        "HUBSPOT_API_BASE": server.url,
        "HUBSPOT_AUTHORIZE_URL": server.url + "/oauth/authorize",
        "HUBSPOT_CLIENT_ID": app.client_id,
        "HUBSPOT_CLIENT_SECRET": app.client_secret,
        "HUBSPOT_APP_ID": str(app.app_id),
        "HUBSPOT_DEVELOPER_API_KEY": app.developer_api_key,
        "HUBSPOT_DEVELOPER_TOKEN": app.developer_token,
    }


@contextlib.contextmanager
def pointed_at(app, server, **overrides) -> Iterator[None]:
    """``app``'s config pointed at ``server`` (fast retries, then ``overrides``) for the block;
    every key of :data:`SANDBOX_CONFIG_KEYS` is put back as it was afterwards."""
    saved = {key: app.config[key] for key in SANDBOX_CONFIG_KEYS if key in app.config}
    app.config.update({**sandbox_settings(server), **FAST_RETRIES, **overrides})
    try:
        yield
    finally:
        for key in SANDBOX_CONFIG_KEYS:
            app.config.pop(key, None)
        app.config.update(saved)


class SandboxAdmin:
    """The sandbox's admin JSON API (``/_sandbox/...``); every call must answer 2xx."""

    def __init__(self, url: str):
        self.base = url + "/_sandbox"
        self.http = requests.Session()

    def request(self, method: str, path: str, json=None, **kwargs):
        response = self.http.request(method, self.base + path, json=json, timeout=10, **kwargs)
        assert 200 <= response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json=None, **kwargs):
        return self.request("PATCH", path, json=json, **kwargs)

    def put(self, path: str, json=None, **kwargs):
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)
