"""Every way an enrollment can be refused ends in FAIL_CONTINUE with a readable reason."""

from __future__ import annotations

from autoseq.extensions import db
from autoseq.models import Mailbox


def test_private_sequence_from_another_mailbox_fails_with_permission_denied(world, run_jobs):
    [cb] = world.fire(world.contacts(1), world.direct("private", "ada@acme.test"))
    run_jobs()
    outputs = world.outputs(cb)
    assert outputs["hs_execution_state"] == "FAIL_CONTINUE"
    assert outputs["enrollment_status"] == "failed"
    assert outputs["failure_reason"].startswith("Permission denied")
    assert world.row(cb).failure_code == "PERMISSION_DENIED"
    assert world.admin.enrollments() == []


def test_private_sequence_from_its_owner_enrolls(world, run_jobs):
    [cb] = world.fire(world.contacts(1), world.direct("private", "bob@acme.test"))
    run_jobs()
    assert world.outputs(cb)["enrollment_status"] == "enrolled"


def test_sequence_removed_by_sync_fails_with_sequence_not_found(world, run_jobs):
    world.state.delete_sequence(world.portal, world.sequences["doomed"])
    world.sync()
    [cb] = world.fire(world.contacts(1), world.direct("doomed", "ada@acme.test"))
    assert world.row(cb).status == "queued"  # still recorded: the job fails it
    run_jobs()
    outputs = world.outputs(cb)
    assert (outputs["hs_execution_state"], outputs["failure_reason"]) == (
        "FAIL_CONTINUE",
        "Sequence not found",
    )
    assert outputs["sequence_name"] == "Old Nurture"
    assert world.row(cb).failure_code == "SEQUENCE_NOT_FOUND"


def test_sequence_deleted_in_hubspot_since_the_last_sync_fails_with_sequence_not_found(
    world, run_jobs
):
    world.state.delete_sequence(world.portal, world.sequences["doomed"])
    [cb] = world.fire(world.contacts(1), world.direct("doomed", "ada@acme.test"))
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "Sequence not found"
    assert world.row(cb).attempts == 1


def test_unknown_sequence_fails_with_sequence_not_found(world, run_jobs):
    inputs = {"sequence": "999999", "send_from": "mailbox"}
    inputs["mailbox"] = str(world.mailbox("ada@acme.test").id)
    [cb] = world.fire(world.contacts(1), inputs)
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "Sequence not found"


def _set_contact(world, contact, **flags):
    world.admin.portal("PATCH", f"/contacts/{contact}", json=flags)


def test_unsubscribed_contact_fails_with_reason(world, run_jobs):
    contact = world.contacts(1)[0]
    _set_contact(world, contact, unsubscribed=True)
    [cb] = world.fire([contact], world.direct("team", "ada@acme.test"))
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "Contact has unsubscribed from email"
    assert world.row(cb).failure_code == "UNSUBSCRIBED"


def test_bounced_contact_fails_with_reason(world, run_jobs):
    contact = world.contacts(1)[0]
    _set_contact(world, contact, bounced=True)
    [cb] = world.fire([contact], world.direct("team", "ada@acme.test"))
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "Contact's email address has bounced"
    assert world.row(cb).failure_code == "BOUNCED"


def test_contact_already_in_a_sequence_is_already_enrolled(world, run_jobs):
    contact = world.contacts(1)[0]
    first = world.fire([contact], world.direct("private", "bob@acme.test"), workflow_id=1)
    run_jobs()
    assert world.outputs(first[0])["enrollment_status"] == "enrolled"
    [cb] = world.fire([contact], world.direct("team", "ada@acme.test"), workflow_id=2)
    run_jobs()
    outputs = world.outputs(cb)
    assert outputs["enrollment_status"] == "already_enrolled"
    assert outputs["hs_execution_state"] == "FAIL_CONTINUE"
    row = world.row(cb)
    assert (row.status, row.failure_code) == ("already_enrolled", "ALREADY_ENROLLED")
    assert len(world.admin.enrollments()) == 1


def test_disconnected_inbox_is_marked_and_the_rotation_fails_over(world, run_jobs):
    bob = world.users["bob"]
    world.admin.portal("PATCH", f"/users/{bob.id}/inboxes/bob@acme.test", json={"connected": False})
    rotation = world.rotation("Reps", ["bob@acme.test", "cyd@acme.test"])
    [cb] = world.fire(world.contacts(1), world.via_rotation("team", rotation))
    run_jobs()
    outputs = world.outputs(cb)
    assert (outputs["enrollment_status"], outputs["sender_email"]) == ("enrolled", "cyd@acme.test")
    db.session.expire_all()
    assert world.mailbox("bob@acme.test").status == "disconnected"
    assert world.row(cb).attempts == 2


def test_disconnected_inbox_without_rotation_fails_with_reason(world, run_jobs):
    bob = world.users["bob"]
    world.admin.portal("PATCH", f"/users/{bob.id}/inboxes/bob@acme.test", json={"connected": False})
    [cb] = world.fire(world.contacts(1), world.direct("team", "bob@acme.test"))
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "The mailbox is not connected in HubSpot"
    assert world.row(cb).failure_code == "NO_CONNECTED_INBOX"
    db.session.expire_all()
    assert world.mailbox("bob@acme.test").status == "disconnected"


def test_hubspot_send_limit_fails_with_reason(world, run_jobs):
    world.admin.portal("PATCH", "/settings", json={"daily_cap": 1})
    first, second = world.fire(world.contacts(2), world.direct("team", "ada@acme.test"))
    run_jobs()
    outcomes = sorted(
        [world.outputs(first)["enrollment_status"], world.outputs(second)["enrollment_status"]]
    )
    assert outcomes == ["enrolled", "failed"]
    failed = first if world.outputs(first)["enrollment_status"] == "failed" else second
    assert world.row(failed).failure_code == "SEND_LIMIT_EXCEEDED"
    assert world.outputs(failed)["failure_reason"] == "The mailbox reached its daily sending limit"


def test_autoseq_cap_reached_fails_without_calling_hubspot(world, run_jobs):
    mailbox = world.mailbox("ada@acme.test")
    mailbox.daily_cap = 1
    db.session.commit()
    first, second = world.fire(world.contacts(2), world.direct("team", "ada@acme.test"))
    run_jobs()
    assert len(world.admin.enrollments()) == 1
    statuses = {world.outputs(cb)["enrollment_status"] for cb in (first, second)}
    assert statuses == {"enrolled", "failed"}


def test_deleted_rotation_is_recorded_then_failed_with_reason(world, run_jobs):
    from autoseq.models.base import utcnow

    rotation = world.rotation("Gone", ["bob@acme.test"])
    rotation.deleted_at = utcnow()
    db.session.commit()
    [cb] = world.fire(world.contacts(1), world.via_rotation("team", rotation))
    assert world.row(cb).status == "queued"
    run_jobs()
    assert world.outputs(cb)["hs_execution_state"] == "FAIL_CONTINUE"
    assert world.row(cb).failure_code == "ROTATION_DELETED"


def test_unknown_mailbox_id_fails_with_reason(world, run_jobs):
    inputs = {"sequence": world.sequences["team"].id, "send_from": "mailbox", "mailbox": "424242"}
    [cb] = world.fire(world.contacts(1), inputs)
    run_jobs()
    assert world.row(cb).failure_code == "MAILBOX_NOT_FOUND"
    assert world.outputs(cb)["failure_reason"] == "Mailbox not found"
    assert Mailbox.query.count() == 3


def test_a_connection_needing_reconnect_fails_the_enrollment_once_without_retrying(
    world, run_jobs, redis
):
    from datetime import timedelta

    from autoseq.queue import get_queue
    from autoseq.services import enrollment as enrollment_service

    [cb] = world.fire(world.contacts(1), world.direct("team", "ada@acme.test"))
    world.admin.faults(revoke=True)
    run_jobs()
    row = world.row(cb)
    assert (row.status, row.failure_code) == ("failed", "NEEDS_RECONNECT")
    assert row.failure_reason == "HubSpot connection needs reconnecting"
    assert row.callback_completed_at is None and world.completion(cb) is None
    assert get_queue("enrollments", redis).count == 0
    assert enrollment_service.requeue_stuck(older_than=timedelta(0), heartbeat_grace=0) == 0
    assert world.admin.enrollments() == []


def test_hubspot_permission_refusal_after_a_stale_sync_fails_with_permission_denied(
    world, run_jobs
):
    world.admin.portal("PATCH", f"/users/{world.users['cyd'].id}", json={"seat": False})
    [cb] = world.fire(world.contacts(1), world.direct("team", "cyd@acme.test"))
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "Permission denied"
    assert world.row(cb).failure_code == "PERMISSION_DENIED"


def test_unknown_contact_fails_with_contact_not_found(world, run_jobs):
    [cb] = world.fire(["999999"], world.direct("team", "ada@acme.test"))
    run_jobs()
    assert world.outputs(cb)["failure_reason"] == "Contact not found"
    assert world.row(cb).failure_code == "CONTACT_NOT_FOUND"
