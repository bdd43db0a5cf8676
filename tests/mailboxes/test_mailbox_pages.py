"""The Mailboxes page: what members see, what admins change, and what bad input does."""

from __future__ import annotations

from datetime import date

from autoseq.extensions import db
from autoseq.models import Mailbox, Role
from autoseq.services import accounts, senders

from .conftest import default_mailbox, make_hubspot_user, make_mailbox, make_sequence


def url(workspace, path=""):
    return f"/w/{workspace.id}/mailboxes/{path}"


def test_empty_state_points_to_connecting_hubspot(logged_in, workspace):
    html = logged_in.get(url(workspace)).get_data(as_text=True)
    assert "No mailboxes yet" in html
    assert f"/w/{workspace.id}/settings/hubspot/" in html


def test_page_lists_users_and_mailboxes_with_seat_state_and_cap(logged_in, workspace):
    make_hubspot_user(workspace, "jane@x.com", first_name="Jane", last_name="Doe")
    make_hubspot_user(workspace, "free@x.com", has_seat=False, active=False)
    html = logged_in.get(url(workspace)).get_data(as_text=True)
    assert "Jane Doe" in html and "jane@x.com" in html
    assert "no seat" in html and "deactivated" in html
    assert "1,000" in html  # the default cap


def test_page_shows_sent_last_24h_as_the_cap_counts_it(logged_in, workspace):
    jane = make_hubspot_user(workspace, "jane@x.com")
    sequence = make_sequence(workspace, owner=jane)
    mailbox = default_mailbox(jane)
    for _ in range(7):
        senders.choose_sender(workspace.id, sequence, mailbox_id=mailbox.id)
    response = logged_in.get(url(workspace, f"{mailbox.id}/row"))
    assert '<td class="num"><span class="">7</span></td>' in response.get_data(as_text=True)


def test_page_shows_status_labels(logged_in, workspace):
    jane = make_hubspot_user(workspace, "jane@x.com")
    make_mailbox(jane, "p@x.com", status="paused")
    make_mailbox(jane, "d@x.com", status="disconnected")
    make_mailbox(jane, "o@x.com", out_of_office_until=date(2999, 1, 2))
    html = logged_in.get(url(workspace)).get_data(as_text=True)
    assert "Paused by an admin" in html
    assert "Disconnected" in html
    assert "Out of office until 2999-01-02" in html


def test_disconnect_reason_is_shown(logged_in, workspace, redis):
    jane = make_hubspot_user(workspace, "jane@x.com")
    senders.mark_disconnected(default_mailbox(jane).id, "User 7 has no connected inboxes")
    redis.flushdb()  # the reason is a column: it outlives Redis
    assert "User 7 has no connected inboxes" in logged_in.get(url(workspace)).get_data(as_text=True)


def test_member_sees_the_page_without_edit_controls(member_client, workspace):
    make_hubspot_user(workspace, "jane@x.com")
    html = member_client(Role.MEMBER).get(url(workspace)).get_data(as_text=True)
    assert "jane@x.com" in html
    assert "Add a mailbox" not in html and ">Edit<" not in html


def test_admin_adds_an_inbox(logged_in, workspace):
    jane = make_hubspot_user(workspace, "jane@x.com")
    response = logged_in.post_form(
        url(workspace, "add"),
        {
            "hubspot_user_id": jane.id,
            "email": "Jane.Sales@X.com",
            "kind": "inbox",
            "daily_cap": 300,
        },
    )
    assert response.status_code == 302
    mailbox = db.session.scalar(db.select(Mailbox).filter_by(email="jane.sales@x.com"))
    assert (mailbox.hubspot_user_id, mailbox.daily_cap, mailbox.is_default) == (jane.id, 300, False)


def test_admin_adds_an_alias_through_the_login_inbox(logged_in, workspace):
    jane = make_hubspot_user(workspace, "jane@x.com")
    logged_in.post_form(
        url(workspace, "add"),
        {"hubspot_user_id": jane.id, "email": "hello@x.com", "kind": "alias", "daily_cap": 1000},
    )
    alias = db.session.scalar(db.select(Mailbox).filter_by(email="hello@x.com"))
    assert (alias.kind, alias.inbox_email) == ("alias", "jane@x.com")


def _add_errors(logged_in, workspace, **data):
    jane = make_hubspot_user(workspace, "jane@x.com")
    form = {"hubspot_user_id": jane.id, "email": "new@x.com", "kind": "inbox", "daily_cap": 10}
    form.update(data)
    response = logged_in.post_form(url(workspace, "add"), form)
    assert response.status_code == 422
    assert db.session.scalar(db.select(Mailbox).filter_by(email="new@x.com")) is None
    assert db.session.scalar(db.select(Mailbox).filter_by(email="mixed.case@x.com")) is None
    return response.get_data(as_text=True)


def test_add_with_an_email_that_is_not_an_email_is_a_field_error(logged_in, workspace):
    html = _add_errors(logged_in, workspace, email="not-an-email")
    assert "Enter an email address." in html
    assert db.session.scalar(db.select(db.func.count(Mailbox.id))) == 1


def test_add_with_cap_zero_is_a_field_error(logged_in, workspace):
    assert "between 1 and 1,000" in _add_errors(logged_in, workspace, daily_cap=0)


def test_add_with_negative_cap_is_a_field_error(logged_in, workspace):
    assert "between 1 and 1,000" in _add_errors(logged_in, workspace, daily_cap=-5)


def test_add_with_cap_above_hubspot_maximum_is_a_field_error(logged_in, workspace):
    assert "between 1 and 1,000" in _add_errors(logged_in, workspace, daily_cap=1001)


def test_add_duplicate_address_is_a_field_error(logged_in, workspace):
    html = _add_errors(logged_in, workspace, email="jane@x.com")
    assert "already has a mailbox with this address" in html


def test_add_for_a_user_of_another_workspace_is_refused(logged_in, workspace, user):
    other = accounts.create_workspace(user, "Other")
    stranger = make_hubspot_user(other, "s@other.com")
    html = _add_errors(logged_in, workspace, hubspot_user_id=stranger.id)
    assert "Not a valid choice" in html


def test_admin_edits_a_mailbox_inline_with_htmx(logged_in, workspace):
    mailbox = default_mailbox(make_hubspot_user(workspace, "jane@x.com"))
    edit = logged_in.get(url(workspace, f"{mailbox.id}/edit"), headers={"HX-Request": "true"})
    assert 'hx-post="/w/' in edit.get_data(as_text=True)
    response = logged_in.post_form(
        url(workspace, f"{mailbox.id}/edit"),
        {"daily_cap": 250, "status": "paused", "out_of_office_until": "2026-12-24"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<tr id="mailbox-') and "Paused by an admin" in html
    db.session.refresh(mailbox)
    assert (mailbox.daily_cap, mailbox.status) == (250, "paused")
    assert mailbox.out_of_office_until == date(2026, 12, 24)


def test_inline_edit_with_a_bad_cap_keeps_the_row_with_the_error(logged_in, workspace):
    mailbox = default_mailbox(make_hubspot_user(workspace, "jane@x.com"))
    response = logged_in.post_form(
        url(workspace, f"{mailbox.id}/edit"),
        {"daily_cap": 5000, "status": "ok"},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert "between 1 and 1,000" in html and "hx-post" in html
    db.session.refresh(mailbox)
    assert mailbox.daily_cap == 1000


def test_edit_without_htmx_is_a_page_with_field_errors(logged_in, workspace):
    mailbox = default_mailbox(make_hubspot_user(workspace, "jane@x.com"))
    response = logged_in.post_form(
        url(workspace, f"{mailbox.id}/edit"), {"daily_cap": "", "status": "ok"}
    )
    assert response.status_code == 422
    assert "between 1 and 1,000" in response.get_data(as_text=True)


def test_reconnecting_a_mailbox_clears_its_reason(logged_in, workspace):
    mailbox = default_mailbox(make_hubspot_user(workspace, "jane@x.com"))
    senders.mark_disconnected(mailbox.id, "no inbox 4711")
    logged_in.post_form(url(workspace, f"{mailbox.id}/edit"), {"daily_cap": 1000, "status": "ok"})
    db.session.refresh(mailbox)
    assert mailbox.status == "ok" and mailbox.disconnect_reason is None
    page = logged_in.get(url(workspace)).get_data(as_text=True)
    assert "no inbox 4711" not in page


def test_member_cannot_edit_a_mailbox(member_client, workspace):
    mailbox = default_mailbox(make_hubspot_user(workspace, "jane@x.com"))
    member = member_client(Role.MEMBER)
    response = member.post_form(
        url(workspace, f"{mailbox.id}/edit"), {"daily_cap": 5, "status": "paused"}
    )
    assert response.status_code == 302
    db.session.refresh(mailbox)
    assert (mailbox.daily_cap, mailbox.status) == (1000, "ok")


def test_member_cannot_add_a_mailbox(member_client, workspace):
    jane = make_hubspot_user(workspace, "jane@x.com")
    member_client(Role.MEMBER).post_form(
        url(workspace, "add"),
        {"hubspot_user_id": jane.id, "email": "m@x.com", "kind": "inbox", "daily_cap": 5},
    )
    assert db.session.scalar(db.select(Mailbox).filter_by(email="m@x.com")) is None


def test_another_workspaces_mailbox_is_404(logged_in, workspace, user, make_user):
    stranger = make_user()
    other = accounts.create_workspace(stranger, "Other")
    mailbox = default_mailbox(make_hubspot_user(other, "s@other.com"))
    assert logged_in.get(url(workspace, f"{mailbox.id}/edit")).status_code == 404
    assert logged_in.get(url(workspace, f"{mailbox.id}/row")).status_code == 404
    response = logged_in.post_form(
        url(workspace, f"{mailbox.id}/edit"), {"daily_cap": 5, "status": "paused"}
    )
    assert response.status_code == 404
    db.session.refresh(mailbox)
    assert mailbox.daily_cap == 1000


def test_admin_removes_an_added_mailbox_but_not_a_default_one(logged_in, workspace):
    jane = make_hubspot_user(workspace, "jane@x.com")
    extra = make_mailbox(jane, "extra@x.com")
    logged_in.post_form(url(workspace, f"{extra.id}/delete"))
    logged_in.post_form(url(workspace, f"{default_mailbox(jane).id}/delete"))
    emails = set(db.session.scalars(db.select(Mailbox.email)))
    assert emails == {"jane@x.com"}


def test_add_duplicate_address_in_another_case_is_a_field_error(logged_in, workspace):
    make_hubspot_user(workspace, "Mixed.Case@X.com")  # as HubSpot spelled it at sync
    html = _add_errors(logged_in, workspace, email="mixed.case@x.com")
    assert "already has a mailbox with this address" in html


def test_add_alias_through_an_inbox_of_someone_else_is_a_field_error(logged_in, workspace):
    make_hubspot_user(workspace, "bob@x.com")
    html = _add_errors(logged_in, workspace, kind="alias", inbox_email="bob@x.com")
    assert "bob@x.com is not an inbox of jane@x.com." in html


def test_empty_state_after_connecting_says_sync(logged_in, workspace):
    from autoseq.models import HubSpotConnection

    db.session.add(HubSpotConnection(workspace_id=workspace.id, portal_id=4242))
    db.session.commit()
    html = logged_in.get(url(workspace)).get_data(as_text=True)
    assert "its users have not been synced yet. Click Sync Data" in html
