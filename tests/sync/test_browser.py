"""The Sync Data button in a real browser: click, watch progress, see the list arrive."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import CHROMIUM, browser, live_server, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")


def log_in(page, url, email):  # noqa: F811
    page.goto(url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_sync_data_shows_progress_then_the_fresh_list(
    live_server,  # noqa: F811
    page,  # noqa: F811
    user,
    ws_id,
    portal,
    run_jobs,
):
    from playwright.sync_api import expect

    run_jobs(["sync"])  # the connect flow's first sync
    renamed = portal.sequences()[0]
    portal.patch_sequence(renamed["id"], name="Renamed <in> HubSpot")
    log_in(page, live_server.url, user.email)
    page.goto(f"{live_server.url}/w/{ws_id}/sequences/")
    expect(page.locator(".sync-box")).to_contain_text("Synced just now")
    expect(page.locator("td.seq-name", has_text="Renamed <in> HubSpot")).to_have_count(0)

    page.get_by_role("button", name="Sync Data").click()
    expect(page.locator(".sync-box")).to_contain_text("Sync queued")
    expect(page.get_by_role("button", name="Sync Data")).to_be_disabled()
    run_jobs(["sync"])

    expect(page.locator(".sync-box")).to_contain_text("Synced just now")
    expect(page.locator("td.seq-name", has_text="Renamed <in> HubSpot")).to_have_count(1)
    expect(page.locator(".sync-history tbody tr")).to_have_count(2)
    page.screenshot(
        path=os.environ.get("SYNC_SCREENSHOT", "/tmp/sync-sequences.png"), full_page=True
    )

    page.get_by_label("Search").fill("renamed")
    expect(page.locator("td.seq-name")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=renamed"))
    page.locator("td.seq-name a").click()
    expect(page.locator(".topbar h1")).to_have_text("Renamed <in> HubSpot")
    expect(page.locator("#content")).to_contain_text("Who may send it")


def test_the_first_sync_replaces_the_empty_state_with_the_list(
    live_server,  # noqa: F811
    page,  # noqa: F811
    user,
    ws_id,
    portal,
    run_jobs,
):
    from playwright.sync_api import expect

    log_in(page, live_server.url, user.email)
    page.goto(f"{live_server.url}/w/{ws_id}/sequences/")
    expect(page.locator(".empty")).to_contain_text("No sequences yet")
    expect(page.locator(".sync-box")).to_contain_text("Sync queued")  # the connect sync
    run_jobs(["sync"])
    expect(page.locator(".sync-box")).to_contain_text("Synced just now")
    expect(page.locator("td.seq-name")).to_have_count(len(portal.visible_to_senders()))
    expect(page.get_by_label("Search")).to_be_visible()
