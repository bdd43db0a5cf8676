"""Rotation pages: create, validate, edit, reorder, delete (confirmed), the spread chart."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from autoseq.extensions import db
from autoseq.models import Enrollment, Role, Rotation
from autoseq.services import accounts, senders

from .conftest import default_mailbox, make_hubspot_user, make_rotation, make_sequence


@pytest.fixture
def boxes(workspace):
    return [
        default_mailbox(make_hubspot_user(workspace, f"{name}@x.com"))
        for name in ("ann", "ben", "cat")
    ]


def url(workspace, path=""):
    return f"/w/{workspace.id}/mailboxes/rotations/{path}"


def rows(*members):
    """Form data for the members table: [(mailbox_id, weight)] in order."""
    data = {}
    for i, (mailbox_id, weight) in enumerate(members):
        data[f"members-{i}-mailbox_id"] = "" if mailbox_id is None else mailbox_id
        data[f"members-{i}-weight"] = "" if weight is None else weight
    return data


def rotation_count():
    return db.session.scalar(db.select(db.func.count(Rotation.id)))


_callbacks = itertools.count(1)


def enroll_row(rotation, mailbox, *, when, status="enrolled", workflow_id=None):
    db.session.add(
        Enrollment(
            workspace_id=rotation.workspace_id,
            callback_id=f"cb-{next(_callbacks)}",
            portal_id=1,
            workflow_id=workflow_id,
            contact_id="1",
            sequence_hubspot_id="9",
            send_mode="rotation",
            rotation_id=rotation.id,
            mailbox_id=mailbox.id,
            status=status,
            created_at=when,
        )
    )
    db.session.commit()


def test_admin_creates_an_even_rotation_in_order(logged_in, workspace, boxes):
    data = {"name": "Inbound", "mode": "even", "reset_period": "daily"}
    data.update(rows((boxes[2].id, None), (boxes[0].id, None), (None, None)))
    response = logged_in.post_form(url(workspace, "new"), data)
    assert response.status_code == 302
    rotation = db.session.scalar(db.select(Rotation).filter_by(name="Inbound"))
    assert [m.mailbox_id for m in rotation.members] == [boxes[2].id, boxes[0].id]
    assert (rotation.mode, rotation.reset_period) == ("even", "daily")


def test_admin_creates_a_weighted_rotation(logged_in, workspace, boxes):
    data = {"name": "Split", "mode": "weighted", "reset_period": "never"}
    data.update(rows((boxes[0].id, 70), (boxes[1].id, 30)))
    assert logged_in.post_form(url(workspace, "new"), data).status_code == 302
    rotation = db.session.scalar(db.select(Rotation).filter_by(name="Split"))
    assert [m.weight for m in rotation.members] == [70, 30]


def _refused(logged_in, workspace, data, message):
    response = logged_in.post_form(url(workspace, "new"), data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert rotation_count() == 0


def test_weights_that_do_not_add_up_are_refused(logged_in, workspace, boxes):
    data = {"name": "Bad", "mode": "weighted", "reset_period": "never"}
    data.update(rows((boxes[0].id, 60), (boxes[1].id, 30)))
    _refused(logged_in, workspace, data, "The weights add up to 90%; they must add up to 100%.")


@pytest.mark.parametrize("weight", [0, 101, None])
def test_weight_outside_1_to_100_is_refused(logged_in, workspace, boxes, weight):
    data = {"name": "Bad", "mode": "weighted", "reset_period": "never"}
    data.update(rows((boxes[0].id, weight), (boxes[1].id, 100)))
    _refused(logged_in, workspace, data, "Each weight is a percentage from 1 to 100.")


def test_mailbox_of_another_workspace_in_a_rotation_is_a_field_error(
    logged_in, workspace, boxes, make_user
):
    other = accounts.create_workspace(make_user(), "Other")
    foreign = default_mailbox(make_hubspot_user(other, "f@other.com"))
    data = {"name": "Sneaky", "mode": "even", "reset_period": "never"}
    data.update(rows((boxes[0].id, None), (foreign.id, None)))
    _refused(logged_in, workspace, data, "Not a valid choice")


def test_same_mailbox_twice_is_refused(logged_in, workspace, boxes):
    data = {"name": "Twice", "mode": "even", "reset_period": "never"}
    data.update(rows((boxes[0].id, None), (boxes[0].id, None)))
    _refused(logged_in, workspace, data, "A mailbox can be in a rotation only once.")


def test_missing_name_is_refused(logged_in, workspace, boxes):
    data = {"name": "  ", "mode": "even", "reset_period": "never"}
    data.update(rows((boxes[0].id, None)))
    _refused(logged_in, workspace, data, "Give the rotation a name.")


def test_edit_renames_reweights_removes_and_adds(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes[:2], weights=[50, 50])
    data = {"name": "Renamed", "mode": "weighted", "reset_period": "weekly"}
    data.update(rows((boxes[0].id, 80), (boxes[1].id, 50), (boxes[2].id, 20)))
    data["members-1-remove"] = "y"
    response = logged_in.post_form(url(workspace, str(rotation.id)), data)
    assert response.status_code == 302
    db.session.refresh(rotation)
    assert rotation.name == "Renamed" and rotation.reset_period == "weekly"
    assert [(m.mailbox_id, m.weight) for m in rotation.members] == [
        (boxes[0].id, 80),
        (boxes[2].id, 20),
    ]


def test_bad_edit_changes_nothing(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes[:2], weights=[50, 50], name="Keep")
    data = {"name": "Changed", "mode": "weighted", "reset_period": "never"}
    data.update(rows((boxes[0].id, 50), (boxes[1].id, 45)))
    response = logged_in.post_form(url(workspace, str(rotation.id)), data)
    assert response.status_code == 422
    assert "add up to 95%" in response.get_data(as_text=True)
    db.session.expire_all()
    rotation = db.session.get(Rotation, rotation.id)
    assert rotation.name == "Keep"
    assert [m.weight for m in rotation.members] == [50, 50]


def test_move_reorders_members(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes)
    last = rotation.members[2]
    logged_in.post_form(url(workspace, f"{rotation.id}/move"), {"move": f"{last.id}:up"})
    db.session.expire_all()
    rotation = db.session.get(Rotation, rotation.id)
    assert [m.mailbox_id for m in rotation.members] == [boxes[0].id, boxes[2].id, boxes[1].id]


def test_member_cannot_change_a_rotation(member_client, workspace, boxes):
    rotation = make_rotation(workspace, boxes[:2], name="Keep")
    member = member_client(Role.MEMBER)
    data = {"name": "Hijacked", "mode": "even", "reset_period": "never"}
    data.update(rows((boxes[2].id, None)))
    assert member.post_form(url(workspace, str(rotation.id)), data).status_code == 302
    member.post_form(url(workspace, f"{rotation.id}/delete"), {"confirm": "yes"})
    member.post_form(url(workspace, "new"), dict(data, name="New"))
    db.session.expire_all()
    rotation = db.session.get(Rotation, rotation.id)
    assert (rotation.name, rotation.deleted_at, rotation_count()) == ("Keep", None, 1)
    assert [m.mailbox_id for m in rotation.members] == [boxes[0].id, boxes[1].id]


def test_member_sees_the_rotation_page_read_only(member_client, workspace, boxes):
    rotation = make_rotation(workspace, boxes[:2], name="Visible")
    html = member_client(Role.MEMBER).get(url(workspace, str(rotation.id))).get_data(as_text=True)
    assert "Visible" in html and "ann@x.com" in html
    assert "Save rotation" not in html and "Delete rotation" not in html


def test_another_workspaces_rotation_is_404(logged_in, workspace, make_user):
    other = accounts.create_workspace(make_user(), "Other")
    rotation = make_rotation(other, [default_mailbox(make_hubspot_user(other, "o@o.com"))])
    assert logged_in.get(url(workspace, str(rotation.id))).status_code == 404
    data = {"name": "Mine now", "mode": "even", "reset_period": "never"}
    assert logged_in.post_form(url(workspace, str(rotation.id)), data).status_code == 404
    response = logged_in.post_form(url(workspace, f"{rotation.id}/delete"), {"confirm": "yes"})
    assert response.status_code == 404
    db.session.refresh(rotation)
    assert rotation.name == "Inbound" and rotation.deleted_at is None


def test_unused_rotation_is_deleted_at_once(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes)
    response = logged_in.post_form(url(workspace, f"{rotation.id}/delete"))
    assert response.status_code == 302
    db.session.refresh(rotation)
    assert rotation.deleted_at is not None


def test_rotation_used_recently_asks_for_confirmation_first(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes, name="Busy")
    enroll_row(rotation, boxes[0], when=datetime.now(UTC) - timedelta(days=3))
    first = logged_in.post_form(url(workspace, f"{rotation.id}/delete"))
    assert first.status_code == 200
    assert "1 enrollment went through it in the last 90 days" in first.get_data(as_text=True)
    db.session.refresh(rotation)
    assert rotation.deleted_at is None
    second = logged_in.post_form(url(workspace, f"{rotation.id}/delete"), {"confirm": "yes"})
    assert second.status_code == 302
    db.session.refresh(rotation)
    assert rotation.deleted_at is not None


def test_rotation_named_by_a_workflow_asks_for_confirmation(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes)
    enroll_row(rotation, boxes[0], when=datetime.now(UTC) - timedelta(days=200), workflow_id="777")
    page = logged_in.post_form(url(workspace, f"{rotation.id}/delete"))
    assert "Workflow using it: 777" in page.get_data(as_text=True)
    db.session.refresh(rotation)
    assert rotation.deleted_at is None


def test_deleted_rotation_leaves_the_lists_and_fails_executions(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes, name="Gone")
    sequence = make_sequence(workspace, owner=boxes[0].hubspot_user)
    logged_in.post_form(url(workspace, f"{rotation.id}/delete"), {"confirm": "yes"})
    listing = logged_in.get(f"/w/{workspace.id}/mailboxes/").get_data(as_text=True)
    assert f"rotations/{rotation.id}" not in listing
    assert logged_in.get(url(workspace, str(rotation.id))).status_code == 404
    with pytest.raises(senders.NoSender) as caught:
        senders.choose_sender(workspace.id, sequence, rotation_id=rotation.id)
    assert caught.value.code == "ROTATION_DELETED"


def test_spread_chart_counts_enrollments_of_the_current_period(logged_in, workspace, boxes):
    rotation = make_rotation(workspace, boxes[:2], weights=[75, 25], reset="daily")
    now = datetime.now(UTC)
    for _ in range(3):
        enroll_row(rotation, boxes[0], when=now)
    enroll_row(rotation, boxes[1], when=now)
    enroll_row(rotation, boxes[1], when=now - timedelta(days=2))  # an earlier period
    enroll_row(rotation, boxes[1], when=now, status="failed")  # not sent
    html = logged_in.get(url(workspace, str(rotation.id))).get_data(as_text=True)
    assert "4 enrolled through this rotation" in html
    assert '3 · 75.0% <span class="muted">of target 75.0%</span>' in html
    assert '1 · 25.0% <span class="muted">of target 25.0%</span>' in html
    assert 'class="spread-bar spread-actual" data-pct="75.0"' in html


def test_rotation_page_flags_members_it_skips(logged_in, workspace, boxes):
    boxes[1].status = "paused"
    boxes[2].daily_cap = 1
    db.session.commit()
    rotation = make_rotation(workspace, boxes)
    senders.choose_sender(
        workspace.id, make_sequence(workspace, owner=boxes[2].hubspot_user), mailbox_id=boxes[2].id
    )
    html = logged_in.get(url(workspace, str(rotation.id))).get_data(as_text=True)
    assert "Paused by an admin</span>" in html
    assert "At cap (1 in 24 h)" in html
