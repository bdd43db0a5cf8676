"""Workflow names come with the sync (HubSpot's flows API) and replace bare ids on the pages."""

from __future__ import annotations

from autoseq.extensions import db
from autoseq.models import Enrollment, Workflow
from autoseq.services.sync import merge_workflows, request_sync

from ..conftest import login


def test_the_sync_caches_the_portals_workflow_names(ws_id, run_jobs):
    run_jobs(["sync"])  # the first sync, queued by connecting
    db.session.expire_all()
    names = dict(
        db.session.execute(
            db.select(Workflow.hubspot_id, Workflow.name).filter_by(workspace_id=ws_id)
        )
        .tuples()
        .all()
    )
    assert names["42"] == "New MQL: start SDR outreach"
    assert names["25529510"] == "Webinar attendees: follow-up sequence"


def test_a_renamed_workflow_is_renamed_and_a_vanished_one_keeps_its_name(ws_id, run_jobs):
    run_jobs(["sync"])
    row = db.session.scalar(db.select(Workflow).filter_by(workspace_id=ws_id, hubspot_id="42"))
    row.name = "old name"
    db.session.add(Workflow(workspace_id=ws_id, hubspot_id="777", name="Deleted in HubSpot"))
    db.session.commit()
    request_sync(ws_id)
    run_jobs(["sync"])
    db.session.expire_all()
    rows = {w.hubspot_id: w.name for w in db.session.scalars(db.select(Workflow))}
    assert rows["42"] == "New MQL: start SDR outreach"
    assert rows["777"] == "Deleted in HubSpot"


def test_merge_skips_flows_without_an_id_and_keeps_odd_names_as_text():
    merged = merge_workflows(
        [{"id": "5", "name": "A\x00B", "isEnabled": "yes"}, {"name": "no id"}, "junk"]
    )
    assert merged == {"5": {"name": "AB", "is_enabled": None, "object_type_id": None}}


def test_the_log_and_breakdown_show_the_workflow_name_not_its_id(
    ws_id, run_jobs, client, user, portal_id
):
    run_jobs(["sync"])
    db.session.add(
        Enrollment(
            workspace_id=ws_id,
            callback_id="cb-names",
            portal_id=portal_id,
            workflow_id="42",
            contact_id="1100",
            contact_name="Ada Lovelace",
            contact_email="ada@example.test",
            sequence_hubspot_id="1",
            sequence_name="Seq",
            status="enrolled",
        )
    )
    db.session.commit()
    assert login(client, user.email).status_code == 302
    for path in ("/analytics/", "/analytics/log"):
        html = client.get(f"/w/{ws_id}{path}").get_data(as_text=True)
        assert "New MQL: start SDR outreach" in html, path
    log = client.get(f"/w/{ws_id}/analytics/log").get_data(as_text=True)
    assert "Ada Lovelace" in log and "ada@example.test" in log
