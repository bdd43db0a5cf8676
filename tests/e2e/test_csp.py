"""Under the Content-Security-Policy (no inline script or style) the pages still work."""

from __future__ import annotations

from playwright.sync_api import expect

from autoseq.extensions import db
from autoseq.models import Membership
from autoseq.services import accounts

from ..conftest import PASSWORD


def test_confirmations_and_htmx_work_under_the_csp(live_server, page, user, workspace, make_user):
    colleague = make_user("colleague@example.com")
    accounts.add_member(workspace, colleague, "member")
    response = page.goto(live_server.url + "/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/w/{workspace.id}/settings")
    assert page.evaluate("typeof window.htmx") == "object"  # the vendored htmx ran

    remove = page.locator("form[data-confirm] button", has_text="Remove")
    page.once("dialog", lambda dialog: dialog.dismiss())
    remove.click()
    page.wait_for_timeout(300)
    db.session.commit()
    assert db.session.scalar(db.select(Membership).filter_by(user_id=colleague.id)) is not None

    page.once("dialog", lambda dialog: dialog.accept())
    remove.click()
    expect(page.locator(".flash")).to_contain_text("was removed")
    db.session.commit()
    assert db.session.scalar(db.select(Membership).filter_by(user_id=colleague.id)) is None
