"""Publishing the action definition: complete, idempotent, recorded, shown in Settings."""

from __future__ import annotations

from autoseq.models import PublishedAction
from autoseq.services import actions as action_service


def _definitions(world) -> list[dict]:
    return world.admin.call("GET", "/definitions")["results"]


def test_the_published_definition_has_the_contracted_shape(world):
    [definition] = _definitions(world)
    assert definition["id"] == world.definition_id
    assert definition["objectTypes"] == ["CONTACT", "DEAL", "COMPANY", "TICKET"]
    assert definition["actionUrl"] == world.url + "/hubspot/actions/enroll"
    fields = {f["typeDefinition"]["name"]: f["typeDefinition"] for f in definition["inputFields"]}
    assert set(fields) == {
        "sequence",
        "send_from",
        "mailbox",
        "rotation",
        "contacts_to_enroll",
        "max_contacts",
        "association_label",
        "when_already_enrolled",
        "max_wait_days",
    }
    for name in ("sequence", "mailbox", "rotation", "association_label"):
        assert fields[name]["optionsUrl"] == world.url + "/hubspot/actions/options"
        assert (fields[name]["type"], fields[name]["fieldType"]) == ("enumeration", "select")
    assert [o["value"] for o in fields["send_from"]["options"]] == ["mailbox", "rotation"]
    assert [o["value"] for o in fields["when_already_enrolled"]["options"]] == ["skip", "wait"]
    dependencies = definition["inputFieldDependencies"]
    assert {(d["controllingFieldName"], d["controllingFieldValue"]) for d in dependencies} == {
        ("send_from", "mailbox"),
        ("send_from", "rotation"),
        ("contacts_to_enroll", "all"),
        ("contacts_to_enroll", "label"),
        ("when_already_enrolled", "wait"),
    }
    assert all(d["dependencyType"] == "CONDITIONAL_SINGLE_FIELD" for d in dependencies)
    outputs = [f["typeDefinition"]["name"] for f in definition["outputFields"]]
    assert outputs == [
        "enrollment_status",
        "failure_reason",
        "sender_email",
        "sequence_name",
        "enrolled_count",
        "skipped_count",
        "failed_count",
    ]
    labels = definition["labels"]["en"]
    rules = {r["labelName"]: r["conditions"] for r in definition["executionRules"]}
    outcomes = ("enrolled", "already_enrolled", "failed")
    assert rules == {o: {"enrollment_status": o} for o in outcomes}
    assert set(labels["executionRules"]) == set(rules)
    assert "{{ failure_reason }}" in labels["executionRules"]["failed"]


def test_publishing_again_updates_the_same_definition(world, app):
    again = action_service.publish_action(app.config)
    assert (again.created, again.definition_id) == (False, world.definition_id)
    assert [d["id"] for d in _definitions(world)] == [world.definition_id]
    assert _definitions(world)[0]["revisionId"] == "2"
    record = PublishedAction.query.one()
    assert (record.definition_id, record.revision) == (world.definition_id, "2")


def test_publishing_finds_our_definition_even_without_a_local_record(world, app):
    PublishedAction.query.delete()
    result = action_service.publish_action(app.config)
    assert result.created is False and result.definition_id == world.definition_id


def test_the_cli_command_publishes(world, runner):
    result = runner.invoke(args=["hubspot", "publish-action"])
    assert result.exit_code == 0, result.output
    assert f"Updated action definition {world.definition_id}" in result.output


def test_the_cli_command_explains_missing_settings(world, runner, app):
    app.config["HUBSPOT_DEVELOPER_API_KEY"] = None
    app.config["HUBSPOT_DEVELOPER_TOKEN"] = None
    result = runner.invoke(args=["hubspot", "publish-action"])
    assert result.exit_code != 0 and "HUBSPOT_DEVELOPER_TOKEN" in result.output


def test_a_wrong_developer_token_is_reported(world, runner, app):
    app.config["HUBSPOT_DEVELOPER_TOKEN"] = "wrong"
    result = runner.invoke(args=["hubspot", "publish-action"])
    assert result.exit_code != 0 and "401" in result.output


def test_a_wrong_developer_key_is_reported(world, runner, app):
    app.config["HUBSPOT_DEVELOPER_TOKEN"] = None
    app.config["HUBSPOT_DEVELOPER_API_KEY"] = "wrong"
    result = runner.invoke(args=["hubspot", "publish-action"])
    assert result.exit_code != 0 and "401" in result.output


def test_publishing_goes_through_the_transport_and_keeps_secrets_out_of_logs(world, app, caplog):
    caplog.set_level("DEBUG")
    caplog.set_level("DEBUG", logger="urllib3")  # whatever level an earlier test left on it
    app.config["HUBSPOT_DEVELOPER_TOKEN"] = None  # the legacy path puts the key in the URL
    action_service.publish_action(app.config)
    assert "hapikey=***" in caplog.text
    assert app.config["HUBSPOT_DEVELOPER_API_KEY"] not in caplog.text


def test_the_status_partial_shows_the_publication(world, app):
    from flask import render_template

    with app.test_request_context():
        html = render_template("actions/_status.html")
    assert "Published" in html and world.definition_id in html
    assert world.url + "/hubspot/actions/enroll" in html


def test_the_status_partial_says_when_not_published(app):
    from flask import render_template

    with app.test_request_context():
        html = render_template("actions/_status.html", published_action=None)
    assert "Not published" in html and "flask hubspot publish-action" in html


def test_settings_hubspot_page_includes_the_action_status(world, logged_in):
    page = logged_in.get(f"/w/{world.workspace_id}/settings/hubspot/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Workflow action" in html and world.definition_id in html
