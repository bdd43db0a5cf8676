"""The pure part of the sync: HubSpot payloads merged into records, and what to write."""

from __future__ import annotations

from datetime import UTC, datetime

from autoseq.services.sync import (
    UserListing,
    clean_name,
    map_state,
    merge_sequences,
    merge_users,
    parse_timestamp,
    plan_sequence_changes,
)


def seq(sid, name="S", user="1", **extra):
    return {
        "id": sid,
        "name": name,
        "userId": user,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-02-01T00:00:00.000Z",
        **extra,
    }


def test_a_sequence_seen_by_others_than_its_owner_is_team_with_all_viewers_as_senders():
    records, skipped = merge_sequences({"1": [seq("10")], "2": [seq("10")], "3": [seq("10")]})
    assert skipped == 0
    assert records["10"]["sharing"] == "team"
    assert records["10"]["sender_user_ids"] == ["1", "2", "3"]


def test_a_sequence_seen_only_by_its_owner_is_private():
    records, _ = merge_sequences({"1": [seq("10", user="1")], "2": [seq("11", user="2")]})
    assert records["10"]["sharing"] == "private"
    assert records["10"]["sender_user_ids"] == ["1"]


def test_state_is_read_when_given_and_unknown_otherwise():
    assert map_state({"state": "PAUSED"}) == "paused"
    assert map_state({"status": "draft"}) == "draft"
    assert map_state({"archived": True}) == "archived"
    assert map_state({"isActive": False}) == "paused"
    assert map_state({"state": "something new"}) == "unknown"
    assert map_state({}) == "unknown"


def test_bad_dates_become_none_and_good_ones_are_utc():
    assert parse_timestamp("2025-01-01T10:00:00.000Z") == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert parse_timestamp("2025-01-01T12:00:00+02:00") == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert parse_timestamp(1735725600000) == datetime(2025, 1, 1, 10, tzinfo=UTC)
    for bad in ("yesterday", "", None, "2025-13-45", {"x": 1}, True, 10**20):
        assert parse_timestamp(bad) is None


def test_one_bad_record_is_skipped_and_counted_not_fatal():
    items = [seq("10"), {"name": "no id"}, "not a dict", seq("x" * 40), seq("11", createdAt="bad")]
    records, skipped = merge_sequences({"1": items})
    assert set(records) == {"10", "11"}
    assert skipped == 3
    assert records["11"]["hs_created_at"] is None


def test_odd_names_are_kept_as_text():
    assert clean_name(None) == ""
    assert clean_name(42) == "42"
    assert clean_name("a\x00b") == "ab"
    long = "é" * 10_000
    records, _ = merge_sequences({"1": [seq("10", name=long), seq("11", name="<b>🚀</b>")]})
    assert records["10"]["name"] == long
    assert records["11"]["name"] == "<b>🚀</b>"


def test_users_get_owner_ids_seats_and_archived_owners_become_inactive_users():
    listing = UserListing(
        users=[
            {
                "id": "1",
                "email": "a@x.test",
                "seatNames": ["Sales Hub Professional"],
                "superAdmin": True,
            },
            {"id": "2", "email": "b@x.test", "seatNames": ["Core"]},
            {"id": "4", "email": "d@x.test", "seatNames": []},
            {"id": "5", "email": "e@x.test"},
            {"id": "6", "email": "f@x.test", "seatNames": ["Service Hub Enterprise"]},
            {"id": "3"},  # no email: skipped
        ],
        owners=[
            {"id": "901", "userId": 1},
            {"id": "902", "userId": 2},
            {"id": "999", "type": "QUEUE"},
        ],
        archived_owners=[{"id": "903", "userId": 3, "email": "c@x.test", "archived": True}],
    )
    records, skipped = merge_users(listing)
    assert skipped == 1
    assert (
        records["1"]["owner_id"] == "901"
        and records["1"]["has_seat"]
        and records["1"]["super_admin"]
    )
    assert records["2"]["has_seat"] is False  # seats named, none a Sales/Service seat: plain
    # An empty or missing seatNames says nothing: not "without a seat".
    assert records["4"]["has_seat"] is True and records["5"]["has_seat"] is True
    assert records["6"]["has_seat"] is True
    assert records["3"]["active"] is False and records["3"]["owner_id"] == "903"


def test_plan_inserts_updates_only_changes_removes_and_revives():
    now = datetime(2025, 3, 1, tzinfo=UTC)
    incoming, _ = merge_sequences({"1": [seq("10", name="New"), seq("11"), seq("13")]})
    unchanged = dict(incoming["11"], id=2, hubspot_id="11", removed_at=None)
    existing = {
        "10": dict(incoming["10"], id=1, hubspot_id="10", name="Old", removed_at=None),
        "11": unchanged,
        "12": dict(incoming["11"], id=3, hubspot_id="12", removed_at=None),
        "13": dict(incoming["13"], id=4, hubspot_id="13", removed_at=now),
    }
    plan = plan_sequence_changes(existing, incoming)
    assert plan.inserts == []
    assert plan.updates == [{"id": 1, "name": "New"}, {"id": 4, "removed_at": None}]
    assert plan.removals == [3]
    assert plan.kept == 1


def test_plan_keeps_sequences_of_users_whose_listing_failed():
    existing = {"12": dict(seq("12", user="7"), id=3, owner_hubspot_user_id="7", removed_at=None)}
    plan = plan_sequence_changes(existing, {}, keep_owners={"7"})
    assert plan.removals == []
