"""The sender service against a real database and a real Redis: permissions, SWRR, caps, periods."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from autoseq.extensions import db
from autoseq.models import Mailbox, MailboxKind, MailboxStatus, Workspace
from autoseq.services import senders
from autoseq.services.senders import NoSender, choose_sender
from tests.mailboxes.conftest import (
    default_mailbox,
    make_hubspot_user,
    make_mailbox,
    make_rotation,
    make_sequence,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def reps(workspace):
    """Three reps with seats; bob owns the sequences."""
    return [
        make_hubspot_user(workspace, "bob@x.com"),
        make_hubspot_user(workspace, "jane@x.com"),
        make_hubspot_user(workspace, "carl@x.com"),
    ]


@pytest.fixture
def team_sequence(workspace, reps):
    return make_sequence(workspace, "Team nurture", owner=reps[0], senders=reps)


@pytest.fixture
def private_sequence(workspace, reps):
    return make_sequence(workspace, "Bob's own", owner=reps[0], private=True)


def mailboxes_of(users):
    return [default_mailbox(u) for u in users]


def pick_many(workspace, sequence, rotation, n, start=NOW, step=timedelta(0)):
    counts = Counter()
    for i in range(n):
        choice = choose_sender(
            workspace.id, sequence, rotation_id=rotation.id, now=start + i * step
        )
        counts[choice.mailbox.email] += 1
    return counts


# --- direct mode: permissions ---------------------------------------------------------------------


def test_direct_team_sequence_any_listed_user_may_send(workspace, reps, team_sequence):
    jane = default_mailbox(reps[1])
    choice = choose_sender(workspace.id, team_sequence, mailbox_id=jane.id, now=NOW)
    assert (choice.mailbox.id, choice.sender_email, choice.alias) == (jane.id, "jane@x.com", None)
    assert choice.hubspot_user.id == reps[1].id and choice.rotation is None


def test_direct_private_sequence_owner_may_send(workspace, reps, private_sequence):
    bob = default_mailbox(reps[0])
    assert choose_sender(workspace.id, private_sequence, mailbox_id=bob.id).mailbox.id == bob.id


def test_direct_private_sequence_other_user_is_denied_with_owner_named(
    workspace, reps, private_sequence
):
    jane = default_mailbox(reps[1])
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, private_sequence, mailbox_id=jane.id)
    assert caught.value.code == "PERMISSION_DENIED"
    assert caught.value.message == (
        "Permission denied: jane@x.com may not send the private sequence “Bob's own” "
        "(owner: bob@x.com)"
    )


def test_direct_team_sequence_user_not_listed_is_denied(workspace, reps):
    outsider = make_hubspot_user(workspace, "out@x.com")
    sequence = make_sequence(workspace, "Shared", owner=reps[0], senders=reps)
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, sequence, mailbox_id=default_mailbox(outsider).id)
    assert caught.value.code == "PERMISSION_DENIED"
    assert "out@x.com may not send the sequence “Shared”" in caught.value.message


def test_direct_user_without_seat_is_denied(workspace, reps):
    seatless = make_hubspot_user(workspace, "free@x.com", has_seat=False)
    sequence = make_sequence(workspace, "S", owner=reps[0], senders=[*reps, seatless])
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, sequence, mailbox_id=default_mailbox(seatless).id)
    assert caught.value.code == "PERMISSION_DENIED"
    assert "free@x.com has no Sales Hub" in caught.value.message


def test_direct_deactivated_user_is_denied(workspace, reps, team_sequence):
    reps[1].active = False
    db.session.commit()
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, mailbox_id=default_mailbox(reps[1]).id)
    assert caught.value.code == "PERMISSION_DENIED"
    assert "jane@x.com is deactivated" in caught.value.message


def test_direct_mailbox_of_another_workspace_is_not_found(workspace, reps, team_sequence, user):
    from autoseq.services import accounts

    other = accounts.create_workspace(user, "Other")
    stranger = make_hubspot_user(other, "s@other.com")
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, mailbox_id=default_mailbox(stranger).id)
    assert caught.value.code == "MAILBOX_NOT_FOUND"


def test_direct_alias_sends_through_its_inbox(workspace, reps, team_sequence):
    alias = make_mailbox(
        reps[1], "sales@x.com", kind=MailboxKind.ALIAS.value, inbox_email="jane@x.com"
    )
    choice = choose_sender(workspace.id, team_sequence, mailbox_id=alias.id)
    assert (choice.sender_email, choice.alias) == ("jane@x.com", "sales@x.com")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"status": MailboxStatus.DISCONNECTED.value}, "is disconnected"),
        ({"status": MailboxStatus.PAUSED.value}, "is paused by an admin"),
        ({"out_of_office_until": date(2026, 11, 27)}, "out of office until 2026-11-27"),
    ],
)
def test_direct_unavailable_mailbox_is_refused(workspace, reps, team_sequence, change, words):
    mailbox = default_mailbox(reps[1])
    for key, value in change.items():
        setattr(mailbox, key, value)
    db.session.commit()
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)
    assert caught.value.code == "MAILBOX_UNAVAILABLE"
    assert words in caught.value.message


def test_direct_out_of_office_ended_yesterday_sends(workspace, reps, team_sequence):
    mailbox = default_mailbox(reps[1])
    mailbox.out_of_office_until = date(2026, 11, 26)
    db.session.commit()
    assert choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW).mailbox


# --- caps over a rolling window -------------------------------------------------------------------


def test_direct_cap_refuses_past_the_cap_within_24h(workspace, reps, team_sequence):
    mailbox = default_mailbox(reps[1])
    mailbox.daily_cap = 3
    db.session.commit()
    for i in range(3):
        choose_sender(
            workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW + timedelta(hours=i)
        )
    with pytest.raises(NoSender) as caught:
        choose_sender(
            workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW + timedelta(hours=23)
        )
    assert caught.value.code == "MAILBOX_UNAVAILABLE"
    assert "reached its cap of 3" in caught.value.message


def test_cap_window_rolls_slot_by_slot(workspace, reps, team_sequence):
    mailbox = default_mailbox(reps[1])
    mailbox.daily_cap = 2
    db.session.commit()
    choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)
    choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW + timedelta(hours=6))
    # 24 h after the first send one slot frees up, not two.
    later = NOW + timedelta(hours=24, seconds=1)
    assert senders.sent_last_24h([mailbox.id], now=later) == {mailbox.id: 1}
    choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=later)
    with pytest.raises(NoSender):
        choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=later)


def test_release_gives_the_slot_back(workspace, reps, team_sequence):
    mailbox = default_mailbox(reps[1])
    mailbox.daily_cap = 1
    db.session.commit()
    choice = choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)
    assert senders.sent_last_24h([mailbox.id], now=NOW) == {mailbox.id: 1}
    senders.release(choice)
    assert senders.sent_last_24h([mailbox.id], now=NOW) == {mailbox.id: 0}
    assert choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)


def test_rotation_skips_mailbox_at_cap_then_all_at_cap(workspace, reps, team_sequence):
    boxes = mailboxes_of(reps[:2])
    boxes[0].daily_cap = 1
    boxes[1].daily_cap = 2
    db.session.commit()
    rotation = make_rotation(workspace, boxes)
    counts = pick_many(workspace, team_sequence, rotation, 3)
    assert counts == {"bob@x.com": 1, "jane@x.com": 2}
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW)
    assert caught.value.code == "ALL_AT_CAP"
    assert "bob@x.com (1)" in caught.value.message and "jane@x.com (2)" in caught.value.message


# --- rotation: spread -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1000, 10_000])
def test_weighted_spread_matches_weights_within_one_percent(workspace, reps, team_sequence, n):
    rotation = make_rotation(workspace, mailboxes_of(reps), weights=[50, 30, 20])
    # One pick a minute keeps every mailbox under its 1,000-a-day cap over 10,000 picks.
    counts = pick_many(workspace, team_sequence, rotation, n, step=timedelta(minutes=1))
    for email, weight in zip(("bob@x.com", "jane@x.com", "carl@x.com"), (50, 30, 20), strict=True):
        assert abs(counts[email] / n - weight / 100) <= 0.01, counts


def test_uneven_weights_spread_within_one_percent(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps), weights=[67, 21, 12])
    counts = pick_many(workspace, team_sequence, rotation, 1000)
    assert abs(counts["bob@x.com"] - 670) <= 10
    assert abs(counts["jane@x.com"] - 210) <= 10
    assert abs(counts["carl@x.com"] - 120) <= 10


def test_even_rotation_splits_equally_in_order(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps))
    order = [
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id).mailbox.email
        for _ in range(6)
    ]
    assert order == ["bob@x.com", "jane@x.com", "carl@x.com"] * 2


def test_swrr_interleaves_rather_than_bursts(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps[:2]), weights=[80, 20])
    order = [
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id).mailbox.email
        for _ in range(5)
    ]
    assert order.count("jane@x.com") == 1 and order[0] == "bob@x.com" and order[-1] == "bob@x.com"


# --- rotation: skip rules and failures ------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"status": MailboxStatus.DISCONNECTED.value},
        {"status": MailboxStatus.PAUSED.value},
        {"out_of_office_until": date(2026, 11, 30)},
    ],
)
def test_rotation_skips_unavailable_mailbox(workspace, reps, team_sequence, change):
    boxes = mailboxes_of(reps)
    for key, value in change.items():
        setattr(boxes[1], key, value)
    db.session.commit()
    rotation = make_rotation(workspace, boxes)
    counts = pick_many(workspace, team_sequence, rotation, 10)
    assert counts == {"bob@x.com": 5, "carl@x.com": 5}


def test_rotation_private_sequence_only_owner_sends(workspace, reps, private_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps))
    assert pick_many(workspace, private_sequence, rotation, 4) == {"bob@x.com": 4}


def test_rotation_private_sequence_without_owner_is_no_eligible_mailbox(
    workspace, reps, private_sequence
):
    rotation = make_rotation(workspace, mailboxes_of(reps[1:]))
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, private_sequence, rotation_id=rotation.id)
    assert caught.value.code == "NO_ELIGIBLE_MAILBOX"
    assert "may send this private sequence (owner: bob@x.com)" in caught.value.message


def test_rotation_all_unavailable_says_why(workspace, reps, team_sequence):
    boxes = mailboxes_of(reps[:2])
    boxes[0].status = MailboxStatus.PAUSED.value
    boxes[1].status = MailboxStatus.DISCONNECTED.value
    db.session.commit()
    rotation = make_rotation(workspace, boxes)
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id)
    assert caught.value.code == "NO_ELIGIBLE_MAILBOX"
    assert "bob@x.com is paused" in caught.value.message
    assert "jane@x.com is disconnected" in caught.value.message


def test_empty_rotation(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, [])
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id)
    assert caught.value.code == "ROTATION_EMPTY"


def test_deleted_rotation_fails_with_reason(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps), name="Old pool")
    rotation.deleted_at = NOW
    db.session.commit()
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id)
    assert caught.value.code == "ROTATION_DELETED"
    assert "“Old pool” was deleted on 2026-11-27" in caught.value.message


def test_rotation_of_another_workspace_is_not_used(workspace, reps, team_sequence, user):
    from autoseq.services import accounts

    other = accounts.create_workspace(user, "Other")
    rotation = make_rotation(other, [default_mailbox(make_hubspot_user(other, "o@o.com"))])
    with pytest.raises(NoSender) as caught:
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id)
    assert caught.value.code == "ROTATION_DELETED"


# --- failover -------------------------------------------------------------------------------------


def test_failover_marks_disconnected_and_picks_another(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps[:2]))
    first = choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW)
    assert first.mailbox.email == "bob@x.com"
    senders.release(first)
    senders.mark_disconnected(first.mailbox.id, "User 1 has no connected inboxes")
    second = choose_sender(
        workspace.id,
        team_sequence,
        rotation_id=rotation.id,
        exclude_mailbox_ids=(first.mailbox.id,),
        now=NOW,
    )
    assert second.mailbox.email == "jane@x.com"
    db.session.expire_all()
    marked = db.session.get(Mailbox, first.mailbox.id)
    assert marked.status == "disconnected"
    assert marked.disconnect_reason == "User 1 has no connected inboxes"
    assert senders.sent_last_24h([first.mailbox.id], now=NOW) == {first.mailbox.id: 0}


def test_failover_with_nobody_left(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps[:1]))
    first = choose_sender(workspace.id, team_sequence, rotation_id=rotation.id)
    with pytest.raises(NoSender) as caught:
        choose_sender(
            workspace.id,
            team_sequence,
            rotation_id=rotation.id,
            exclude_mailbox_ids=[first.mailbox.id],
        )
    assert caught.value.code == "NO_ELIGIBLE_MAILBOX"
    assert "refused by HubSpot" in caught.value.message


# --- reset periods --------------------------------------------------------------------------------


def test_daily_reset_restarts_the_cursor_at_midnight(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps), reset="daily")
    first_day = [
        choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW).mailbox.email
        for _ in range(2)
    ]
    next_day = NOW + timedelta(days=1)
    after = choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=next_day)
    assert first_day == ["bob@x.com", "jane@x.com"]
    assert after.mailbox.email == "bob@x.com" and after.turn == 1


def test_never_reset_keeps_the_cursor(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps), reset="never")
    choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW)
    later = choose_sender(
        workspace.id, team_sequence, rotation_id=rotation.id, now=NOW + timedelta(days=40)
    )
    assert later.mailbox.email == "jane@x.com" and later.turn == 2


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("daily", datetime(2026, 11, 27, tzinfo=UTC)),
        ("weekly", datetime(2026, 11, 23, tzinfo=UTC)),  # the Monday
        ("monthly", datetime(2026, 11, 1, tzinfo=UTC)),
        ("never", None),
    ],
)
def test_period_start(period, start):
    assert senders.period_start(period, NOW) == start


def test_period_start_follows_the_workspace_time_zone():
    # 12:00 UTC on the 27th is already the 28th in Auckland (UTC+13 in November).
    start = senders.period_start("daily", NOW, "Pacific/Auckland")
    assert start == datetime(2026, 11, 27, 11, 0, tzinfo=UTC)


def test_weekly_reset_keeps_cursor_within_the_week(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps), reset="weekly")
    choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW)  # Friday
    sunday = choose_sender(
        workspace.id, team_sequence, rotation_id=rotation.id, now=NOW + timedelta(days=2)
    )
    monday = choose_sender(
        workspace.id, team_sequence, rotation_id=rotation.id, now=NOW + timedelta(days=3)
    )
    assert (sunday.turn, monday.turn) == (2, 1)


# --- concurrency ----------------------------------------------------------------------------------


def _worker_picks(app, workspace_id, sequence_id, rotation_id, n, results):
    from autoseq.models import Sequence

    with app.app_context():
        db.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
        sequence = db.session.get(Sequence, sequence_id)
        picked = []
        for _ in range(n):
            choice = choose_sender(workspace_id, sequence, rotation_id=rotation_id, now=NOW)
            picked.append((choice.turn, choice.mailbox.id, choice.reservation))
        db.session.remove()
    results.put(picked)


def test_concurrent_processes_never_take_the_same_turn(app, workspace, reps, team_sequence):
    boxes = mailboxes_of(reps)
    rotation = make_rotation(workspace, boxes, weights=[50, 30, 20])
    ids = (workspace.id, team_sequence.id, rotation.id)
    box_ids = [b.id for b in boxes]
    db.session.remove()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker_picks, args=(app, *ids, 250, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    picks = [pick for _ in procs for pick in results.get(timeout=60)]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    turns = sorted(turn for turn, _, _ in picks)
    assert turns == list(range(1, 1001))  # every turn taken exactly once
    assert len({reservation for _, _, reservation in picks}) == 1000
    counts = Counter(mailbox_id for _, mailbox_id, _ in picks)
    assert [counts[i] for i in box_ids] == [500, 300, 200]
    assert senders.sent_last_24h(box_ids, now=NOW) == dict(
        zip(box_ids, (500, 300, 200), strict=True)
    )


def _worker_cap_picks(app, workspace_id, sequence_id, rotation_id, results):
    from autoseq.models import Sequence

    with app.app_context():
        db.engine.dispose(close=False)
        sequence = db.session.get(Sequence, sequence_id)
        ok = refused = 0
        for _ in range(25):
            try:
                choose_sender(workspace_id, sequence, rotation_id=rotation_id, now=NOW)
                ok += 1
            except NoSender as exc:
                assert exc.code == "ALL_AT_CAP"
                refused += 1
        db.session.remove()
    results.put((ok, refused))


def test_concurrent_processes_never_overrun_a_cap(app, workspace, reps, team_sequence):
    boxes = mailboxes_of(reps[:2])
    for box in boxes:
        box.daily_cap = 30
    db.session.commit()
    rotation = make_rotation(workspace, boxes)
    ids = (workspace.id, team_sequence.id, rotation.id)
    box_ids = [b.id for b in boxes]
    db.session.remove()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    procs = [ctx.Process(target=_worker_cap_picks, args=(app, *ids, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert sum(ok for ok, _ in outcomes) == 60
    assert sum(refused for _, refused in outcomes) == 40
    assert senders.sent_last_24h(box_ids, now=NOW) == {i: 30 for i in box_ids}


def test_workspace_time_zone_decides_out_of_office_day(workspace, reps, team_sequence):
    ws = db.session.get(Workspace, workspace.id)
    ws.timezone = "Pacific/Auckland"
    mailbox = default_mailbox(reps[1])
    mailbox.out_of_office_until = date(2026, 11, 27)
    db.session.commit()
    # 12:00 UTC on the 27th is the 28th in Auckland: back from holiday.
    assert choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW).mailbox


# --- caps survive Redis losing its data -----------------------------------------------------------


def _enrolled(workspace, mailbox, when, n):
    from autoseq.models import Enrollment

    for i in range(n):
        db.session.add(
            Enrollment(
                workspace_id=workspace.id,
                callback_id=f"cb-{mailbox.id}-{when.timestamp()}-{i}",
                portal_id=1,
                contact_id=str(i),
                sequence_hubspot_id="1",
                mailbox_id=mailbox.id,
                status="enrolled",
                created_at=when,
            )
        )
    db.session.commit()


def test_cap_window_is_rebuilt_from_enrollments_after_redis_lost_it(workspace, reps, team_sequence):
    mailbox = default_mailbox(reps[1])
    mailbox.daily_cap = 3
    db.session.commit()
    _enrolled(workspace, mailbox, NOW - timedelta(hours=2), 2)
    _enrolled(workspace, mailbox, NOW - timedelta(hours=30), 5)  # outside the window
    assert senders.sent_last_24h([mailbox.id], now=NOW) == {mailbox.id: 2}
    choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)
    with pytest.raises(NoSender):
        choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)


def test_cap_window_is_seeded_once_so_reservations_are_not_counted_twice(
    workspace, reps, team_sequence
):
    mailbox = default_mailbox(reps[1])
    choose_sender(workspace.id, team_sequence, mailbox_id=mailbox.id, now=NOW)
    _enrolled(workspace, mailbox, NOW, 1)  # the enrollment that reservation became
    assert senders.sent_last_24h([mailbox.id], now=NOW) == {mailbox.id: 1}


def test_changing_weights_restarts_the_cursor(workspace, reps, team_sequence):
    rotation = make_rotation(workspace, mailboxes_of(reps[:2]), weights=[50, 50])
    choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW)
    rotation.members[0].weight = 20
    rotation.members[1].weight = 80
    db.session.commit()
    after = choose_sender(workspace.id, team_sequence, rotation_id=rotation.id, now=NOW)
    assert (after.turn, after.mailbox.email) == (1, "jane@x.com")
