"""The sandbox refuses what HubSpot refuses: one bad shape per rule, each answered 400 with
HubSpot's error JSON naming the field (hubspot_sandbox/schemas.py holds the rules as data)."""

from __future__ import annotations

import copy

import pytest

from autoseq.services.actions import build_definition
from hubspot_sandbox.schemas import SCHEMAS

DEFINITION = build_definition("http://127.0.0.1:1")


def _definition(mutate) -> dict:
    body = copy.deepcopy(DEFINITION)
    mutate(body)
    return body


def _set(path: str, value):
    """A mutation setting ``a.b.0.c`` to ``value`` (``...`` deletes the key)."""

    def mutate(body):
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


DEFINITION_RULES = [
    ("inputFieldDependencies.0.dependencyType", "CONDITIONAL"),
    ("inputFieldDependencies.0.controllingFieldValue", ...),
    ("outputFields.0.supportedValueTypes", ["STATIC_VALUE"]),
    ("outputFields.0.typeDefinition.useChirp", ...),
    ("outputFields.0.typeDefinition.schema.type", "TEXT"),
    ("inputFields.0.typeDefinition.type", "text"),
    ("inputFields.0.typeDefinition.fieldType", "dropdown"),
    ("inputFields.0.typeDefinition.options", ...),
    ("inputFields.0.supportedValueTypes.0", "FIELD_DATA"),
    ("inputFields.0.isRequired", ...),
    ("inputFields.1.typeDefinition.options.0.label", 7),
    ("functions", ...),
    ("published", "yes"),
    ("objectTypes", "CONTACT"),
    ("objectRequestOptions.properties", ...),
    ("actionName", "top-level key HubSpot does not know"),
    ("labels.en.actionName", ...),
    ("executionRules.0.labelName", ...),
]


def _field_of(path: str) -> str:
    """``inputFields.0.isRequired`` as the sandbox names it: ``inputFields[0].isRequired``."""
    out = ""
    for part in path.split("."):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def assert_refused(resp, field: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert body["context"]["field"] == [field], body
    assert body["errors"][0]["in"] == field and field in body["message"]


@pytest.fixture
def developer(demo):
    headers = {"Authorization": f"Bearer {demo.app.developer_token}"}
    return f"{demo.url}/automation/actions/2026-09/{demo.app.app_id}", headers


def test_our_own_definition_is_accepted(demo, developer):
    url, headers = developer
    assert demo.http.post(url, headers=headers, json=DEFINITION).status_code == 201


@pytest.mark.parametrize(("path", "value"), DEFINITION_RULES, ids=[r[0] for r in DEFINITION_RULES])
def test_a_definition_breaking_a_rule_is_refused(demo, developer, path, value):
    url, headers = developer
    resp = demo.http.post(url, headers=headers, json=_definition(_set(path, value)))
    assert_refused(resp, _field_of(path))


def test_a_definition_patch_with_an_unknown_key_is_refused(demo, developer):
    url, headers = developer
    did = demo.http.post(url, headers=headers, json=DEFINITION).json()["id"]
    resp = demo.http.patch(f"{url}/{did}", headers=headers, json={"name": "x"})
    assert_refused(resp, "name")


def test_the_legacy_definition_path_checks_the_same_shape(demo):
    url = f"{demo.url}/automation/v4/actions/{demo.app.app_id}"
    body = _definition(_set("inputFieldDependencies.0.dependencyType", "CONDITIONAL"))
    resp = demo.http.post(url, params={"hapikey": demo.app.developer_api_key}, json=body)
    assert_refused(resp, "inputFieldDependencies[0].dependencyType")


GOOD_DONE = {"outputFields": {"hs_execution_state": "SUCCESS"}, "typedOutputs": {}}
CALLBACK_RULES = [
    ("single", {"outputFields": {"hs_execution_state": "SUCCESS"}}, "typedOutputs"),
    ("single", {"typedOutputs": {}}, "outputFields"),
    ("single", {**GOOD_DONE, "outputFields": {"count": 3}}, "outputFields.count"),
    ("single", {**GOOD_DONE, "typedOutputs": []}, "typedOutputs"),
    ("single", {**GOOD_DONE, "callbackId": "ap-1"}, "callbackId"),
    ("batch", {"inputs": []}, "inputs"),
    ("batch", {}, "inputs"),
    ("batch", {"inputs": [{"callbackId": "ap-1", **GOOD_DONE, "typedOutputs": None}]}, None),
    ("batch", {"inputs": [{"callbackId": 1, **GOOD_DONE}]}, "inputs[0].callbackId"),
    (
        "batch",
        {"inputs": [{"callbackId": "ap-1", "outputFields": {"hs_execution_state": "SUCCESS"}}]},
        "inputs[0].typedOutputs",
    ),
]


@pytest.mark.parametrize(("kind", "body", "field"), CALLBACK_RULES)
def test_a_callback_completion_breaking_a_rule_is_refused(demo, demo_token, kind, body, field):
    path = "/automation/actions/callbacks/2026-09/" + (
        "ap-0-0/complete" if kind == "single" else "complete"
    )
    resp = demo.api("POST", path, demo_token, json=body)
    assert_refused(resp, field or "inputs[0].typedOutputs")


def test_a_well_formed_completion_passes_the_schema(demo, demo_token):
    resp = demo.api(
        "POST", "/automation/actions/callbacks/2026-09/ap-0-0/complete", demo_token, json=GOOD_DONE
    )
    assert resp.status_code == 404  # the shape is fine; the callback is unknown


@pytest.fixture
def enroll_target(demo, portal):
    user = next(u for u in portal.users.values() if u.active and u.seat)
    return user.id, {
        "contactId": next(iter(portal.contacts)),
        "sequenceId": next(iter(portal.sequences)),
        "senderEmail": user.email,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"contactId": 1001}, "contactId"),
        ({"sequenceId": None}, "sequenceId"),
        ({"senderEmail": ...}, "senderEmail"),
        ({"senderAliasAddress": ["a@b.c"]}, "senderAliasAddress"),
        ({"userId": "1"}, "userId"),
    ],
)
def test_an_enrollment_breaking_a_rule_is_refused(demo, demo_token, enroll_target, change, field):
    uid, body = enroll_target
    body = {**body, **change}
    body = {k: v for k, v in body.items() if v is not ...}
    resp = demo.api(
        "POST",
        "/automation/sequences/2026-03/enrollments",
        demo_token,
        params={"userId": uid},
        json=body,
    )
    assert_refused(resp, field)


def test_an_enrollment_without_the_user_query_is_refused(demo, demo_token, enroll_target):
    _, body = enroll_target
    resp = demo.api("POST", "/automation/sequences/2026-03/enrollments", demo_token, json=body)
    assert_refused(resp, "userId")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/automation/sequences/2026-03", {}, "userId"),
        ("/automation/sequences/2026-03", {"userId": "x"}, "userId"),
        ("/automation/sequences/2026-03", {"userId": "1", "limit": "ten"}, "limit"),
        ("/automation/sequences/2026-03/2000001", {}, "userId"),
        ("/crm/v3/owners", {"archived": "maybe"}, "archived"),
        ("/crm/v3/owners", {"limit": "-1"}, "limit"),
        ("/settings/v3/users", {"limit": "many"}, "limit"),
        ("/automation/v4/flows", {"limit": "many"}, "limit"),
    ],
)
def test_a_query_breaking_a_rule_is_refused(demo, demo_token, path, params, field):
    assert_refused(demo.api("GET", path, demo_token, params=params), field)


def test_a_definition_list_query_breaking_a_rule_is_refused(demo, developer):
    url, headers = developer
    assert_refused(demo.http.get(url, headers=headers, params={"archived": "yes"}), "archived")


@pytest.mark.parametrize(
    ("path", "drop", "extra", "field"),
    [
        ("/oauth/2026-09/token", "refresh_token", {}, "refresh_token"),
        ("/oauth/2026-09/token/introspect", "token", {}, "token"),
        (
            "/oauth/2026-09/token/introspect",
            None,
            {"token_type_hint": "id_token"},
            "token_type_hint",
        ),
        ("/oauth/2026-09/token/revoke", "token", {}, "token"),
    ],
)
def test_an_oauth_form_breaking_a_rule_is_refused(demo, path, drop, extra, field):
    form = {
        "client_id": demo.app.client_id,
        "client_secret": demo.app.client_secret,
        "grant_type": "refresh_token",
        "refresh_token": "sbx-rt-x",
        "token": "sbx-at-x",
        **extra,
    }
    if not path.endswith("/token"):
        del form["grant_type"], form["refresh_token"]
    if drop:
        del form[drop]
    assert_refused(demo.http.post(f"{demo.url}{path}", data=form), field)


def test_an_authorization_code_grant_needs_its_redirect_uri(demo):
    code = demo.authorize()["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": demo.app.client_id,
        "client_secret": demo.app.client_secret,
    }
    assert_refused(demo.http.post(f"{demo.url}/oauth/2026-09/token", data=form), "redirect_uri")


def test_every_schema_is_used_by_a_route():
    import pathlib

    import hubspot_sandbox

    folder = pathlib.Path(hubspot_sandbox.__file__).parent
    sources = "".join(p.read_text() for p in folder.glob("*.py") if p.name != "schemas.py")
    assert [n for n in SCHEMAS if f'"{n}"' not in sources] == []
