"""The action's whole life with HubSpot's retired paths refused by the sandbox (410): sync,
publish, a workflow execution enrolled and completed through a callback, a token refresh.
Nothing may still call ``/oauth/v1/`` or the v4 sequences/actions paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from autoseq.extensions import db
from autoseq.models import HubSpotConnection
from autoseq.services import actions as action_service
from autoseq.services.connections import for_workspace


@pytest.fixture
def retired_refused(action_sandbox):
    """The sandbox answers 410 to every legacy path from the start (before ``world``)."""
    action_sandbox.state.refuse_legacy = True
    return action_sandbox.state


def test_the_sandbox_really_refuses_the_retired_paths(retired_refused, action_sandbox):
    for method, path in (
        ("POST", "/oauth/v1/token"),
        ("GET", "/oauth/v1/access-tokens/x"),
        ("GET", "/automation/v4/sequences"),
        ("POST", f"/automation/v4/actions/{retired_refused.app.app_id}"),
        ("POST", "/automation/v4/actions/callbacks/complete"),
    ):
        resp = requests.request(method, action_sandbox.url + path, timeout=5)
        assert resp.status_code == 410, path
        assert resp.json()["subCategory"] == "RETIRED_API_VERSION"
    assert len(retired_refused.legacy_calls) == 5


def test_the_whole_action_flow_uses_only_current_paths(retired_refused, world, run_jobs, app):
    # ``world`` already synced and published with the legacy paths refused.
    assert world.definition_id
    republished = action_service.publish_action(app.config)
    assert republished.created is False
    contact = world.contacts(1)[0]
    [cb] = world.fire([contact], world.direct("team", "bob@acme.test"))
    run_jobs()
    assert world.outputs(cb)["hs_execution_state"] == "SUCCESS"
    assert [e["contactId"] for e in world.admin.enrollments()] == [contact]
    # An expired access token is refreshed on the dated token endpoint.
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=world.workspace_id)
    )
    connection.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    with for_workspace(world.workspace_id) as client:
        assert list(client.iter_sequences(world.users["ada"].id))
    assert retired_refused.legacy_calls == {}


def test_publishing_with_only_the_developer_key_takes_the_legacy_path(world, app):
    """Without a developer token, the legacy path is the only one the key opens (and it is
    counted as legacy by the sandbox)."""
    app.config["HUBSPOT_DEVELOPER_TOKEN"] = None
    result = action_service.publish_action(app.config)
    assert result.definition_id == world.definition_id
    calls = world.sandbox.state.legacy_calls
    assert any(k.startswith("PATCH /automation/v4/actions/") for k in calls), calls


def test_nothing_in_the_app_names_the_sunset_oauth_endpoints():
    import pathlib

    import autoseq

    root = pathlib.Path(autoseq.__file__).parent
    hits = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in (".py", ".html", ".js") and "/oauth/v1/" in p.read_text(errors="ignore")
    ]
    assert hits == []
