"""Deal, company and ticket workflows, end to end: the sandbox's workflow runner fires the action
on a record, the worker reads its associated contacts and enrolls each chosen one exactly once,
then completes HubSpot's callback once with the counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from autoseq.extensions import db
from autoseq.models import Enrollment, HubSpotConnection, RecordExecution
from autoseq.services import enrollment as enrollment_service
from autoseq.services import tokens
from hubspot_sandbox.signing import signed_headers
from tests.support.oauth import SCOPES, oauth_tokens

from .conftest import wait_until
from .test_faults import ROOT, _kill_tree, _worker_config, drain

RECORD_SCOPES = f"{SCOPES} crm.objects.deals.read crm.objects.companies.read tickets"
ENROLL = "POST /automation/sequences/2026-03/enrollments"


@pytest.fixture
def deals(world):
    """The world, its connection granted the optional record scopes (as a reconnect would)."""
    body = oauth_tokens(world.sandbox, world.portal_id, scope=RECORD_SCOPES)
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=world.workspace_id)
    )
    connection.access_token_enc = tokens.encrypt(body["access_token"])
    connection.refresh_token_enc = tokens.encrypt(body["refresh_token"])
    connection.expires_at = datetime.now(UTC) + timedelta(seconds=body["expires_in"])
    connection.scopes = RECORD_SCOPES.split()
    db.session.commit()
    return world


def record(world, contacts, name="Acme renewal", kind="deals") -> dict:
    return world.admin.portal(
        "POST", "/records", json={"objectType": kind, "name": name, "contacts": contacts}
    )


def fire(world, record_ids, inputs, object_type="DEAL") -> list[str]:
    db.session.commit()
    body = {
        "portalId": world.portal_id,
        "definitionId": world.definition_id,
        "workflowId": 88,
        "objectType": object_type,
        "objectIds": [str(r) for r in record_ids],
        "inputFields": inputs,
        "wait": True,
        "timeout": 30,
    }
    result = world.admin.call("POST", "/workflows/fire", json=body)
    assert result["settled"], result
    return result["callbackIds"]


def execution(callback_id: str) -> RecordExecution:
    db.session.expire_all()
    return db.session.scalar(db.select(RecordExecution).filter_by(callback_id=callback_id))


def children(callback_id: str) -> list[Enrollment]:
    parent = execution(callback_id)
    return db.session.scalars(
        db.select(Enrollment).filter_by(execution_id=parent.id).order_by(Enrollment.id)
    ).all()


def test_a_deal_workflow_enrolls_the_primary_contact(deals, run_jobs):
    a, b, c = deals.contacts(3)
    deal = record(deals, [a, b, c])
    inputs = deals.direct("team", "bob@acme.test")  # contacts_to_enroll: primary by default
    [cb] = fire(deals, [deal["id"]], inputs)
    assert deals.admin.callback(cb)["status"] == "blocked"
    assert execution(cb).status == "queued"

    run_jobs()

    assert deals.enrolled_contacts() == [a]  # no Primary label on deals: the earliest
    outputs = deals.outputs(cb)
    assert outputs == {
        "hs_execution_state": "SUCCESS",
        "enrollment_status": "enrolled",
        "failure_reason": "",
        "sender_email": "bob@acme.test",
        "sequence_name": "Cold Outbound - SaaS Companies",
        "enrolled_count": "1",
        "skipped_count": "0",
        "failed_count": "0",
    }
    [row] = children(cb)
    assert (row.contact_id, row.record_type, row.record_id) == (a, "DEAL", deal["id"])
    assert row.record_name == "Acme renewal" and row.workflow_id == "88"
    assert row.callback_completed_at is not None  # completed with its execution


def test_the_log_and_the_sequence_page_show_the_record(deals, run_jobs, logged_in):
    deal = record(deals, deals.contacts(1), name="Globex expansion")
    fire(deals, [deal["id"]], deals.direct("team", "bob@acme.test"))
    run_jobs()
    log = logged_in.get(f"/w/{deals.workspace_id}/analytics/log").get_data(as_text=True)
    assert "from deal" in log and "Globex expansion" in log
    assert f"/record/0-3/{deal['id']}" in log
    [row] = deals.rows()
    page = logged_in.get(f"/w/{deals.workspace_id}/sequences/{row.sequence_id}")
    assert "Globex expansion" in page.get_data(as_text=True)


def test_a_company_workflow_enrolls_the_contact_labelled_primary(deals, run_jobs):
    a, b = deals.contacts(2)
    company = record(deals, [a, {"id": b, "labels": ["Primary"]}], name="Acme", kind="companies")
    [cb] = fire(deals, [company["id"]], deals.direct("team", "bob@acme.test"), "COMPANY")
    run_jobs()
    assert deals.enrolled_contacts() == [b]
    assert deals.outputs(cb)["enrolled_count"] == "1"
    assert children(cb)[0].record_type == "COMPANY"


def test_all_contacts_up_to_the_cap_and_each_counted(deals, run_jobs):
    contacts = deals.contacts(5)
    deal = record(deals, contacts)
    # One of them is already in another sequence: skipped, counted as such.
    inputs = {**deals.direct("team", "bob@acme.test"), "contacts_to_enroll": "all"}
    inputs["max_contacts"] = "3"
    [first] = deals.fire([contacts[1]], deals.direct("private", "bob@acme.test"))
    run_jobs()
    [cb] = fire(deals, [deal["id"]], inputs)
    run_jobs()
    assert sorted(deals.enrolled_contacts()) == sorted(contacts[:3])  # 3 of 5: the cap
    outputs = deals.outputs(cb)
    assert outputs["hs_execution_state"] == "SUCCESS"
    assert (outputs["enrolled_count"], outputs["skipped_count"], outputs["failed_count"]) == (
        "2",
        "1",
        "0",
    )
    assert [r.contact_id for r in children(cb)] == contacts[:3]
    assert execution(cb).callback_completed_at is not None
    assert deals.outputs(first)["enrollment_status"] == "enrolled"  # the contact workflow's


def test_the_contacts_with_a_label_chosen_from_the_label_options(deals, run_jobs):
    a, b, c = deals.contacts(3)
    deal = record(
        deals, [a, {"id": b, "labels": ["Decision maker"]}, {"id": c, "labels": ["Champion"]}]
    )
    body = {
        "portalId": deals.portal_id,
        "definitionId": deals.definition_id,
        "fieldName": "association_label",
        "objectType": "DEAL",
    }
    answer = deals.admin.call("POST", "/workflows/options", json=body)
    assert answer["statusCode"] == 200, answer
    labels = {o["label"]: o["value"] for o in answer["json"]["options"]}
    assert set(labels) == {"Decision maker", "Champion"}
    inputs = {**deals.direct("team", "bob@acme.test"), "contacts_to_enroll": "label"}
    inputs["association_label"] = labels["Decision maker"]
    [cb] = fire(deals, [deal["id"]], inputs)
    run_jobs()
    assert deals.enrolled_contacts() == [b]
    assert deals.outputs(cb)["enrolled_count"] == "1"
    # A contact workflow has no labels to offer.
    contact_body = {**body, "objectType": "CONTACT"}
    answer = deals.admin.call("POST", "/workflows/options", json=contact_body)
    assert answer["json"]["options"] == []


def test_a_deal_with_no_contact_fails_continue_with_a_reason(deals, run_jobs):
    deal = record(deals, [], name="Lonely deal")
    [cb] = fire(deals, [deal["id"]], deals.direct("team", "bob@acme.test"))
    run_jobs()
    outputs = deals.outputs(cb)
    assert outputs["hs_execution_state"] == "FAIL_CONTINUE"
    assert outputs["enrollment_status"] == "failed"
    assert outputs["failure_reason"] == (
        'The deal "Lonely deal" has no associated contact: nobody was enrolled.'
    )
    assert outputs["enrolled_count"] == "0"
    assert children(cb) == [] and deals.enrolled_contacts() == []


def test_without_the_deals_scope_the_admin_is_told_to_reconnect(world, run_jobs):
    deal = record(world, world.contacts(1))
    [cb] = fire(world, [deal["id"]], world.direct("team", "bob@acme.test"))
    run_jobs()
    outputs = world.outputs(cb)
    assert outputs["hs_execution_state"] == "FAIL_CONTINUE"
    assert "crm.objects.deals.read" in outputs["failure_reason"]
    assert "reconnect HubSpot" in outputs["failure_reason"]
    assert world.enrolled_contacts() == []


def _deliver_again(world, callback_id: str) -> requests.Response:
    first = world.admin.callback(callback_id)
    payload = {
        "callbackId": callback_id,
        "origin": {"portalId": world.portal_id, "actionDefinitionId": world.definition_id},
        "context": {"source": "WORKFLOWS", "workflowId": 88},
        "object": {"objectId": int(first["contactId"]), "objectType": "DEAL"},
        "inputFields": first["inputFields"],
    }
    url = world.url + "/hubspot/actions/enroll"
    body = json.dumps(payload)
    headers = signed_headers(world.state.app.client_secret, "POST", url, body)
    return requests.post(url, data=body, headers=headers, timeout=5)


def test_a_redelivered_execution_enrolls_no_one_twice(deals, run_jobs):
    contacts = deals.contacts(2)
    deal = record(deals, contacts)
    inputs = {**deals.direct("team", "bob@acme.test"), "contacts_to_enroll": "all"}
    [cb] = fire(deals, [deal["id"]], inputs)
    again = _deliver_again(deals, cb)
    assert again.json()["outputFields"]["hs_execution_state"] == "BLOCK"
    assert db.session.scalar(db.select(db.func.count()).select_from(RecordExecution)) == 1
    run_jobs()
    assert sorted(deals.enrolled_contacts()) == sorted(contacts)
    # Delivered again once finished: the stored outcome, nothing enrolled again.
    late = _deliver_again(deals, cb)
    assert late.status_code == 200
    assert late.json()["outputFields"]["enrolled_count"] == "2"
    assert late.json()["outputFields"]["hs_execution_state"] == "SUCCESS"
    run_jobs()
    assert deals.admin.stats()["by_path"][ENROLL] == 2
    assert len(children(cb)) == 2


def test_a_worker_killed_mid_way_still_enrolls_each_contact_once(deals, app, run_jobs):
    contacts = deals.contacts(3)
    deal = record(deals, contacts)
    inputs = {**deals.direct("team", "ada@acme.test"), "contacts_to_enroll": "all"}
    [cb] = fire(deals, [deal["id"]], inputs)
    deals.admin.faults(latency_ms=1500)  # each call is slow: time to kill the worker
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("worker_proc.py")),
            json.dumps(_worker_config(app)),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: deals.admin.stats()["by_path"].get(ENROLL), timeout=40)
    finally:
        _kill_tree(proc.pid)
        proc.wait(10)
    # HubSpot finishes the call the dead worker made; AutoSeq was not told.
    assert wait_until(lambda: len(deals.enrolled_contacts()) == 1, timeout=10)
    deals.admin.faults(latency_ms=0)
    assert execution(cb).status == "expanded"
    assert len(children(cb)) == 3

    assert enrollment_service.requeue_stuck(older_than=timedelta(0), heartbeat_grace=0) == 1
    drain(deals, run_jobs, [cb])
    assert sorted(deals.enrolled_contacts()) == sorted(contacts)
    assert deals.admin.stats()["by_path"][ENROLL] == 3  # never sent twice
    outputs = deals.outputs(cb)
    assert (outputs["hs_execution_state"], outputs["enrolled_count"]) == ("SUCCESS", "3")
    assert [r.status for r in children(cb)] == ["enrolled"] * 3
