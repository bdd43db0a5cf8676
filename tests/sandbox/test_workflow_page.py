"""The admin page that stands in for HubSpot's workflow editor: options from the app, then a run."""

from __future__ import annotations

import time

from .receiver import Receiver
from .test_actions_runner import create_definition


def options_answer(record, n):
    """The app: options that echo the choices so far, and an action that succeeds."""
    body = record["json"] or {}
    if record["path"] == "/options":
        chosen = {k: v["value"] for k, v in body.get("inputFields", {}).items()}
        options = [{"label": f"Seq {i} (chosen: {chosen})", "value": f"s{i}"} for i in (1, 2)]
        return 200, {"options": options, "searchable": True}, {}
    return 200, {"outputFields": {"hs_execution_state": "SUCCESS"}}, {}


def test_page_says_when_nothing_is_published(demo, portal):
    page = demo.http.get(f"{demo.url}/_sandbox/ui/{portal.id}/workflow")
    assert page.status_code == 200
    assert "No published action definition" in page.text


def test_dropdowns_come_from_the_apps_options_endpoint(demo, portal):
    with Receiver(options_answer) as app:
        definition = create_definition(demo, app.url + "/act", options_url=app.url + "/options")
        page = demo.http.get(
            f"{demo.url}/_sandbox/ui/{portal.id}/workflow",
            params={"definition": definition, "in_sequence": "s2"},
        )
        assert page.status_code == 200
        assert 'value="s2" selected' in page.text
        options_calls = [r for r in app.requests if r["path"] == "/options"]
        assert options_calls and options_calls[0]["json"]["inputFieldName"] == "sequence"
        headers = {k.lower() for k in options_calls[0]["headers"]}
        assert "x-hubspot-signature-v3" in headers  # signed like every HubSpot call


def test_run_fires_one_execution_per_contact(demo, portal):
    with Receiver(options_answer) as app:
        definition = create_definition(demo, app.url + "/act", options_url=app.url + "/options")
        first = min(int(c) for c in portal.contacts)
        resp = demo.http.post(
            f"{demo.url}/_sandbox/ui/{portal.id}/workflow",
            data={"definition": definition, "in_sequence": "s1", "first": first, "count": 5},
            allow_redirects=False,
        )
        assert resp.status_code == 303
        deadline = time.time() + 10
        while time.time() < deadline and len([r for r in app.requests if r["path"] == "/act"]) < 5:
            time.sleep(0.05)
        executions = [r["json"] for r in app.requests if r["path"] == "/act"]
        assert sorted(int(e["object"]["objectId"]) for e in executions) == list(
            range(first, first + 5)
        )
        assert all(e["inputFields"] == {"sequence": "s1"} for e in executions)


def test_run_refuses_a_bad_count(demo, portal):
    resp = demo.http.post(
        f"{demo.url}/_sandbox/ui/{portal.id}/workflow",
        data={"definition": "1", "first": "1", "count": "lots"},
    )
    assert resp.status_code == 400 and "whole numbers" in resp.json()["message"]
