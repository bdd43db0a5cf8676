"""Browser journeys: the app over real HTTP, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import threading

import pytest
from werkzeug.serving import make_server

from .axe import Audit

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    """Without a Chromium binary the journeys cannot run: skip them, saying why."""
    if os.path.exists(CHROMIUM):
        return
    reason = f"no Chromium at {CHROMIUM}: install Debian's chromium package (.ci/run does)"
    for item in items:
        if "e2e" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason=reason))


class LiveServer:
    """The Flask app on a real port, in a background thread (threaded, like gunicorn's threads)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app):
    previous = app.config["PUBLIC_BASE_URL"]
    server = LiveServer(app).start()
    app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    app.config["PUBLIC_BASE_URL"] = previous
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh page whose every visited page is audited by axe-core (see ``tests/e2e/axe.py``);
    the test fails if any page broke the Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    audit = Audit(context, request.node.name)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text
            and violations.append(f"{page.url}: {message.text}")
        ),
    )
    request.node.axe_audit = (audit, page)
    yield page
    context.close()
    assert not violations, "\n".join(violations)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Once a journey has passed, and while its fixtures still stand, audit every page it saw."""
    result = yield
    audit = getattr(item, "axe_audit", None)
    if audit is not None:
        audit[0].finish(audit[1])
    return result
