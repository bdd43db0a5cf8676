"""Sequences, owners and users endpoints: shapes, visibility, paging, enrollment refusals."""

from __future__ import annotations

import re

import pytest

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _users(portal):
    users = sorted(portal.users.values(), key=lambda u: u.id)
    return users


def test_list_shape_and_visibility(demo, demo_token, portal):
    users = _users(portal)
    alice = users[0]
    resp = demo.api(
        "GET",
        "/automation/sequences/2026-03",
        demo_token,
        params={"userId": alice.id, "limit": 100},
    )
    assert resp.status_code == 200
    body = resp.json()
    assert "paging" not in body
    ids = {r["id"] for r in body["results"]}
    expected = {s.id for s in portal.sequences.values() if s.shared or s.user_id == alice.id}
    assert ids == expected
    assert body["total"] == len(expected)
    item = body["results"][0]
    assert set(item) >= {"id", "name", "createdAt", "updatedAt", "userId"}
    assert ISO.match(item["createdAt"]) and ISO.match(item["updatedAt"])
    assert "state" not in item
    # private sequences of other users are not visible
    others_private = [
        s for s in portal.sequences.values() if not s.shared and s.user_id != alice.id
    ]
    assert others_private and not ids & {s.id for s in others_private}


def test_list_requires_known_user(demo, demo_token):
    resp = demo.api("GET", "/automation/sequences/2026-03", demo_token)
    assert resp.status_code == 400
    assert resp.json()["category"] == "VALIDATION_ERROR"
    resp = demo.api("GET", "/automation/sequences/2026-03", demo_token, params={"userId": 1})
    assert resp.status_code == 400


@pytest.mark.parametrize("limit", ["0", "-1", "abc"])
def test_bad_limit(demo, demo_token, portal, limit):
    uid = _users(portal)[0].id
    resp = demo.api(
        "GET", "/automation/sequences/2026-03", demo_token, params={"userId": uid, "limit": limit}
    )
    assert resp.status_code == 400


def test_bad_cursor(demo, demo_token, portal):
    uid = _users(portal)[0].id
    resp = demo.api(
        "GET",
        "/automation/sequences/2026-03",
        demo_token,
        params={"userId": uid, "after": "!!garbage!!"},
    )
    assert resp.status_code == 400


def test_paging_default_limit_and_link(demo, demo_token, portal):
    uid = _users(portal)[0].id
    body = demo.api(
        "GET", "/automation/sequences/2026-03", demo_token, params={"userId": uid}
    ).json()
    assert len(body["results"]) == 10
    nxt = body["paging"]["next"]
    assert nxt["after"] and "after=" in nxt["link"]
    second = demo.http.get(nxt["link"], headers={"Authorization": f"Bearer {demo_token}"}).json()
    assert second["results"][0]["id"] != body["results"][0]["id"]


def test_name_filter_and_state_setting(demo, demo_token, portal):
    uid = _users(portal)[0].id
    body = demo.api(
        "GET",
        "/automation/sequences/2026-03",
        demo_token,
        params={"userId": uid, "name": "inbound demo"},
    ).json()
    names = [r["name"] for r in body["results"]]
    assert "Inbound Demo Request - 5 Day Nurture" in names
    assert all("inbound demo" in n.lower() for n in names)
    demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"include_state": True})
    body = demo.api(
        "GET", "/automation/sequences/2026-03", demo_token, params={"userId": uid, "limit": 100}
    ).json()
    assert {r["state"] for r in body["results"]} <= {"active", "paused", "draft", "archived"}
    assert "paused" in {r["state"] for r in body["results"]}


def test_get_one_and_404_when_not_visible(demo, demo_token, portal):
    users = _users(portal)
    private = next(
        s for s in portal.sequences.values() if not s.shared and s.user_id != users[0].id
    )
    ok = demo.api(
        "GET",
        f"/automation/sequences/2026-03/{private.id}",
        demo_token,
        params={"userId": private.user_id},
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["id"] == private.id
    assert isinstance(body["steps"], list) and body["steps"]
    assert body["dependencies"] == [] and isinstance(body["settings"], dict)
    hidden = demo.api(
        "GET",
        f"/automation/sequences/2026-03/{private.id}",
        demo_token,
        params={"userId": users[0].id},
    )
    assert hidden.status_code == 404
    assert (
        demo.api(
            "GET", "/automation/sequences/2026-03/999", demo_token, params={"userId": users[0].id}
        ).status_code
        == 404
    )


def test_paging_10000_sequences_each_exactly_once():
    from hubspot_sandbox import SandboxServer, SandboxState

    from .conftest import Client

    state = SandboxState(rate_limit=None)
    portal = state.seed_generated(sequences=10000, users=50, contacts=10)[0]
    with SandboxServer(state) as server:
        client = Client(server)
        token = client.token()["access_token"]
        uid = sorted(portal.users)[3]
        seen: list[str] = []
        after = None
        for _ in range(200):
            params = {"userId": uid, "limit": 100}
            if after:
                params["after"] = after
            body = client.api("GET", "/automation/sequences/2026-03", token, params=params).json()
            seen.extend(r["id"] for r in body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
        expected = [s.id for s in portal.sequences.values() if s.shared or s.user_id == uid]
        assert len(seen) == len(set(seen)) == body["total"]
        assert sorted(seen, key=int) == sorted(expected, key=int)
        assert len(seen) > 6000


def test_owners_and_users(demo, demo_token, portal):
    resp = demo.api("GET", "/crm/v3/owners", demo_token)
    assert resp.status_code == 200
    owners = resp.json()["results"]
    active = [u for u in portal.users.values() if u.active]
    assert len(owners) == len(active)
    o = owners[0]
    assert set(o) >= {"id", "userId", "email", "firstName", "lastName", "type", "teams", "archived"}
    assert o["type"] == "PERSON" and o["archived"] is False
    assert int(o["id"]) != o["userId"]
    archived = demo.api("GET", "/crm/v3/owners", demo_token, params={"archived": "true"}).json()
    assert [a["email"] for a in archived["results"]] == ["hiro.tanaka@demo-company.com"]
    assert archived["results"][0]["archived"] is True
    one = demo.api(
        "GET", "/crm/v3/owners", demo_token, params={"email": "CHLOE.nguyen@demo-company.com"}
    ).json()["results"]
    assert len(one) == 1 and one[0]["firstName"] == "Chloe"
    page = demo.api("GET", "/crm/v3/owners", demo_token, params={"limit": 3}).json()
    assert len(page["results"]) == 3 and page["paging"]["next"]["after"]

    users = demo.api("GET", "/settings/v3/users", demo_token).json()["results"]
    assert len(users) == len(active)
    grace = next(u for u in users if u["firstName"] == "Grace")
    assert grace["seatNames"] == ["Core"]  # a seat, but not a Sales seat: HubSpot says so
    alice = next(u for u in users if u["firstName"] == "Alice")
    assert alice["superAdmin"] is True and alice["seatNames"]
    assert set(alice) >= {"id", "email", "roleIds", "primaryTeamId", "superAdmin"}


# -- enrollment -----------------------------------------------------------------


def _enroll(demo, token, uid, body):
    return demo.api(
        "POST",
        "/automation/sequences/2026-03/enrollments",
        token,
        params={"userId": uid},
        json=body,
    )


@pytest.fixture
def enroll_ctx(demo, portal):
    users = _users(portal)
    alice = users[0]
    team = next(s for s in portal.sequences.values() if s.shared)
    fine = [c for c in portal.contacts.values() if not c.unsubscribed and not c.bounced]
    return {"alice": alice, "users": users, "team": team, "fine": fine}


def _error(resp, status, sub):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == "error"
    assert body["subCategory"] == sub
    assert body["correlationId"]
    return body


def test_enroll_success_and_contact_lookup(demo, demo_token, enroll_ctx):
    alice, team, contact = enroll_ctx["alice"], enroll_ctx["team"], enroll_ctx["fine"][0]
    resp = _enroll(
        demo,
        demo_token,
        alice.id,
        {"contactId": contact.id, "sequenceId": team.id, "senderEmail": alice.email},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"id", "toEmail", "enrolledAt", "updatedAt"}
    assert body["toEmail"] == contact.email
    look = demo.api(
        "GET", f"/automation/sequences/2026-03/enrollments/contact/{contact.id}", demo_token
    ).json()
    assert look["sequenceId"] == team.id and look["sequenceName"] == team.name
    assert look["enrolledByEmail"] == alice.email
    none = demo.api(
        "GET",
        f"/automation/sequences/2026-03/enrollments/contact/{enroll_ctx['fine'][1].id}",
        demo_token,
    )
    assert none.status_code == 404
    again = _enroll(
        demo,
        demo_token,
        alice.id,
        {"contactId": contact.id, "sequenceId": team.id, "senderEmail": alice.email},
    )
    body = _error(again, 400, "ALREADY_ENROLLED")
    assert body["message"] == "Contact already enrolled in a sequence"


def test_enroll_refusals(demo, demo_token, portal, enroll_ctx):
    alice, team, users = enroll_ctx["alice"], enroll_ctx["team"], enroll_ctx["users"]
    c = enroll_ctx["fine"][2].id
    base = {"contactId": c, "sequenceId": team.id, "senderEmail": alice.email}
    _error(
        _enroll(demo, demo_token, alice.id, {**base, "sequenceId": "1"}), 404, "SEQUENCE_NOT_FOUND"
    )
    _error(
        _enroll(demo, demo_token, alice.id, {**base, "contactId": "9"}), 404, "CONTACT_NOT_FOUND"
    )
    grace = next(u for u in users if not u.seat)
    body = _error(
        _enroll(demo, demo_token, grace.id, {**base, "senderEmail": grace.email}),
        403,
        "PERMISSION_DENIED",
    )
    assert body["message"] == "Permission denied"
    hiro = next(u for u in users if not u.active)
    _error(
        _enroll(demo, demo_token, hiro.id, {**base, "senderEmail": hiro.email}),
        403,
        "PERMISSION_DENIED",
    )
    other_private = next(
        s for s in portal.sequences.values() if not s.shared and s.user_id != alice.id
    )
    _error(
        _enroll(demo, demo_token, alice.id, {**base, "sequenceId": other_private.id}),
        403,
        "PERMISSION_DENIED",
    )
    body = _error(
        _enroll(demo, demo_token, alice.id, {**base, "senderEmail": "x@y.com"}),
        400,
        "NO_CONNECTED_INBOX",
    )
    assert body["message"] == (f"User {alice.id} has no connected inboxes for specified user email")
    unsub = next(x for x in portal.contacts.values() if x.unsubscribed)
    _error(
        _enroll(demo, demo_token, alice.id, {**base, "contactId": unsub.id}), 400, "UNSUBSCRIBED"
    )
    bounced = next(x for x in portal.contacts.values() if x.bounced)
    _error(_enroll(demo, demo_token, alice.id, {**base, "contactId": bounced.id}), 400, "BOUNCED")


def test_enroll_disconnected_inbox_and_extra_inbox(demo, demo_token, portal, enroll_ctx):
    alice, team, fine = enroll_ctx["alice"], enroll_ctx["team"], enroll_ctx["fine"]
    r = demo.admin(
        "PATCH",
        f"/portals/{portal.id}/users/{alice.id}/inboxes/{alice.email}",
        json={"connected": False},
    )
    assert r.status_code == 200
    _error(
        _enroll(
            demo,
            demo_token,
            alice.id,
            {"contactId": fine[3].id, "sequenceId": team.id, "senderEmail": alice.email},
        ),
        400,
        "NO_CONNECTED_INBOX",
    )
    r = demo.admin(
        "POST",
        f"/portals/{portal.id}/users/{alice.id}/inboxes",
        json={"email": "alice@alias.example"},
    )
    assert r.status_code == 201
    ok = _enroll(
        demo,
        demo_token,
        alice.id,
        {"contactId": fine[3].id, "sequenceId": team.id, "senderEmail": "alice@alias.example"},
    )
    assert ok.status_code == 200


def test_enroll_daily_cap(demo, demo_token, portal, enroll_ctx):
    alice, team, fine = enroll_ctx["alice"], enroll_ctx["team"], enroll_ctx["fine"]
    demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"daily_cap": 2})
    for c in fine[:2]:
        assert (
            _enroll(
                demo,
                demo_token,
                alice.id,
                {"contactId": c.id, "sequenceId": team.id, "senderEmail": alice.email},
            ).status_code
            == 200
        )
    _error(
        _enroll(
            demo,
            demo_token,
            alice.id,
            {"contactId": fine[2].id, "sequenceId": team.id, "senderEmail": alice.email},
        ),
        400,
        "SEND_LIMIT_EXCEEDED",
    )


@pytest.mark.parametrize(
    "body,field",
    [
        ({"sequenceId": "1", "senderEmail": "a@b.c"}, "contactId"),
        ({"contactId": "1", "senderEmail": "a@b.c"}, "sequenceId"),
        ({"contactId": "1", "sequenceId": "1"}, "senderEmail"),
        ({"contactId": ["1"], "sequenceId": "1", "senderEmail": "a@b.c"}, "contactId"),
    ],
)
def test_enroll_malformed_body(demo, demo_token, enroll_ctx, body, field):
    resp = _enroll(demo, demo_token, enroll_ctx["alice"].id, body)
    assert resp.status_code == 400
    err = resp.json()
    assert err["category"] == "VALIDATION_ERROR"
    assert field in err["message"]


def test_enroll_not_json(demo, demo_token, enroll_ctx):
    resp = demo.api(
        "POST",
        "/automation/sequences/2026-03/enrollments",
        demo_token,
        params={"userId": enroll_ctx["alice"].id},
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["category"] == "VALIDATION_ERROR"


def test_enroll_needs_scope(demo, enroll_ctx):
    tok = demo.token(scope="automation.sequences.read")["access_token"]
    resp = _enroll(demo, tok, enroll_ctx["alice"].id, {"contactId": "1"})
    assert resp.status_code == 403
    assert resp.json()["category"] == "MISSING_SCOPES"


def test_unknown_route_and_method_are_json(demo, demo_token):
    resp = demo.api("GET", "/nope/v1", demo_token)
    assert resp.status_code == 404
    assert resp.json()["status"] == "error"
    resp = demo.api("DELETE", "/crm/v3/owners", demo_token)
    assert resp.status_code == 405
    assert resp.json()["status"] == "error"


@pytest.mark.parametrize(
    ("mode", "grace_seats"), [("listed", ["Core"]), ("empty", []), ("omitted", None)]
)
def test_users_are_served_with_or_without_seat_names(demo, demo_token, portal, mode, grace_seats):
    settings = demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"seat_names": mode})
    assert settings.json()["seat_names"] == mode
    users = demo.api("GET", "/settings/v3/users", demo_token).json()["results"]
    grace = next(u for u in users if u["firstName"] == "Grace")
    assert grace.get("seatNames") == grace_seats
    assert ("seatNames" in grace) == (mode != "omitted")
    bad = demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"seat_names": "some"})
    assert bad.status_code == 400
