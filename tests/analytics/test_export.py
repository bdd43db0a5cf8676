"""The CSV export of the filtered log."""

from __future__ import annotations

import csv
import io

from autoseq.extensions import db


def _csv(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_export_is_streamed_csv_of_the_filtered_rows(logged_in, workspace, make_enrollment):
    for i in range(25):
        make_enrollment(workspace, status="failed", contact_id=f"f{i}", commit=False)
        make_enrollment(workspace, status="enrolled", contact_id=f"e{i}", commit=False)
    db.session.commit()
    response = logged_in.get(f"/w/{workspace.id}/analytics/export.csv?status=failed")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert rows[0][:3] == ["created_at", "enrollment_id", "contact_id"]
    assert sorted(r[2] for r in rows[1:]) == sorted(f"f{i}" for i in range(25))
    assert {r[8] for r in rows[1:]} == {"failed"}


def test_export_guards_against_csv_injection(logged_in, workspace, make_enrollment):
    make_enrollment(
        workspace,
        sequence_name='=HYPERLINK("http://evil.example","click")',
        failure_reason="@SUM(1+1)",
        status="failed",
        sender_email="+rep@example.com",
        contact_id="-5",
    )
    (header, row) = _csv(logged_in.get(f"/w/{workspace.id}/analytics/export.csv"))
    record = dict(zip(header, row, strict=True))
    assert record["sequence_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert record["failure_reason"] == "'@SUM(1+1)"
    assert record["sender_email"] == "'+rep@example.com"
    assert record["contact_id"] == "'-5"


def test_export_with_bad_filters_is_a_400_with_the_reason(logged_in, workspace):
    response = logged_in.get(f"/w/{workspace.id}/analytics/export.csv?period=custom&from=nope")
    assert response.status_code == 400
    assert "Not a date" in response.get_data(as_text=True)


def test_export_spans_several_chunks_in_order(logged_in, workspace, make_enrollment, app):
    from autoseq.services import analytics

    n = analytics.EXPORT_CHUNK * 2 + 7
    for i in range(n):
        make_enrollment(workspace, contact_id=str(i), commit=False)
    db.session.commit()
    response = logged_in.get(f"/w/{workspace.id}/analytics/export.csv")
    ids = [int(r[1]) for r in _csv(response)[1:]]
    assert len(ids) == n and ids == sorted(ids)


def test_export_names_the_record_an_enrollment_came_from(logged_in, workspace, make_enrollment):
    make_enrollment(
        workspace, contact_id="7001", record_type="DEAL", record_id="9001", record_name="=Acme"
    )
    make_enrollment(workspace, contact_id="7002")
    (header, *rows) = _csv(logged_in.get(f"/w/{workspace.id}/analytics/export.csv"))
    records = {
        r[header.index("contact_id")]: tuple(
            r[header.index(k)] for k in ("record_type", "record_id", "record_name")
        )
        for r in rows
    }
    assert records == {"7001": ("DEAL", "9001", "'=Acme"), "7002": ("", "", "")}


def test_export_keeps_its_status_and_outcome_columns_for_each_state(
    logged_in, workspace, make_enrollment
):
    """One state column in the table; the CSV still has ``status`` (the page's counter) and
    ``outcome`` (the workflow's enrollment_status, empty while queued)."""
    for state in ("queued", "enrolled", "already_enrolled", "failed"):
        make_enrollment(workspace, status=state, contact_id=state)
    header, *rows = _csv(logged_in.get(f"/w/{workspace.id}/analytics/export.csv"))
    got = {
        r["contact_id"]: (r["status"], r["outcome"])
        for r in (dict(zip(header, row, strict=True)) for row in rows)
    }
    assert got == {
        "queued": ("queued", ""),
        "enrolled": ("enrolled", "enrolled"),
        "already_enrolled": ("failed", "already_enrolled"),
        "failed": ("failed", "failed"),
    }
    failed = _csv(logged_in.get(f"/w/{workspace.id}/analytics/export.csv?status=failed"))
    assert sorted(r[2] for r in failed[1:]) == ["already_enrolled", "failed"]
