"""Deploying: the HubSpot project export and the Heroku-style manifest (app.json).

The project's shape is HubSpot's app-configuration page
(developers.hubspot.com/docs/apps/developer-platform/build-apps/app-configuration) and its custom
workflow action page (.../add-features/custom-workflow-actions); app.json's is Heroku's app.json
schema (devcenter.heroku.com/articles/app-json-schema).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from autoseq import redis_tls
from autoseq.config import load
from autoseq.hubspot import oauth
from autoseq.services import actions, project

ROOT = Path(__file__).resolve().parent.parent
UID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@pytest.fixture
def exported(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://autoseq.example.com")
    result = app.test_cli_runner().invoke(
        args=["hubspot", "export-project", str(tmp_path / "hs"), "--support-email", "a@b.co"]
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "hs"
    return {str(p.relative_to(root)): json.loads(p.read_text()) for p in root.rglob("*.json")}


def test_export_project_writes_the_files_hubspot_builds_an_app_from(exported):
    assert set(exported) == {
        "hsproject.json",
        "src/app/app-hsmeta.json",
        "src/app/workflow-actions/enroll-in-sequence-hsmeta.json",
    }
    assert exported["hsproject.json"] == {
        "name": "autoseq",
        "srcDir": "src",
        "platformVersion": project.PLATFORM_VERSION,
    }


def test_the_app_file_has_every_field_hubspot_requires_from_our_settings(exported):
    app_file = exported["src/app/app-hsmeta.json"]
    assert UID.match(app_file["uid"]) and app_file["type"] == "app"  # type = parent folder
    config = app_file["config"]
    assert config["name"] == config["name"].strip() and 0 < len(config["name"]) <= 200
    assert 0 < len(config["description"]) <= 8192
    assert config["distribution"] in ("marketplace", "private")
    auth = config["auth"]
    assert auth["type"] == "oauth"
    assert auth["redirectUrls"] == ["https://autoseq.example.com/hubspot/oauth/callback"]
    assert auth["requiredScopes"] == list(oauth.SCOPES) and "oauth" in auth["requiredScopes"]
    assert config["support"]["supportEmail"] == "a@b.co"


def test_the_workflow_action_file_is_the_definition_publish_action_sends(exported):
    action = exported["src/app/workflow-actions/enroll-in-sequence-hsmeta.json"]
    assert action["type"] == "workflow-action" and UID.match(action["uid"])
    assert action["uid"] != exported["src/app/app-hsmeta.json"]["uid"]
    config = action["config"]
    assert config["actionUrl"] == "https://autoseq.example.com" + actions.ENROLL_PATH
    assert config["isPublished"] is True and "published" not in config
    assert config["supportedClients"] == [{"client": "WORKFLOWS"}]
    definition = actions.build_definition("https://autoseq.example.com")
    for key in ("inputFields", "outputFields", "labels", "objectTypes", "inputFieldDependencies"):
        assert config[key] == definition[key]
    options_urls = {f["typeDefinition"].get("optionsUrl") for f in config["inputFields"]} - {None}
    assert options_urls == {"https://autoseq.example.com" + actions.OPTIONS_PATH}


def test_export_project_warns_when_hubspot_could_not_reach_this_deployment(
    app, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "http://localhost:5000")
    result = app.test_cli_runner().invoke(args=["hubspot", "export-project", str(tmp_path)])
    assert result.exit_code == 0
    assert "HubSpot cannot reach it" in result.output
    bad = app.test_cli_runner().invoke(
        args=["hubspot", "export-project", str(tmp_path), "--distribution", "everyone"]
    )
    assert bad.exit_code != 0 and "distribution" in bad.output


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_app_json_provisions_what_the_processes_and_settings_need():
    manifest = json.loads((ROOT / "app.json").read_text())
    allowed = {
        "name", "description", "keywords", "website", "repository", "logo", "success_url",
        "scripts", "env", "formation", "addons", "buildpacks", "environments", "stack", "image",
    }  # fmt: skip
    assert set(manifest) <= allowed
    processes = _procfile()
    assert "db upgrade" in processes["release"]  # the release phase migrates before each deploy
    assert set(manifest["formation"]) == set(processes) - {"release"}
    plans = {a["plan"] if isinstance(a, dict) else a for a in manifest["addons"]}
    assert {"heroku-postgresql", "heroku-redis"} <= plans
    env = manifest["env"]
    assert env["SECRET_KEY"]["generator"] == "secret"
    assert env["TOKEN_ENCRYPTION_KEY"]["generator"] == "secret"
    for name in ("PUBLIC_BASE_URL", "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_APP_ID"):
        assert env[name]["description"]  # asked for at deploy time, or set after it


def test_the_settings_app_json_gives_load_in_production(tmp_path):
    """As the platform sets them: generated secrets, add-on URLs, the values the user types."""
    manifest = json.loads((ROOT / "app.json").read_text())
    environ = {
        "DATABASE_URL": "postgres://u:p@db.example.com:5432/d",
        "REDIS_URL": "rediss://:p@redis.example.com:6380",
    }
    for name, spec in manifest["env"].items():
        if spec.get("generator") == "secret":
            environ[name] = secrets.token_hex(32)  # what Heroku's generator gives
        elif "value" in spec:
            environ[name] = spec["value"]
        else:
            environ[name] = "https://autoseq.example.com" if name.endswith("URL") else "x"
    settings = load(str(tmp_path), environ)
    assert settings["AUTOSEQ_ENV"] == "production"
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    Fernet(settings["TOKEN_ENCRYPTION_KEYS"][0])
    assert redis_tls(settings) == {"ssl_cert_reqs": "none"}
    assert redis_tls({**settings, "REDIS_TLS_VERIFY": True}) == {}


def test_enrollment_workers_never_wait_behind_a_sync():
    import importlib.util

    spec = importlib.util.spec_from_file_location("worker_main", ROOT / "worker.py")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    processes = _procfile()
    assert processes["worker"].split()[-1] == "enrollments"
    assert processes["syncworker"].split()[-1] == "sync"
    assert worker.queue_names(["enrollments"]) == ["enrollments"]
    assert worker.queue_names(["sync"]) == ["sync", "default"]
    assert set(worker.queue_names([])) == {"enrollments", "sync", "default"}
    with pytest.raises(SystemExit):
        worker.queue_names(["everything"])
