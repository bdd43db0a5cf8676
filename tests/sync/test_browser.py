"""The Sync Data button in a real browser: click, watch progress, see the list arrive.

The browser is driven from its own thread (so it never meets the asyncio loop that the e2e
journeys' session-wide Playwright leaves on the main thread); the worker runs on the main thread
(RQ installs signal handlers) whenever the script asks for it.
"""

from __future__ import annotations

import os
import queue
import re
import threading

import pytest

from tests.conftest import PASSWORD
from tests.e2e.axe import Audit
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, live_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")


def drive(script, run_jobs) -> None:
    """Run ``script(page, work)`` in a browser thread; ``work()`` runs the worker here, in burst."""
    asks: queue.Queue = queue.Queue()
    errors: list[BaseException] = []

    def work() -> None:
        done = threading.Event()
        asks.put(done)
        assert done.wait(120), "the worker did not finish"

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
                    script(page, work)
                    audit.finish(page)  # axe-core on every page it saw, both widths
                finally:
                    browser.close()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            asks.put(None)

    thread = threading.Thread(target=target, name="browser")
    thread.start()
    while (done := asks.get(timeout=180)) is not None:
        run_jobs(["sync"])
        done.set()
    thread.join(30)
    if errors:
        raise errors[0]


def log_in(page, url, email):
    page.goto(url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_sync_data_shows_progress_then_the_fresh_list(
    live_server,  # noqa: F811
    user,
    ws_id,
    portal,
    run_jobs,
):
    run_jobs(["sync"])  # the connect flow's first sync
    renamed = portal.sequences()[0]
    portal.patch_sequence(renamed["id"], name="Renamed <in> HubSpot")
    url, email = live_server.url, user.email

    def script(page, work):
        from playwright.sync_api import expect

        log_in(page, url, email)
        page.goto(f"{url}/w/{ws_id}/sequences/")
        expect(page.locator(".sync-box")).to_contain_text("Synced just now")
        expect(page.locator("td.seq-name", has_text="Renamed <in> HubSpot")).to_have_count(0)

        page.get_by_role("button", name="Sync Data").click()
        expect(page.locator(".sync-box")).to_contain_text("Sync queued")
        expect(page.get_by_role("button", name="Sync Data")).to_be_disabled()
        work()

        expect(page.locator(".sync-box")).to_contain_text("Synced just now")
        expect(page.locator("td.seq-name", has_text="Renamed <in> HubSpot")).to_have_count(1)
        expect(page.locator(".sync-history tbody tr")).to_have_count(2)
        shot = os.environ.get("SYNC_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)

        page.get_by_label("Search").fill("renamed")
        expect(page.locator("td.seq-name")).to_have_count(1)
        expect(page).to_have_url(re.compile(r"q=renamed"))
        page.locator("td.seq-name a").click()
        expect(page.locator(".topbar h1")).to_have_text("Renamed <in> HubSpot")
        expect(page.locator("#content")).to_contain_text("Who may send it")

    drive(script, run_jobs)


def test_the_first_sync_replaces_the_empty_state_with_the_list(
    live_server,  # noqa: F811
    user,
    ws_id,
    portal,
    run_jobs,
):
    url, email = live_server.url, user.email
    count = len(portal.visible_to_senders())

    def script(page, work):
        from playwright.sync_api import expect

        log_in(page, url, email)
        page.goto(f"{url}/w/{ws_id}/sequences/")
        expect(page.locator(".empty")).to_contain_text("No sequences yet")
        expect(page.locator(".sync-box")).to_contain_text("Sync queued")  # the connect sync
        work()
        expect(page.locator(".sync-box")).to_contain_text("Synced just now")
        expect(page.locator("td.seq-name")).to_have_count(count)
        expect(page.get_by_label("Search")).to_be_visible()

    drive(script, run_jobs)
