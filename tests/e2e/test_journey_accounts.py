"""A new user signs up, creates a workspace and walks every area, in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_sign_up_create_workspace_and_see_every_area(live_server, page):
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_role("link", name="Create an account").click()

    page.get_by_label("Your name").fill("Sam Seller")
    page.get_by_label("Email").fill("sam@example.com")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat password").fill("different")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#password-errors")).to_contain_text("Use at least 10 characters.")
    expect(page.get_by_label("Email")).to_have_value("sam@example.com")

    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_label("Repeat password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Create a workspace")).to_be_visible()

    # The time zone starts at the browser's own and can be found by typing part of its name.
    expect(page.locator("select#timezone")).to_have_value(
        page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    )
    page.get_by_label("Filter time zones").fill("new york")
    expect(page.locator("select#timezone")).to_have_value("America/New_York")
    page.get_by_label("Workspace name").fill("Sam's Team")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.locator(".switcher summary")).to_have_text("Sam's Team")

    for link, heading in [
        ("Sequences", "Sequences"),
        ("Analytics", "Analytics"),
        ("Mailboxes & Rotations", "Mailboxes & Rotations"),
        ("Settings", "Settings"),
    ]:
        page.locator("nav.sidebar").get_by_role("link", name=link, exact=True).click()
        expect(page.locator(".topbar h1")).to_have_text(heading)
        expect(page.locator(".error-page")).to_have_count(0)
    expect(page.locator("#content")).to_contain_text("sam@example.com")  # the members table

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill("sam@example.com")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".switcher summary")).to_have_text("Sam's Team")
