"""End to end: the sandbox's workflow runner calls AutoSeq over HTTP; the worker enrolls."""

from __future__ import annotations

import pytest

from autoseq.models import Enrollment


def test_direct_enrollment_is_recorded_enrolled_and_completed(world, run_jobs):
    contact = world.contacts(1)[0]
    [cb] = world.fire([contact], world.direct("team", "bob@acme.test"))

    delivery = world.admin.callback(cb)
    assert delivery["status"] == "blocked"
    assert delivery["outputFields"] == {
        "hs_execution_state": "BLOCK",
        "hs_expiration_duration": "P1D",
    }
    row = world.row(cb)
    assert row.status == "queued" and row.contact_id == contact and row.workflow_id == "77"
    assert row.sequence_name == "Cold Outbound - SaaS Companies"

    run_jobs()

    row = world.row(cb)
    assert (row.status, row.attempts) == ("enrolled", 1)
    assert row.sender_email == "bob@acme.test" and row.callback_completed_at is not None
    assert world.outputs(cb) == {
        "hs_execution_state": "SUCCESS",
        "enrollment_status": "enrolled",
        "failure_reason": "",
        "sender_email": "bob@acme.test",
        "sequence_name": "Cold Outbound - SaaS Companies",
    }
    [enrolled] = world.admin.enrollments()
    assert (enrolled["contactId"], enrolled["senderEmail"]) == (contact, "bob@acme.test")
    assert enrolled["sequenceId"] == world.sequences["team"].id


def test_rotation_enrollments_spread_over_its_mailboxes(world, run_jobs):
    rotation = world.rotation("Outbound reps", ["bob@acme.test", "cyd@acme.test"])
    rotation_id = rotation.id
    contacts = world.contacts(4)
    world.fire(contacts, world.via_rotation("team", rotation))
    run_jobs()
    senders = sorted(e["senderEmail"] for e in world.admin.enrollments())
    assert senders == ["bob@acme.test", "bob@acme.test", "cyd@acme.test", "cyd@acme.test"]
    assert {r.status for r in world.rows()} == {"enrolled"}
    assert all(r.rotation_id == rotation_id for r in world.rows())


def test_duplicate_delivery_of_one_callback_makes_one_row_one_job_one_enrollment(
    world, run_jobs, redis
):
    contact = world.contacts(1)[0]
    [cb] = world.fire([contact], world.direct("team", "ada@acme.test"))
    for _ in range(2):
        response = world.deliver_again(cb)
        assert response.status_code == 200
        assert response.json()["outputFields"]["hs_execution_state"] == "BLOCK"
    assert len(world.rows()) == 1
    from autoseq.queue import get_queue

    assert get_queue("enrollments", redis).count == 1
    run_jobs()
    assert world.enrolled_contacts() == [contact]
    assert world.row(cb).attempts == 1
    assert Enrollment.query.count() == 1


@pytest.mark.parametrize(
    ("mailbox", "state", "status"),
    [("bob@acme.test", "SUCCESS", "enrolled"), ("nobody@acme.test", "FAIL_CONTINUE", "failed")],
)
def test_a_finished_execution_delivered_again_answers_its_stored_outcome(
    world, run_jobs, mailbox, state, status
):
    """HubSpot lost our answer and delivers again after we finished: not BLOCK (a day's wait)."""
    inputs = world.direct("team", "bob@acme.test")
    if mailbox != "bob@acme.test":
        inputs["mailbox"] = "999999"  # no such mailbox: the job fails it with a reason
    [cb] = world.fire(world.contacts(1), inputs)
    run_jobs()
    stored = world.outputs(cb)
    assert stored["hs_execution_state"] == state and stored["enrollment_status"] == status

    response = world.deliver_again(cb)

    assert response.status_code == 200
    assert response.json() == {"outputFields": stored}
    assert world.row(cb).callback_completed_at is not None
    assert len(world.rows()) == 1 and len(world.admin.enrollments()) == (state == "SUCCESS")


def test_concurrent_duplicate_deliveries_race_to_one_row_and_one_job(world, run_jobs, redis):
    import json
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from autoseq.queue import get_queue
    from hubspot_sandbox.signing import signed_headers

    url = world.url + "/hubspot/actions/enroll"
    contacts = world.contacts(5)
    bodies = [
        json.dumps(
            {
                "callbackId": f"ap-race-{c}",
                "origin": {"portalId": world.portal_id},
                "context": {"workflowId": 3},
                "object": {"objectId": c, "objectType": "CONTACT"},
                "inputFields": world.direct("team", "ada@acme.test"),
            }
        )
        for c in contacts
    ]

    def deliver(body):
        while True:  # like HubSpot: a 5xx is delivered again
            headers = signed_headers(world.state.app.client_secret, "POST", url, body)
            response = requests.post(url, data=body, headers=headers, timeout=10)
            if response.status_code != 503:
                return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(deliver, [b for b in bodies for _ in range(4)]))
    assert statuses == [200] * 20
    assert len(world.rows()) == 5
    assert get_queue("enrollments", redis).count == 1  # one drain of the workspace, no job each
    run_jobs()
    assert sorted(world.enrolled_contacts()) == sorted(contacts)
    assert all(r.attempts == 1 for r in world.rows())


def test_a_sequence_with_a_huge_name_still_enrolls_under_a_bounded_copy(world, run_jobs):
    from autoseq.models.enrollments import SEQUENCE_NAME_MAX

    huge = "Ω🚀 " * 2500  # 10,000 characters, 4-byte code points: far over any index entry
    world.state.update_sequence(world.portal, world.sequences["team"], name=huge)
    world.sync()
    [cb] = world.fire([world.contacts(1)[0]], world.direct("team", "bob@acme.test"))
    row = world.row(cb)
    assert row is not None and row.sequence_name == huge[:SEQUENCE_NAME_MAX]
    run_jobs()
    assert world.row(cb).status == "enrolled"


def _completion_calls(world) -> tuple[int, int]:
    """(batch completion calls, single completion calls) HubSpot received, whatever the version."""
    completions = {
        key: n
        for key, n in world.admin.stats()["by_path"].items()
        if "/callbacks/" in key and key.endswith("/complete")
    }
    single = sum(n for key, n in completions.items() if "<callback_id>" in key)
    return sum(completions.values()) - single, single


def test_completions_are_sent_in_batches_so_an_enrollment_costs_about_one_call(world, run_jobs):
    contacts = world.contacts(30)
    callback_ids = world.fire(contacts, world.direct("team", "bob@acme.test"))
    run_jobs()
    assert all(world.outputs(cb)["hs_execution_state"] == "SUCCESS" for cb in callback_ids)
    assert all(world.row(cb).callback_completed_at is not None for cb in callback_ids)
    batch, single = _completion_calls(world)
    assert single == 0
    assert 1 <= batch <= 3  # everything finished within a flush's delay rides in one call
    enroll_calls = sum(
        n
        for key, n in world.admin.stats()["by_path"].items()
        if key.startswith("POST ") and key.endswith("/sequences/2026-03/enrollments")
    )
    assert enroll_calls == 30
    assert (enroll_calls + batch) / 30 <= 1.1


def test_a_batch_with_an_already_completed_callback_is_sent_again_one_by_one(world, run_jobs):
    """Our record of a completion was lost (a crash between send and record): HubSpot refuses the
    batch; each is sent alone, and 'already completed' counts as done."""
    from autoseq.extensions import db

    first, second = world.contacts(2)
    [done] = world.fire([first], world.direct("team", "bob@acme.test"))
    run_jobs()
    row = world.row(done)
    row.callback_completed_at = None  # HubSpot has it; we lost our record of sending it
    db.session.commit()
    [fresh] = world.fire([second], world.direct("team", "bob@acme.test"))
    run_jobs()
    assert world.row(done).callback_completed_at is not None
    assert world.row(fresh).callback_completed_at is not None
    assert world.outputs(fresh)["enrollment_status"] == "enrolled"
    assert sorted(world.enrolled_contacts()) == sorted([first, second])
    assert _completion_calls(world)[1] == 2  # the refused batch, then each alone
