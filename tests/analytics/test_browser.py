"""The analytics filters in a real browser: htmx swaps the results and the URL keeps the filters.

The browser runs in its own thread, so it never meets an asyncio loop another browser test may
have left on the main thread.
"""

from __future__ import annotations

import os
import threading

import pytest

from autoseq.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.axe import Audit
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, live_server  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]


def in_browser(script) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(10_000)
                audit = Audit(context, script.__qualname__.split(".")[0])
                try:
                    page = context.new_page()
                    script(page)
                    audit.finish(page)  # axe-core on every page it saw, both widths
                finally:
                    browser.close()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="browser")
    thread.start()
    thread.join(120)
    if errors:
        raise errors[0]


def test_filter_swaps_results_in_place_and_keeps_the_url(
    live_server,  # noqa: F811
    user,
    workspace,
    make_enrollment,
):
    for status in ("failed", "failed", "enrolled", "enrolled", "enrolled"):
        make_enrollment(workspace, status=status, commit=False)
    db.session.commit()
    url, email, ws_id = live_server.url, user.email, workspace.id

    def script(page):
        from playwright.sync_api import expect

        page.goto(url + "/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{url}/w/{ws_id}/analytics/")
        expect(page.locator("#stat-total strong")).to_have_text("5")
        page.evaluate("window.__notReloaded = true")

        page.get_by_label("Status").select_option("failed")
        expect(page.locator("#stat-total strong")).to_have_text("2")
        assert "status=failed" in page.url
        assert page.evaluate("window.__notReloaded") is True  # swapped by htmx, no reload

        page.reload()  # the bookmarked URL renders the same filtered view
        expect(page.locator("#stat-total strong")).to_have_text("2")
        expect(page.get_by_label("Status")).to_have_value("failed")

    in_browser(script)
