"""The admin API and page, seeding and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hubspot_sandbox import SandboxServer, SandboxState

ROOT = Path(__file__).resolve().parents[2]


def test_app_and_portals(demo, portal):
    app = demo.admin("GET", "/app").json()
    assert app == {
        "client_id": demo.app.client_id,
        "client_secret": demo.app.client_secret,
        "app_id": demo.app.app_id,
        "developer_api_key": demo.app.developer_api_key,
        "developer_token": demo.app.developer_token,
    }
    portals = demo.admin("GET", "/portals").json()["results"]
    assert portals[0]["id"] == portal.id and portals[0]["sequences"] == 25
    detail = demo.admin("GET", f"/portals/{portal.id}").json()
    assert len(detail["users"]) == 8
    assert detail["settings"] == {
        "token_ttl": 1800.0,
        "rate_limit": "110/10s",
        "daily_cap": 1000,
        "include_state": False,
        "seat_names": "listed",
        "enrollment_length": None,
    }
    assert demo.admin("GET", "/portals/1").status_code == 404


def test_create_portal(demo):
    resp = demo.admin(
        "POST",
        "/portals",
        json={
            "domain": "acme.hubspot.com",
            "users": [{"email": "a@acme.com", "firstName": "A", "seat": True}],
            "sequences": [{"name": "Acme Seq", "userEmail": "a@acme.com", "shared": False}],
            "contacts": 3,
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["sequences"] == 1 and body["contacts"] == 3
    tok = demo.token(portal_id=body["id"])["access_token"]
    uid = body["users"][0]["id"]
    seqs = demo.api("GET", "/automation/sequences/2026-03", tok, params={"userId": uid}).json()
    assert [s["name"] for s in seqs["results"]] == ["Acme Seq"]
    assert demo.admin("POST", "/portals", json={"id": body["id"]}).status_code == 400
    before = len(demo.admin("GET", "/portals").json()["results"])
    assert demo.admin("POST", "/portals", json={"users": [{"nope": 1}]}).status_code == 400
    assert demo.admin("POST", "/portals", json={"sequences": [{"name": "x"}]}).status_code == 400
    assert len(demo.admin("GET", "/portals").json()["results"]) == before


def test_sequence_admin_changes_show_in_api(demo, demo_token, portal):
    users = sorted(portal.users.values(), key=lambda u: u.id)
    alice, bruno = users[0], users[1]
    resp = demo.admin(
        "POST",
        f"/portals/{portal.id}/sequences",
        json={
            "name": "New one",
            "userId": bruno.id,
            "shared": False,
            "folderId": "77",
            "state": "draft",
        },
    )
    assert resp.status_code == 201
    seq = resp.json()
    assert seq["shared"] is False and seq["folderId"] == "77" and seq["state"] == "draft"

    def visible_to(uid):
        body = demo.api(
            "GET", "/automation/sequences/2026-03", demo_token, params={"userId": uid, "limit": 100}
        ).json()
        return {s["id"]: s for s in body["results"]}

    assert seq["id"] in visible_to(bruno.id) and seq["id"] not in visible_to(alice.id)
    r = demo.admin(
        "PATCH",
        f"/portals/{portal.id}/sequences/{seq['id']}",
        json={"shared": True, "name": "Renamed", "folderId": None},
    )
    assert r.status_code == 200
    seen = visible_to(alice.id)[seq["id"]]
    assert seen["name"] == "Renamed" and "folderId" not in seen
    assert demo.admin("DELETE", f"/portals/{portal.id}/sequences/{seq['id']}").status_code == 204
    assert seq["id"] not in visible_to(alice.id)
    assert demo.admin("DELETE", f"/portals/{portal.id}/sequences/{seq['id']}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"userId": 1},
        {"name": "x"},
        {"name": "x", "userId": 12345},
        {"name": "x", "userId": "abc"},
        {"name": "x", "userId": 7000001, "shared": "yes"},
        {"name": "x", "userId": 7000001, "state": "weird"},
    ],
)
def test_create_sequence_validation(demo, portal, body):
    resp = demo.admin("POST", f"/portals/{portal.id}/sequences", json=body)
    assert resp.status_code == 400
    err = resp.json()
    assert err["status"] == "error" and err["message"]


def test_admin_malformed_json(demo, portal):
    resp = demo.http.post(
        f"{demo.url}/_sandbox/portals/{portal.id}/sequences",
        data="{",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["category"] == "VALIDATION_ERROR"


def test_users_admin(demo, demo_token, portal):
    resp = demo.admin(
        "POST",
        f"/portals/{portal.id}/users",
        json={"email": "new@demo-company.com", "firstName": "New", "seat": False},
    )
    assert resp.status_code == 201
    user = resp.json()
    assert user["inboxes"] == [{"email": "new@demo-company.com", "connected": True}]
    assert (
        demo.admin(
            "POST", f"/portals/{portal.id}/users", json={"email": "new@demo-company.com"}
        ).status_code
        == 400
    )
    assert (
        demo.admin(
            "POST", f"/portals/{portal.id}/users", json={"email": "not-an-email"}
        ).status_code
        == 400
    )
    r = demo.admin("PATCH", f"/portals/{portal.id}/users/{user['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    emails = [
        u["email"] for u in demo.api("GET", "/settings/v3/users", demo_token).json()["results"]
    ]
    assert "new@demo-company.com" not in emails
    assert (
        demo.admin(
            "PATCH", f"/portals/{portal.id}/users/{user['id']}", json={"active": "no"}
        ).status_code
        == 400
    )
    assert (
        demo.admin(
            "DELETE", f"/portals/{portal.id}/users/{user['id']}/inboxes/new@demo-company.com"
        ).status_code
        == 204
    )


def test_contacts_settings_stats_enrollments(demo, demo_token, portal):
    added = demo.admin("POST", f"/portals/{portal.id}/contacts", json={"count": 2})
    assert added.status_code == 201
    cid = added.json()["results"][0]["id"]
    assert (
        demo.admin(
            "PATCH", f"/portals/{portal.id}/contacts/{cid}", json={"unsubscribed": True}
        ).json()["unsubscribed"]
        is True
    )
    listing = demo.admin("GET", f"/portals/{portal.id}/contacts", params={"limit": 5}).json()
    assert listing["total"] == 502 and len(listing["results"]) == 5
    assert (
        demo.admin("POST", f"/portals/{portal.id}/contacts", json={"count": 0}).status_code == 400
    )
    for bad in (
        {"token_ttl": 0},
        {"rate_limit": "fast"},
        {"daily_cap": -1},
        {"include_state": 1},
        {"other": 1},
    ):
        assert demo.admin("PATCH", f"/portals/{portal.id}/settings", json=bad).status_code == 400, (
            bad
        )
    r = demo.admin(
        "PATCH", f"/portals/{portal.id}/settings", json={"rate_limit": "50/5s", "token_ttl": 60}
    )
    assert r.json()["rate_limit"] == "50/5s" and r.json()["token_ttl"] == 60
    alice = min(portal.users.values(), key=lambda u: u.id)
    team = next(s for s in portal.sequences.values() if s.shared)
    contact = next(c for c in portal.contacts.values() if not c.unsubscribed and not c.bounced)
    demo.api(
        "POST",
        "/automation/sequences/2026-03/enrollments",
        demo_token,
        params={"userId": alice.id},
        json={"contactId": contact.id, "sequenceId": team.id, "senderEmail": alice.email},
    )
    rows = demo.admin("GET", f"/portals/{portal.id}/enrollments").json()["results"]
    assert rows[0]["contactId"] == contact.id and rows[0]["senderEmail"] == alice.email
    assert demo.admin("DELETE", f"/portals/{portal.id}/enrollments/{contact.id}").status_code == 204
    stats = demo.admin("GET", f"/portals/{portal.id}/stats").json()
    assert stats["requests"] == 1 and stats["by_status"] == {"200": 1}


def test_reset_reseeds(demo, portal):
    demo.admin("DELETE", f"/portals/{portal.id}/sequences/{next(iter(portal.sequences))}")
    body = demo.admin("POST", "/reset").json()
    assert body["portals"][0]["sequences"] == 25


def test_runner_settings(demo):
    assert (
        demo.admin("PATCH", "/runner", json={"backoff_base": 0.01}).json()["backoff_base"] == 0.01
    )
    assert demo.admin("PATCH", "/runner", json={"nope": 1}).status_code == 400
    assert demo.admin("PATCH", "/runner", json={"concurrency": 0}).status_code == 400


def test_admin_page_and_forms(demo, portal):
    page = demo.http.get(f"{demo.url}/_sandbox/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "[INBOUND] Demo Request - 3 Day" in page.text
    seq = next(iter(portal.sequences.values()))
    r = demo.http.post(
        f"{demo.url}/_sandbox/ui/{portal.id}/rename", data={"id": seq.id, "name": "Renamed by hand"}
    )
    assert r.status_code == 200 and "Renamed by hand" in r.text
    was_shared = seq.shared
    demo.http.post(f"{demo.url}/_sandbox/ui/{portal.id}/toggle_share", data={"id": seq.id})
    assert seq.shared is not was_shared
    user = next(iter(portal.users.values()))
    demo.http.post(f"{demo.url}/_sandbox/ui/{portal.id}/toggle_user", data={"id": user.id})
    assert user.active is False
    demo.http.post(f"{demo.url}/_sandbox/ui/{portal.id}/faults", data={"error_rate": "0.5"})
    assert portal.faults.error_rate == 0.5
    bad = demo.http.post(f"{demo.url}/_sandbox/ui/{portal.id}/rename", data={})
    assert bad.status_code == 400


def test_seed_generated_fast_and_deterministic():
    started = time.perf_counter()
    a = SandboxState()
    a.seed_generated(sequences=10000, users=50, contacts=100, portals=2)
    assert time.perf_counter() - started < 2
    b = SandboxState()
    b.seed_generated(sequences=10000, users=50, contacts=100, portals=2)
    pa, pb = list(a.portals.values())[1], list(b.portals.values())[1]
    assert [(s.name, s.shared) for s in pa.sequences.values()] == [
        (s.name, s.shared) for s in pb.sequences.values()
    ]
    assert len(pa.sequences) == 10000 and len(pa.users) == 50


def test_seed_json_file(tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps(
            {
                "portals": [
                    {
                        "id": 555,
                        "users": [{"email": "x@y.com"}, {"email": "z@y.com", "active": False}],
                        "sequences": [{"name": "S", "userEmail": "x@y.com"}],
                        "contacts": [{"id": "1", "email": "c@d.com", "bounced": True}],
                        "settings": {"include_state": True, "rate_limit": "off"},
                    }
                ]
            }
        )
    )
    state = SandboxState()
    state.load_seed_file(str(path))
    portal = state.portals[555]
    assert portal.include_state and portal.rate_limit is None
    assert portal.contacts["1"].bounced
    with SandboxServer(state) as server:
        assert requests.get(f"{server.url}/_sandbox/portals/555").json()["sequences"] == 1


def test_cli_serve_and_fire(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hubspot_sandbox",
            "--port",
            "0",
            "--seed",
            "generated",
            "--sequences",
            "10000",
            "--users",
            "50",
            "--rate-limit",
            "off",
            "--client-id",
            "cid",
            "--client-secret",
            "sec",
            "--app-id",
            "4242",
            "--developer-api-key",
            "dk",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(8)]
        url = lines[0].split(" on ")[1].split()[0]
        assert "cid" in "".join(lines) and "sec" in "".join(lines)
        assert requests.get(f"{url}/_sandbox/app").json()["app_id"] == 4242
        portal = requests.get(f"{url}/_sandbox/portals").json()["results"][0]
        assert portal["sequences"] == 10000
        definition = requests.post(
            f"{url}/automation/v4/actions/4242",
            params={"hapikey": "dk"},
            json={
                "actionUrl": "http://127.0.0.1:1/x",
                "published": True,
                "objectTypes": ["CONTACT"],
                "inputFields": [],
                "labels": {"en": {"actionName": "A"}},
                "functions": [],
            },
        ).json()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "hubspot_sandbox",
                "fire",
                "--url",
                url,
                "--portal",
                str(portal["id"]),
                "--definition",
                definition["id"],
                "--contacts",
                "1001-1003",
                "--workflow",
                "42",
                "--input",
                "sequence=1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)["callbackIds"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
