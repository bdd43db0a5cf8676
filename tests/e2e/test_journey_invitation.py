"""An owner invites a colleague who has no account yet; with no mail server, the development
outbox carries the links; the colleague signs up, confirms the address and accepts, in a browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from ..conftest import PASSWORD


def open_latest_link(page, base: str, to: str, path_part: str) -> None:
    page.goto(base + "/dev/mail")
    message = page.locator("article.outbox-message", has_text=to).filter(has_text=path_part)
    link = message.first.locator(f"a[href*='{path_part}']").first.get_attribute("href")
    page.goto(link.replace("http://localhost:5000", base))


def test_invite_sign_up_confirm_and_accept(live_server, browser, page, user, workspace):
    base = live_server.url
    page.goto(base + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/w/{workspace.id}/settings")
    page.get_by_label("Email address").fill("colleague@example.com")
    page.get_by_label("Role").last.select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash")).to_contain_text("Invitation sent to colleague@example.com")
    expect(page.locator("#content")).not_to_contain_text("colleague@example.com")  # not a member

    # The colleague, in another browser, follows the link: log in first, or sign up.
    context = browser.new_context()
    other = context.new_page()
    open_latest_link(other, base, "colleague@example.com", "/invitations/")
    expect(other).to_have_url(re.compile(r"/login"))
    other.get_by_role("link", name="Create an account").click()
    other.get_by_label("Email").fill("colleague@example.com")
    other.get_by_label("Password", exact=True).fill("another long password")
    other.get_by_label("Repeat password").fill("another long password")
    other.get_by_role("button", name="Sign up").click()

    open_latest_link(other, base, "colleague@example.com", "/invitations/")
    expect(other.locator("#content")).to_contain_text("Confirm your address")
    other.get_by_role("button", name="Send me a confirmation link").click()
    open_latest_link(other, base, "colleague@example.com", "/verify/")
    # The confirmation link brings the colleague back to the invitation.
    expect(other.get_by_role("button", name="Accept invitation")).to_be_visible()
    other.get_by_role("button", name="Accept invitation").click()
    expect(other.locator(".switcher summary")).to_have_text(workspace.name)
    context.close()

    page.reload()
    expect(page.locator("#content")).to_contain_text("colleague@example.com")
