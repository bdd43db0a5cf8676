"""The action definition HubSpot will accept, judged by HubSpot's own artefacts, not our sandbox.

The definition is taken exactly as ``flask hubspot publish-action --show`` prints it (the body
``publish-action`` sends) and checked:

- by the official ``hubspot-api-client`` models (``hubspot.automation.actions.models``), which
  validate required fields and enums when they are built;
- by the rules those models leave loose, written from HubSpot's
  ``hubspot-automation-actions-v4-openapi.json`` (version 2026-09): the dependency types and their
  required fields, the ``type``/``fieldType`` pairs, ``supportedValueTypes`` on inputs only,
  every input and output named in ``labels.en``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hubspot.automation.actions import ApiClient, Configuration
from hubspot.automation.actions.models import PublicActionDefinitionEgg

from autoseq.services import actions as action_service

# PublicInputFieldDefinition.supportedValueTypes (2026-09)
VALUE_TYPES = {"STATIC_VALUE", "OBJECT_PROPERTY"}
# PublicSingleFieldDependency | PublicConditionalSingleFieldDependency, with their required fields
DEPENDENCY_REQUIRED = {
    "SINGLE_FIELD": {"dependencyType", "controllingFieldName", "dependentFieldNames"},
    "CONDITIONAL_SINGLE_FIELD": {
        "dependencyType",
        "controllingFieldName",
        "controllingFieldValue",
        "dependentFieldNames",
    },
}
# Which fieldType may render which type (HubSpot's property field types: an enumeration is a
# select, radio, checkbox or booleancheckbox; a string a text, textarea, html, phonenumber, file).
FIELD_TYPES = {
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "string": {"text", "textarea", "html", "phonenumber", "file"},
    "number": {"number", "calculation_equation"},
    "bool": {"booleancheckbox"},
    "date": {"date"},
    "datetime": {"date"},
    "phone_number": {"phonenumber"},
}


def official(definition: dict) -> PublicActionDefinitionEgg:
    """Build the SDK model from JSON with its client-side validation on (off by default)."""
    configuration = Configuration()
    configuration.client_side_validation = True
    response = SimpleNamespace(data=json.dumps(definition))
    return ApiClient(configuration=configuration).deserialize(response, "PublicActionDefinitionEgg")


@pytest.fixture
def shown(app, runner, monkeypatch) -> dict:
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://autoseq.example.com")
    result = runner.invoke(args=["hubspot", "publish-action", "--show"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_show_prints_the_body_publish_action_sends(app, shown):
    assert shown == action_service.build_definition("https://autoseq.example.com")


def test_the_official_models_accept_the_definition(shown):
    model = official(shown)
    assert isinstance(model, PublicActionDefinitionEgg)
    assert [f.type_definition.name for f in model.input_fields] == [
        "sequence",
        "send_from",
        "mailbox",
        "rotation",
        "contacts_to_enroll",
        "max_contacts",
        "association_label",
        "when_already_enrolled",
        "max_wait_days",
    ]
    assert len(model.output_fields) == 7 and len(model.input_field_dependencies) == 5
    assert model.object_request_options.properties[:3] == ["firstname", "lastname", "email"]
    assert model.object_types == ["CONTACT", "DEAL", "COMPANY", "TICKET"]


def test_the_official_models_refuse_what_hubspot_refuses(shown):
    """The judge can fail: the old dependency type, or a field the models require, is refused."""
    broken = json.loads(json.dumps(shown))
    broken["inputFieldDependencies"][0]["dependencyType"] = "CONDITIONAL"
    with pytest.raises(ValueError, match="dependency_type"):
        official(broken)
    broken = json.loads(json.dumps(shown))
    del broken["outputFields"][0]["typeDefinition"]["externalOptions"]
    with pytest.raises(ValueError, match="external_options"):
        official(broken)


def test_dependencies_use_hubspots_two_types_with_their_fields(shown):
    names = {f["typeDefinition"]["name"] for f in shown["inputFields"]}
    for dependency in shown["inputFieldDependencies"]:
        kind = dependency["dependencyType"]
        assert kind in DEPENDENCY_REQUIRED
        assert set(dependency) == DEPENDENCY_REQUIRED[kind]
        assert dependency["controllingFieldName"] in names
        assert set(dependency["dependentFieldNames"]) <= names


def test_type_and_field_type_pairs_are_ones_hubspot_renders(shown):
    for field in shown["inputFields"] + shown["outputFields"]:
        td = field["typeDefinition"]
        assert td["fieldType"] in FIELD_TYPES[td["type"]], td["name"]
        if td["type"] == "enumeration" and not td.get("optionsUrl"):
            assert td["options"], f"{td['name']}: a dropdown needs options or an optionsUrl"


def test_supported_value_types_only_on_inputs(shown):
    for field in shown["inputFields"]:
        assert set(field["supportedValueTypes"]) <= VALUE_TYPES
        assert isinstance(field["isRequired"], bool)
    for field in shown["outputFields"]:
        assert set(field) == {"typeDefinition"}  # OutputFieldDefinition has nothing else
        required = {"externalOptions", "name", "options", "schema", "type", "useChirp"}
        assert required <= set(field["typeDefinition"])  # FieldTypeDefinition (2026-09)


def test_every_input_and_output_is_labelled(shown):
    labels = shown["labels"]["en"]
    inputs = [f["typeDefinition"]["name"] for f in shown["inputFields"]]
    outputs = [f["typeDefinition"]["name"] for f in shown["outputFields"]]
    assert set(labels["inputFieldLabels"]) == set(inputs)
    assert set(labels["outputFieldLabels"]) == set(outputs)
    assert all(labels["inputFieldLabels"][n] for n in inputs)
    assert all(labels["outputFieldLabels"][n] for n in outputs)
    assert set(labels["executionRules"]) == {r["labelName"] for r in shown["executionRules"]}


def test_the_contact_name_and_email_come_with_each_execution(shown):
    properties = shown["objectRequestOptions"]["properties"]
    assert properties[:3] == ["firstname", "lastname", "email"]
    assert {"dealname", "name", "subject"} <= set(properties)  # a record workflow's record
