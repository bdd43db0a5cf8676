"""The product's whole promise in a real browser: connect HubSpot, see the sequences, set up a
rotation, let a HubSpot workflow run the action for 40 contacts, and see how they were spread."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from autoseq.extensions import db
from autoseq.models import Enrollment

from ..conftest import PASSWORD

CONTACTS = 40


def pick(select, text: str) -> None:
    """Choose the option of ``select`` whose text contains ``text``."""
    value = select.evaluate("(s, t) => [...s.options].find(o => o.text.includes(t)).value", text)
    select.select_option(value)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_connect_sync_rotate_and_enroll_from_a_workflow(
    live_server, page, sandbox, sandbox_admin, portal_id, user, workspace, run_jobs, runner
):
    ws = f"{live_server.url}/w/{workspace.id}"
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Connect HubSpot through the sandbox's consent page.
    page.goto(ws + "/settings/hubspot/")
    page.get_by_role("button", name="Connect HubSpot").click()
    page.get_by_role("button", name="Connect app").click()
    expect(page.locator(".flash")).to_contain_text(f"portal {portal_id} is connected")

    # The first sync was queued by connecting; a worker runs it.
    run_jobs(["sync"])
    page.goto(ws + "/sequences/")
    expect(page.get_by_role("link", name="Cold Outbound - SaaS Companies")).to_be_visible()

    # A weighted rotation over three reps.
    page.goto(ws + "/mailboxes/rotations/new")
    page.get_by_label("Name").fill("SDR Team")
    weights = page.locator("table input[type=number], table input[type=text]")
    expect(weights.first).to_be_hidden()  # Even split: no weights to fill in
    page.get_by_label("Split").select_option(label="Weighted")
    expect(weights.first).to_be_visible()
    selects = page.locator("table select")
    for row, (who, weight) in enumerate([("alice", "50"), ("bruno", "30"), ("chloe", "20")]):
        pick(selects.nth(row), who)
        weights.nth(row).fill(weight)
    # The editor added an empty row once the last one was filled, and keeps the total.
    expect(page.locator("table.rotation-members tbody tr")).to_have_count(4)
    expect(page.locator(".weight-total")).to_contain_text("Weights add up to 100%")
    page.get_by_role("button", name="Create rotation").click()
    expect(page.locator(".flash")).to_contain_text("SDR Team")

    # The operator publishes the action; in HubSpot a workflow is set up with it and run.
    published = runner.invoke(args=["hubspot", "publish-action"])
    assert published.exit_code == 0, published.output
    page.goto(f"{sandbox.url}/_sandbox/ui/{portal_id}/workflow")
    pick(page.locator("#in_sequence"), "Cold Outbound - SaaS Companies")
    pick(page.locator("#in_send_from"), "otation")
    pick(page.locator("#in_rotation"), "SDR Team")
    page.get_by_label("First contact id").fill("1001")
    page.get_by_label("Number of contacts").fill(str(CONTACTS))
    page.get_by_role("button", name="Run the workflow").click()

    # HubSpot delivers the executions; AutoSeq answers BLOCK and queues each enrollment.
    def all_blocked():
        callbacks = sandbox_admin.get(f"/portals/{portal_id}/callbacks")["results"]
        return len(callbacks) == CONTACTS and all(c["status"] == "blocked" for c in callbacks)

    wait_for(all_blocked, what="every execution to be answered BLOCK")

    # While they are queued, the top bar says so on every page, and Analytics keeps itself
    # current: once the worker has run, the figures change without a reload.
    page.goto(ws + "/analytics/")
    expect(page.locator("#activity")).to_contain_text(f"{CONTACTS} enrollments in progress")
    expect(page.locator("#content")).to_contain_text(f"{CONTACTS} still queued")
    page.evaluate("window.__notReloaded = true")
    run_jobs(["enrollments"])
    expect(page.locator("#activity")).to_have_text("", timeout=15_000)
    expect(page.locator("#content")).not_to_contain_text("still queued")
    assert page.evaluate("window.__notReloaded") is True

    callbacks = sandbox_admin.get(f"/portals/{portal_id}/callbacks")["results"]
    assert all(c["completion"] is not None for c in callbacks)
    enrolled = sandbox_admin.get(f"/portals/{portal_id}/enrollments")["results"]
    contacts = [e["contactId"] for e in enrolled]
    assert len(contacts) == len(set(contacts))  # nobody enrolled twice
    rows = db.session.scalars(db.select(Enrollment)).all()
    assert len(rows) == CONTACTS and all(r.status != "queued" for r in rows)
    succeeded = [r for r in rows if r.status == "enrolled"]
    assert len(succeeded) == len(contacts)

    # What the user sees: the analytics headline and the rotation's spread against its weights.
    page.goto(ws + "/analytics/")
    expect(page.locator("#content")).to_contain_text("SDR Team")
    expect(page.locator("#content")).to_contain_text(str(len(succeeded)))
    # Breakdowns sort on any column, both ways, and say so on the header.
    header = page.locator("#by-mailbox th", has_text="Enrollments")
    expect(header).to_have_attribute("aria-sort", "descending")
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    counts = page.locator("#by-mailbox tbody td:nth-child(2)").all_inner_texts()
    assert [int(c.replace(",", "")) for c in counts] == sorted(int(c) for c in counts)
    page.locator("#by-mailbox th", has_text="Sender mailbox").get_by_role("button").click()
    expect(page.locator("#by-mailbox th", has_text="Sender mailbox")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(header).not_to_have_attribute("aria-sort", re.compile(".+"))
    page.goto(ws + "/mailboxes/")
    page.get_by_role("link", name="SDR Team").first.click()
    spread = page.locator("#content")
    expect(spread).to_contain_text(f"{len(succeeded)} enrolled through this rotation")
    expect(spread).to_contain_text("of target 50.0%")
    # The bars get their width from app.js (the CSP refuses inline style attributes).
    target = page.locator(".spread-target").first
    assert target.evaluate("bar => bar.style.width") == "50%"

    # The other pages an admin would show: the log, one sequence, a mailbox's edit form, the
    # rotation's delete confirmation and the settings (each audited by axe-core at both widths).
    page.goto(ws + "/analytics/log")
    expect(page.locator("#content")).to_contain_text("SDR Team")
    # Names, not ids: the workflow as HubSpot names it, each contact by name and email.
    expect(page.locator("#content")).to_contain_text("New MQL: start SDR outreach")
    first = page.locator(".log-table td.contact a").first
    expect(first).not_to_have_text(re.compile(r"^(Contact )?\d+$"))
    expect(page.locator(".log-table td.contact").first).to_contain_text("@")
    page.goto(ws + "/sequences/")
    page.get_by_role("link", name="Cold Outbound - SaaS Companies").click()
    expect(page.locator(".topbar h1")).to_contain_text("Cold Outbound - SaaS Companies")
    page.goto(ws + "/mailboxes/")
    page.locator("a", has_text="Edit").first.click()
    expect(page.locator("form")).not_to_have_count(0)
    page.goto(ws + "/mailboxes/")
    page.get_by_role("link", name="SDR Team").first.click()
    page.goto(page.url + "/delete")
    expect(page.locator("#content")).to_contain_text("SDR Team")
    page.goto(ws + "/settings")
    expect(page.locator("#content")).to_contain_text(user.email)
