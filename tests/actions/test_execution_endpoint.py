"""The execution endpoint answers 4xx only for requests that can never succeed."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests

from autoseq.hubspot.signatures import sign_v3
from autoseq.models import Enrollment
from autoseq.queue import get_queue
from autoseq.services import enrollment as enrollment_service


@pytest.fixture
def post(world):
    url = world.url + "/hubspot/actions/enroll"
    secret = world.state.app.client_secret

    def send(payload) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        ts = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, ts),
            "X-HubSpot-Request-Timestamp": ts,
        }
        return requests.post(url, data=body, headers=headers, timeout=5)

    return send


def _payload(world, **changes):
    payload = {
        "callbackId": "ap-123",
        "origin": {"portalId": world.portal_id, "actionDefinitionId": 9},
        "context": {"source": "WORKFLOWS", "workflowId": 12},
        "object": {"objectId": int(world.contacts(1)[0]), "objectType": "CONTACT"},
        "inputFields": world.direct("team", "ada@acme.test"),
        "somethingNew": {"ignored": True},
    }
    payload.update(changes)
    return payload


def test_unknown_portal_is_a_400_with_a_reason(world, post):
    response = post(_payload(world, origin={"portalId": 999999}))
    assert response.status_code == 400
    assert "999999" in response.json()["message"]
    assert Enrollment.query.count() == 0


def test_malformed_json_is_a_400(world, post):
    response = post(b"{not json")
    assert response.status_code == 400 and response.json()["error"] == "Malformed JSON"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"callbackId": None}, "callbackId"),
        ({"object": {"objectType": "CONTACT"}}, "objectId"),
        ({"inputFields": {"send_from": "mailbox", "mailbox": "1"}}, "sequence"),
        ({"inputFields": {"sequence": "1", "send_from": "pigeon"}}, "send_from"),
        ({"inputFields": {"sequence": "1", "send_from": "rotation"}}, "rotation"),
        ({"origin": {}}, "portalId"),
        ({"origin": {"portalId": "9" * 30}}, "portalId"),
        (
            {"inputFields": {"sequence": "1", "send_from": "mailbox", "mailbox": "9" * 30}},
            "mailbox",
        ),
    ],
)
def test_missing_or_malformed_fields_are_a_400_naming_them(world, post, change, reason):
    response = post(_payload(world, **change))
    assert response.status_code == 400
    assert reason in response.json()["message"]


def test_the_execution_is_recorded_with_what_hubspot_sent(world, post, redis):
    response = post(_payload(world))
    assert response.status_code == 200
    assert response.json() == {
        "outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}
    }
    row = Enrollment.query.one()
    assert (row.callback_id, row.workflow_id, row.action_definition_id) == ("ap-123", "12", "9")
    assert row.sequence_hubspot_id == world.sequences["team"].id
    assert row.mailbox_id == world.mailbox("ada@acme.test").id and row.send_mode == "mailbox"
    assert row.input_fields["send_from"] == "mailbox"
    # The row is the queue: no job of its own, one drain of the workspace asked for.
    assert row.status == "queued" and row.job_id is None
    drain = enrollment_service.drain_pending(world.workspace_id)
    assert drain and get_queue("enrollments", redis).job_ids == [drain]
    assert post(_payload(world, callbackId="ap-124")).status_code == 200
    assert get_queue("enrollments", redis).job_ids == [drain]  # the pending drain takes it too


def test_redis_down_still_records_and_blocks_and_the_sweep_asks_for_the_drain(
    world, post, app, redis
):
    real = app.extensions["redis"]
    from redis import Redis

    app.extensions["redis"] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        response = post(_payload(world))
    finally:
        app.extensions["redis"] = real
    # The committed row is the queue: nothing is lost, so HubSpot is answered BLOCK.
    assert response.status_code == 200
    assert response.json()["outputFields"]["hs_execution_state"] == "BLOCK"
    assert Enrollment.query.one().status == "queued"
    assert get_queue("enrollments", redis).job_ids == []
    assert enrollment_service.requeue_stuck(older_than=timedelta(0)) == 1
    drain = enrollment_service.drain_pending(world.workspace_id)
    assert drain and get_queue("enrollments", redis).job_ids == [drain]


def test_the_endpoint_answers_well_under_a_second(world, post):
    started = time.monotonic()
    assert post(_payload(world)).status_code == 200
    assert time.monotonic() - started < 0.5


def test_the_contact_name_and_email_sent_with_the_execution_are_kept(world, post):
    contact = int(world.contacts(1)[0])
    obj = {
        "objectId": contact,
        "objectType": "CONTACT",
        "properties": {"firstname": " Ada ", "lastname": "Lovelace", "email": "ada@example.test"},
    }
    assert post(_payload(world, object=obj)).status_code == 200
    row = Enrollment.query.one()
    assert (row.contact_name, row.contact_email) == ("Ada Lovelace", "ada@example.test")


def test_odd_contact_properties_are_left_out_not_refused(world, post):
    obj = {
        "objectId": int(world.contacts(1)[0]),
        "objectType": "CONTACT",
        "properties": {"firstname": None, "lastname": ["x"], "email": 42},
    }
    assert post(_payload(world, object=obj)).status_code == 200
    row = Enrollment.query.one()
    assert (row.contact_name, row.contact_email) == (None, None)


def test_a_job_per_contact_left_in_redis_by_the_old_pipeline_asks_for_the_drain(world, post, redis):
    from autoseq.jobs.enrollments import enroll_contact

    assert post(_payload(world)).status_code == 200
    row = Enrollment.query.one()
    redis.delete(f"autoseq:enrollment-drain:{world.workspace_id}")  # as after the deploy
    get_queue("enrollments", redis).empty()
    assert enroll_contact(row.id) is True
    drain = enrollment_service.drain_pending(world.workspace_id)
    assert drain and get_queue("enrollments", redis).job_ids == [drain]
