"""Action definitions, callbacks and the workflow runner delivering over real HTTP."""

from __future__ import annotations

import time

import pytest
from hubspot.utils.signature import Signature

from .receiver import Receiver


def definition_body(url: str, options_url: str | None = None) -> dict:
    field = {"name": "sequence", "type": "enumeration", "fieldType": "select", "options": []}
    if options_url:
        field["optionsUrl"] = options_url
    return {
        "actionUrl": url,
        "published": True,
        "objectTypes": ["CONTACT"],
        "inputFields": [
            {"typeDefinition": field, "supportedValueTypes": ["STATIC_VALUE"], "isRequired": True}
        ],
        "outputFields": [],
        "labels": {"en": {"actionName": "Enroll in sequence"}},
        "objectRequestOptions": {"properties": ["email", "firstname"]},
        "functions": [],
    }


def create_definition(demo, url, options_url=None) -> str:
    resp = demo.http.post(
        f"{demo.url}/automation/actions/2026-09/{demo.app.app_id}",
        headers={"Authorization": f"Bearer {demo.app.developer_token}"},
        json=definition_body(url, options_url),
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_definition_crud_on_the_dated_path_with_the_developer_token(demo):
    base = f"{demo.url}/automation/actions/2026-09/{demo.app.app_id}"
    bearer = {"Authorization": f"Bearer {demo.app.developer_token}"}
    did = create_definition(demo, "http://127.0.0.1:1/x")
    got = demo.http.get(f"{base}/{did}", headers=bearer).json()
    assert got["revisionId"] == "1"
    patched = demo.http.patch(f"{base}/{did}", headers=bearer, json={"published": False})
    assert patched.status_code == 200 and patched.json()["revisionId"] == "2"
    # the developer key is the legacy path's credential, not the dated path's
    assert demo.http.get(base, params={"hapikey": demo.app.developer_api_key}).status_code == 401
    assert demo.http.delete(f"{base}/{did}", headers=bearer).status_code == 204


def test_definition_crud_on_the_legacy_path(demo):
    base = f"{demo.url}/automation/v4/actions/{demo.app.app_id}"
    key = {"hapikey": demo.app.developer_api_key}
    did = demo.http.post(base, params=key, json=definition_body("http://127.0.0.1:1/x")).json()[
        "id"
    ]
    got = demo.http.get(f"{base}/{did}", params=key).json()
    assert got["revisionId"] == "1" and got["labels"]["en"]["actionName"]
    patched = demo.http.patch(f"{base}/{did}", params=key, json={"published": False})
    assert patched.status_code == 200 and patched.json()["revisionId"] == "2"
    listed = demo.http.get(base, params=key).json()
    assert [d["id"] for d in listed["results"]] == [did]
    # Bearer developer key works too
    bearer = demo.http.get(base, headers={"Authorization": f"Bearer {demo.app.developer_api_key}"})
    assert bearer.status_code == 200
    assert demo.http.delete(f"{base}/{did}", params=key).status_code == 204
    assert demo.http.get(f"{base}/{did}", params=key).status_code == 404


def test_definition_auth_and_validation(demo):
    base = f"{demo.url}/automation/v4/actions/{demo.app.app_id}"
    key = {"hapikey": demo.app.developer_api_key}
    assert demo.http.get(base, params={"hapikey": "bad"}).status_code == 401
    wrong_app = f"{demo.url}/automation/v4/actions/{demo.app.app_id + 1}"
    assert demo.http.get(wrong_app, params=key).status_code == 404
    body = definition_body("http://127.0.0.1:1/x")
    for field, broken in (
        ("actionUrl", None),
        ("objectTypes", "CONTACT"),
        ("inputFields", "x"),
        ("labels", {"en": {}}),
    ):
        bad = dict(body)
        bad[field] = broken
        resp = demo.http.post(base, params=key, json=bad)
        assert resp.status_code == 400, field
        assert resp.json()["category"] == "VALIDATION_ERROR"


def _fire(demo, portal, did, contacts, wait=True, **extra):
    body = {
        "portalId": portal.id,
        "definitionId": did,
        "workflowId": 42,
        "contactIds": contacts,
        "inputFields": {"sequence": "2000001"},
        "wait": wait,
    }
    body.update(extra)
    resp = demo.admin("POST", "/workflows/fire", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_delivery_payload_and_signatures(demo, portal):
    contact = next(iter(portal.contacts.values()))

    def handler(req, n):
        return 200, {"outputFields": {"hs_execution_state": "SUCCESS", "x": "1"}}, None

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/hubspot/action?x=1")
        out = _fire(demo, portal, did, [contact.id])
        assert out["settled"] is True
        result = out["results"][0]
        assert result["status"] == "succeeded"
        assert result["outputFields"]["x"] == "1"
        req = rx.requests[0]
        body = req["json"]
        assert body["callbackId"] == out["callbackIds"][0]
        assert body["callbackId"].startswith("ap-")
        assert body["origin"] == {
            "portalId": portal.id,
            "actionDefinitionId": int(did),
            "actionDefinitionVersion": 1,
        }
        assert body["context"] == {"source": "WORKFLOWS", "workflowId": 42}
        assert body["object"]["objectId"] == int(contact.id)
        assert body["object"]["objectType"] == "CONTACT"
        assert body["object"]["properties"] == {
            "email": contact.email,
            "firstname": contact.first_name,
        }
        assert body["inputFields"] == {"sequence": "2000001"}
        h = req["headers"]
        url = rx.url + "/hubspot/action?x=1"
        assert Signature.is_valid(
            signature=h["X-Hubspot-Signature-V3"],
            client_secret=demo.app.client_secret,
            request_body=req["body"],
            http_uri=url,
            http_method="POST",
            signature_version="v3",
            timestamp=h["X-Hubspot-Request-Timestamp"],
        )
        assert h["X-Hubspot-Signature-Version"] == "v2"
        assert Signature.is_valid(
            signature=h["X-Hubspot-Signature"],
            client_secret=demo.app.client_secret,
            request_body=req["body"],
            http_uri=url,
            http_method="POST",
        )


def test_retry_on_500_then_success(demo, portal):
    def handler(req, n):
        if n < 3:
            return 500, {"oops": n}, None
        return 200, {"outputFields": {"hs_execution_state": "SUCCESS"}}, None

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/a")
        result = _fire(demo, portal, did, ["1001"])["results"][0]
        assert result["status"] == "succeeded"
        assert [a["statusCode"] for a in result["attempts"]] == [500, 500, 200]
        ids = {r["json"]["callbackId"] for r in rx.requests}
        assert len(ids) == 1  # the same callbackId comes back on a retry


def test_400_not_retried(demo, portal):
    with Receiver(lambda req, n: (400, {"error": "bad"}, None)) as rx:
        did = create_definition(demo, rx.url + "/a")
        result = _fire(demo, portal, did, ["1001"])["results"][0]
        assert result["status"] == "failed"
        assert len(result["attempts"]) == 1
        assert '"bad"' in result["attempts"][0]["body"]


def test_429_retried_with_retry_after(demo, portal):
    def handler(req, n):
        if n == 1:
            return 429, {}, {"Retry-After": "0"}
        return 200, {"outputFields": {"hs_execution_state": "FAIL_CONTINUE"}}, None

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/a")
        result = _fire(demo, portal, did, ["1001"])["results"][0]
        assert result["status"] == "fail_continue"
        assert [a["statusCode"] for a in result["attempts"]] == [429, 200]


def test_connection_error_retried_then_gives_up(demo, portal):
    did = create_definition(demo, "http://127.0.0.1:1/nothing-listens")
    result = _fire(demo, portal, did, ["1001"])["results"][0]
    assert result["status"] == "failed"
    assert len(result["attempts"]) == 4
    assert all(a["statusCode"] is None and a["error"] for a in result["attempts"])


def test_block_then_completion(demo, demo_token, portal):
    def handler(req, n):
        return (
            200,
            {"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}},
            None,
        )

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/a")
        out = _fire(demo, portal, did, ["1001", "1002", "1003"])
        assert {r["status"] for r in out["results"]} == {"blocked"}
        first, second, third = out["callbackIds"]
        done = {
            "outputFields": {"hs_execution_state": "SUCCESS", "enrollment": "ok"},
            "typedOutputs": {},
        }
        path = f"/automation/actions/callbacks/2026-09/{first}/complete"
        resp = demo.api("POST", path, demo_token, json=done)
        assert resp.status_code == 204
        again = demo.api("POST", path, demo_token, json=done)
        assert again.status_code == 400
        batch = demo.api(
            "POST",
            "/automation/actions/callbacks/2026-09/complete",
            demo_token,
            json={
                "inputs": [
                    {"callbackId": second, **done},
                    {
                        "callbackId": third,
                        "outputFields": {"hs_execution_state": "FAIL_CONTINUE", "reason": "X"},
                        "typedOutputs": {},
                    },
                ]
            },
        )
        assert batch.status_code == 204
        one = demo.admin("GET", f"/callbacks/{first}").json()
        assert one["status"] == "completed"
        assert one["completion"]["outputFields"]["enrollment"] == "ok"
        listed = demo.admin("GET", f"/portals/{portal.id}/callbacks").json()["results"]
        by_id = {c["callbackId"]: c for c in listed}
        assert by_id[third]["completion"]["outputFields"]["reason"] == "X"
        page = demo.http.get(f"{demo.url}/_sandbox/", params={"portal": portal.id})
        assert page.status_code == 200 and first in page.text and "completed" in page.text


def test_callback_completion_errors(demo, demo_token, portal):
    def handler(req, n):
        return 200, {"outputFields": {"hs_execution_state": "BLOCK"}}, None

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/a")
        cid = _fire(demo, portal, did, ["1001"])["callbackIds"][0]
        path = f"/automation/actions/callbacks/2026-09/{cid}/complete"
        bad_state = demo.api(
            "POST",
            path,
            demo_token,
            json={"outputFields": {"hs_execution_state": "BLOCK"}, "typedOutputs": {}},
        )
        assert bad_state.status_code == 400
        success = {"outputFields": {"hs_execution_state": "SUCCESS"}, "typedOutputs": {}}
        unknown = demo.api(
            "POST",
            "/automation/actions/callbacks/2026-09/ap-0-0/complete",
            demo_token,
            json=success,
        )
        assert unknown.status_code == 404
        no_scope = demo.token(scope="oauth")["access_token"]
        denied = demo.api("POST", path, no_scope, json=success)
        assert denied.status_code == 403


def test_block_expires(demo, demo_token, portal):
    def handler(req, n):
        return (
            200,
            {"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "PT0.2S"}},
            None,
        )

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/a")
        cid = _fire(demo, portal, did, ["1001"])["callbackIds"][0]
        time.sleep(0.3)
        assert demo.admin("GET", f"/callbacks/{cid}").json()["status"] == "expired"
        resp = demo.api(
            "POST",
            f"/automation/v4/actions/callbacks/{cid}/complete",
            demo_token,
            json={"outputFields": {"hs_execution_state": "SUCCESS"}},
        )
        assert resp.status_code == 400


def test_runner_python_api_and_options(demo, portal):
    seen = []

    def handler(req, n):
        seen.append(req["json"])
        if req["path"] == "/options":
            return 200, {"options": [{"label": "A", "value": "1"}], "searchable": True}, None
        return 200, {"outputFields": {"hs_execution_state": "SUCCESS"}}, None

    with Receiver(handler) as rx:
        did = create_definition(demo, rx.url + "/a", options_url=rx.url + "/options")
        runner = demo.server.runner
        ids = runner.fire(portal.id, did, ["1001", "1002"], 7, {"sequence": "1"})
        assert runner.wait(ids, timeout=5)
        result = runner.fetch_options(portal.id, did, "sequence", {"sender": "a@b.c"}, q="de")
        assert result["statusCode"] == 200
        assert result["json"]["options"][0]["value"] == "1"
        opts = seen[-1]
        assert opts["inputFieldName"] == "sequence"
        assert opts["objectTypeId"] == "0-1"
        assert opts["fetchOptions"] == {"q": "de"}
        assert opts["inputFields"] == {"sender": {"type": "STATIC_VALUE", "value": "a@b.c"}}
        via_admin = demo.admin(
            "POST",
            "/workflows/options",
            json={"portalId": portal.id, "definitionId": did, "fieldName": "sequence"},
        ).json()
        assert via_admin["json"]["searchable"] is True


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"portalId": 1, "definitionId": "1", "contactIds": ["1"]},
        {"portalId": "x", "definitionId": "1", "contactIds": ["1"]},
        {"definitionId": "1", "contactIds": []},
    ],
)
def test_fire_validation(demo, body):
    resp = demo.admin("POST", "/workflows/fire", json=body)
    assert resp.status_code == 400
    assert resp.json()["message"]
