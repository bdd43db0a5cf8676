"""The execution log: keyset paging over (created_at, id), newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from autoseq.extensions import db
from autoseq.models import Enrollment
from autoseq.services import analytics, cursors
from autoseq.services.analytics import Filters


def _insert_with_ties(workspace, make_enrollment, n=137):
    base = datetime.now(UTC) - timedelta(days=3)
    for i in range(n):
        # Groups of three share a timestamp, so the id must break the tie.
        make_enrollment(workspace, created_at=base + timedelta(minutes=i // 3), commit=False)
    db.session.commit()


def _expected_order(workspace):
    rows = db.session.execute(
        db.select(Enrollment.created_at, Enrollment.id).filter_by(workspace_id=workspace.id)
    ).all()
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


def test_keyset_paging_visits_each_row_once_in_order(workspace, make_enrollment):
    _insert_with_ties(workspace, make_enrollment)
    filters = Filters.parse({}, workspace)
    seen, after = [], None
    for _ in range(100):
        page = analytics.log_page(filters, after=after, size=10)
        seen += [r.id for r in page.rows]
        after = page.next_cursor
        if after is None:
            break
    assert seen == _expected_order(workspace)
    assert len(seen) == 137


def test_keyset_paging_back_returns_the_same_pages(workspace, make_enrollment):
    _insert_with_ties(workspace, make_enrollment, n=45)
    filters = Filters.parse({}, workspace)
    pages, after = [], None
    while True:
        page = analytics.log_page(filters, after=after, size=10)
        pages.append([r.id for r in page.rows])
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert pages[0] and page.prev_cursor
    back, before = [], page.prev_cursor
    while before:
        page = analytics.log_page(filters, before=before, size=10)
        back.insert(0, [r.id for r in page.rows])
        before = page.prev_cursor
    assert back == pages[:-1]


def test_first_page_has_no_newer_link(workspace, make_enrollment):
    _insert_with_ties(workspace, make_enrollment, n=12)
    page = analytics.log_page(Filters.parse({}, workspace), size=10)
    assert page.prev_cursor is None and page.next_cursor is not None


def test_log_page_links_contact_and_workflow_in_hubspot(logged_in, workspace, make_enrollment):
    make_enrollment(workspace, contact_id="4242", workflow_id="987654", portal_id=62515)
    html = logged_in.get(f"/w/{workspace.id}/analytics/log").get_data(as_text=True)
    assert "https://app.hubspot.com/contacts/62515/record/0-1/4242" in html
    assert "https://app.hubspot.com/workflows/62515/platform/flow/987654/edit" in html


def test_log_next_link_keeps_filters_and_pages_on(logged_in, workspace, make_enrollment):
    for i in range(60):
        make_enrollment(workspace, status="failed", commit=False, contact_id=f"9{i:03d}")
        make_enrollment(workspace, status="enrolled", commit=False)
    db.session.commit()
    first = logged_in.get(f"/w/{workspace.id}/analytics/log?status=failed").get_data(as_text=True)
    link = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "status=failed" in link and "after=" in link
    second = logged_in.get(link).get_data(as_text=True)
    assert second.count('class="badge badge-failed"') == 10
    assert 'class="badge badge-enrolled"' not in second


def test_broken_cursor_is_a_400_with_its_reason_above_the_newest_rows(
    logged_in, workspace, make_enrollment
):
    make_enrollment(workspace, contact_id="777")
    response = logged_in.get(f"/w/{workspace.id}/analytics/log?after=not-a-cursor")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "That page link is broken (the cursor is not one this list gave out" in html
    assert ">Contact 777<" in html


def test_an_edited_or_foreign_cursor_is_refused_never_a_500(logged_in, workspace, make_enrollment):
    _insert_with_ties(workspace, make_enrollment, n=60)
    first = logged_in.get(f"/w/{workspace.id}/analytics/log").get_data(as_text=True)
    cursor = re.search(r'rel="next" href="[^"]*after=([^"&]+)', first).group(1)
    assert logged_in.get(f"/w/{workspace.id}/analytics/log?after={cursor}").status_code == 200
    with logged_in.application.test_request_context():
        # The right shape signed for another list (the dropdown's), and a forged huge id.
        foreign = cursors.encode("options:sequence", ("a", 1))
        huge = cursors.encode(analytics.log.LOG_LIST, (10**30, 1))
        overflow = cursors.encode(analytics.log.LOG_LIST, (2**62, 1))
    body, _, mac = cursor.partition(".")
    edited = body + "." + mac[::-1]
    for bad in (edited, foreign, huge, overflow, "1_2", "x" * 2000):
        response = logged_in.get(f"/w/{workspace.id}/analytics/log", query_string={"before": bad})
        assert response.status_code == 400, bad
        assert "That page link is broken (the cursor" in response.get_data(as_text=True)


def test_htmx_log_request_gets_the_fragment(logged_in, workspace, make_enrollment):
    make_enrollment(workspace, contact_id="4243")
    response = logged_in.get(
        f"/w/{workspace.id}/analytics/log?status=enrolled", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and ">Contact 4243<" in html and 'hx-push-url="true"' in html


def test_a_refused_callback_shows_in_the_log_and_the_export(logged_in, workspace, make_enrollment):
    make_enrollment(workspace, contact_id="5151", callback_error="CALLBACK_EXPIRED: too late")
    make_enrollment(workspace, contact_id="5252")
    html = logged_in.get(f"/w/{workspace.id}/analytics/log").get_data(as_text=True)
    assert html.count("callback failed") == 1
    assert "HubSpot refused the workflow's callback: CALLBACK_EXPIRED: too late" in html
    csv_text = logged_in.get(f"/w/{workspace.id}/analytics/export.csv").get_data(as_text=True)
    header, *rows = [line.split(",") for line in csv_text.strip().splitlines()]
    errors = {r[header.index("contact_id")]: r[header.index("callback_error")] for r in rows}
    assert errors == {"5151": "CALLBACK_EXPIRED: too late", "5252": ""}


def test_log_shows_each_state_as_before(logged_in, workspace, make_enrollment):
    """A contact already in a sequence shows as failed, noted "already enrolled"."""
    for state in ("queued", "enrolled", "already_enrolled", "failed"):
        make_enrollment(workspace, status=state, contact_id=f"55{len(state)}")
    html = logged_in.get(f"/w/{workspace.id}/analytics/log").get_data(as_text=True)
    assert html.count('class="badge badge-failed"') == 2
    assert html.count('class="badge badge-enrolled"') == 1
    assert html.count('class="badge badge-queued"') == 1
    assert "badge-already_enrolled" not in html
    assert html.count("already enrolled</span>") == 1
