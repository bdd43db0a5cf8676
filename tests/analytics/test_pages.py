"""The analytics page over HTTP: filters from the URL, htmx fragments, bad input, isolation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from autoseq.extensions import db
from autoseq.services import accounts

from ..conftest import login


def _stat(html, name):
    match = re.search(rf'id="stat-{name}"><span class="label">[^<]+</span><strong>([^<]+)<', html)
    return match.group(1)


def test_page_shows_headline_figures_and_chart(logged_in, workspace, make_enrollment):
    for status in ("enrolled", "enrolled", "enrolled", "failed"):
        make_enrollment(workspace, status=status)
    html = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert (_stat(html, "total"), _stat(html, "succeeded"), _stat(html, "failed")) == (
        "4",
        "3",
        "1",
    )
    assert _stat(html, "rate") == "75.0%"
    assert "<svg" in html and 'class="ok"' in html
    assert '<script src="http' not in html


def test_filters_come_from_the_url(logged_in, workspace, make_sequence, make_enrollment):
    alpha, beta = make_sequence(workspace, "Alpha"), make_sequence(workspace, "Beta")
    for _ in range(3):
        make_enrollment(workspace, sequence=alpha, status="failed")
    make_enrollment(workspace, sequence=alpha)
    make_enrollment(workspace, sequence=beta, status="failed")
    url = f"/w/{workspace.id}/analytics/?period=7&sequence={alpha.id}&status=failed"
    html = logged_in.get(url).get_data(as_text=True)
    assert _stat(html, "total") == "3"
    assert f'<option value="{alpha.id}" selected>' in html


def test_old_rows_fall_outside_the_default_period(logged_in, workspace, make_enrollment):
    make_enrollment(workspace, created_at=datetime.now(UTC) - timedelta(days=45))
    make_enrollment(workspace)
    html = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert _stat(html, "total") == "1"
    html = logged_in.get(f"/w/{workspace.id}/analytics/?period=90").get_data(as_text=True)
    assert _stat(html, "total") == "2"


def test_htmx_request_gets_the_fragment(logged_in, workspace, make_enrollment):
    make_enrollment(workspace)
    response = logged_in.get(
        f"/w/{workspace.id}/analytics/?period=7", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and 'id="stat-total"' in html
    assert 'hx-push-url="true"' in html
    full = logged_in.get(f"/w/{workspace.id}/analytics/?period=7").get_data(as_text=True)
    assert "<html" in full and 'id="analytics-body"' in full


def test_breakdown_rows_link_to_the_filtered_log(
    logged_in, workspace, make_sequence, make_enrollment
):
    seq = make_sequence(workspace, "Alpha")
    make_enrollment(workspace, sequence=seq, workflow_id="31337")
    html = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert f"/w/{workspace.id}/analytics/log?period=30&amp;sequence={seq.id}" in html
    assert f"/w/{workspace.id}/analytics/log?period=30&amp;workflow=31337" in html


def test_removed_sequence_shows_a_badge_on_the_page(
    logged_in, workspace, make_sequence, make_enrollment
):
    make_enrollment(workspace, sequence=make_sequence(workspace, "Gone", removed=True))
    html = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert re.search(r"Gone</a>\s*<span class=\"badge badge-removed\">removed</span>", html)


@pytest.mark.parametrize(
    "query, field, message",
    [
        (
            "period=custom&from=2026-05-10&to=2026-05-01",
            "to",
            "The end date is before the start date.",
        ),
        ("period=custom&from=yesterday&to=2026-05-01", "from", "Not a date (use YYYY-MM-DD)."),
        ("period=custom&from=2024-01-01&to=2025-06-30", "to", "Choose at most 366 days."),
        ("period=forever", "period", "Choose one of the listed periods."),
        ("sequence=999999", "sequence", "No such sequence here."),
        ("sequence=abc", "sequence", "No such sequence here."),
        ("workflow=12;drop", "workflow", "A workflow id is a number"),
        ("status=maybe", "status", "Choose queued, enrolled or failed."),
        ("mailbox=-1", "mailbox", "No such mailbox here."),
    ],
)
def test_bad_filter_gets_a_message_beside_it(
    logged_in, workspace, make_enrollment, query, field, message
):
    make_enrollment(workspace)
    for path in ("", "log"):
        response = logged_in.get(f"/w/{workspace.id}/analytics/{path}?{query}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert f'id="f-{field}-errors"><li>{message}' in html
        assert 'id="stat-total"' not in html and "enrollment-" not in html


def test_unknown_workflow_id_is_an_empty_result(logged_in, workspace, make_enrollment):
    make_enrollment(workspace, workflow_id="111")
    html = logged_in.get(f"/w/{workspace.id}/analytics/?workflow=222").get_data(as_text=True)
    assert _stat(html, "total") == "0"


@pytest.fixture
def other_workspace(make_user, make_sequence, make_mailbox, make_rotation, make_enrollment):
    stranger = make_user("stranger@example.com")
    other = accounts.create_workspace(stranger, "Globex")
    seq = make_sequence(other, "Globex Secret Sequence")
    box = make_mailbox(other, "secret@globex.example")
    rotation = make_rotation(other, "Globex rotation")
    for _ in range(5):
        make_enrollment(
            other, sequence=seq, mailbox_id=box.id, rotation_id=rotation.id, contact_id="66666"
        )
    return other, seq, box, rotation


@pytest.mark.parametrize("param", ["sequence", "mailbox", "rotation"])
def test_another_workspaces_id_is_refused(logged_in, workspace, other_workspace, param):
    _, seq, box, rotation = other_workspace
    value = {"sequence": seq.id, "mailbox": box.id, "rotation": rotation.id}[param]
    for path in ("", "log", "export.csv"):
        response = logged_in.get(f"/w/{workspace.id}/analytics/{path}?{param}={value}")
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 400)
        assert "No such" in body
        assert "Globex" not in body and "66666" not in body and "secret@" not in body


def test_another_workspaces_rows_never_show(logged_in, workspace, other_workspace, make_enrollment):
    make_enrollment(workspace, contact_id="12345")
    html = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert _stat(html, "total") == "1" and "Globex" not in html
    log = logged_in.get(f"/w/{workspace.id}/analytics/log").get_data(as_text=True)
    assert "12345" in log and "66666" not in log
    export = logged_in.get(f"/w/{workspace.id}/analytics/export.csv").get_data(as_text=True)
    assert "12345" in export and "66666" not in export


def test_non_member_gets_404(client, make_user, workspace):
    outsider = make_user("outsider@example.com")
    accounts.create_workspace(outsider, "Elsewhere")
    login(client, outsider.email)
    for path in ("", "log", "export.csv"):
        assert client.get(f"/w/{workspace.id}/analytics/{path}").status_code == 404


def test_workspace_zone_sets_the_days(logged_in, workspace, make_enrollment):
    workspace.timezone = "Pacific/Kiritimati"  # UTC+14: local "today" is ahead of UTC
    db.session.commit()
    make_enrollment(workspace)
    html = logged_in.get(f"/w/{workspace.id}/analytics/?period=7").get_data(as_text=True)
    assert "Pacific/Kiritimati" in html and _stat(html, "total") == "1"


def test_the_activity_indicator_counts_queued_work_and_announces_changes(
    logged_in, workspace, make_enrollment
):
    idle = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert 'id="activity"' in idle and "every 3s" not in idle  # nothing queued: no polling
    for _ in range(3):
        make_enrollment(workspace, status="queued")
    page = logged_in.get(f"/w/{workspace.id}/analytics/").get_data(as_text=True)
    assert "3 enrollments in progress" in page and "was=3" in page and "every 3s" in page
    same = logged_in.get(f"/w/{workspace.id}/activity?was=3", headers={"HX-Request": "true"})
    assert "HX-Trigger" not in same.headers
    moved = logged_in.get(f"/w/{workspace.id}/activity?was=5", headers={"HX-Request": "true"})
    assert moved.headers["HX-Trigger"] == "enrollments-changed"
    assert "3 enrollments in progress" in moved.get_data(as_text=True)
