"""This deployment as a HubSpot developer-platform project (``flask hubspot export-project``).

HubSpot's developer platform defines an app as files uploaded with ``hs project upload``
(developers.hubspot.com/docs/apps/developer-platform/build-apps/app-configuration):

- ``hsproject.json``: the project's name, its source folder and the platform version
  (``2026.03`` is the newest, per .../build-apps/migrate-an-app/migrate-to-2026-03);
- ``src/app/app-hsmeta.json``: the app (``uid``, ``type: "app"`` and, under ``config``, its
  ``name``, ``description``, ``distribution`` and OAuth ``auth``: redirect URLs and scopes);
- ``src/app/workflow-actions/*-hsmeta.json``: one file per custom workflow action, whose
  ``config`` is the action definition (.../add-features/custom-workflow-actions), with
  ``isPublished`` for the API's ``published`` and the clients it appears in.

Everything comes from this deployment's settings, and the action is the very definition that
``publish-action`` sends, so the two ways of installing AutoSeq cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..hubspot import oauth
from . import actions

PLATFORM_VERSION = "2026.03"
PROJECT_NAME = "autoseq"
APP_UID = "autoseq_app"
ACTION_UID = "autoseq_enroll_in_sequence"
ACTION_FILE = "src/app/workflow-actions/enroll-in-sequence-hsmeta.json"
DISTRIBUTIONS = ("marketplace", "private")
APP_DESCRIPTION = (
    "Enroll contacts into HubSpot sales sequences from any workflow: a custom workflow action, "
    "Enroll in sequence, sends from a chosen rep's mailbox or a weighted rotation of mailboxes, "
    "with HubSpot's permissions respected, and a dashboard of every enrollment."
)


def workflow_action(public_base_url: str) -> dict:
    """The action's ``*-hsmeta.json``: ``publish-action``'s definition in the project's shape."""
    definition = actions.build_definition(public_base_url)
    config = {
        "actionUrl": definition.pop("actionUrl"),
        "isPublished": definition.pop("published"),
        "supportedClients": [{"client": "WORKFLOWS"}],
    }
    if not definition.get("functions"):
        definition.pop("functions", None)
    config.update(definition)
    return {"uid": ACTION_UID, "type": "workflow-action", "config": config}


def app_meta(
    config, *, name: str = "AutoSeq", distribution: str = "marketplace", support_email=None
) -> dict:
    """``app-hsmeta.json``: the app, its OAuth redirect URL and the scopes AutoSeq asks for."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
    app_config = {
        "name": name.strip(),
        "description": APP_DESCRIPTION,
        "distribution": distribution,
        "auth": {
            "type": "oauth",
            "redirectUrls": [oauth.redirect_uri(config)],
            "requiredScopes": list(oauth.SCOPES),
            "optionalScopes": list(oauth.OPTIONAL_SCOPES),
            "conditionallyRequiredScopes": [],
        },
    }
    if support_email:
        base = config["PUBLIC_BASE_URL"].rstrip("/")
        app_config["support"] = {
            "supportEmail": support_email,
            "documentationUrl": base,
            "supportUrl": base,
        }
    return {"uid": APP_UID, "type": "app", "config": app_config}


def project_files(config, **app_options) -> dict[str, dict]:
    """Every file of the project, by path relative to the project folder."""
    return {
        "hsproject.json": {
            "name": PROJECT_NAME,
            "srcDir": "src",
            "platformVersion": PLATFORM_VERSION,
        },
        "src/app/app-hsmeta.json": app_meta(config, **app_options),
        ACTION_FILE: workflow_action(config["PUBLIC_BASE_URL"]),
    }


def write_project(directory: Path, files: dict[str, dict]) -> list[Path]:
    """Write ``files`` under ``directory`` (made as needed); the paths written."""
    written = []
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def warnings(config) -> list[str]:
    """What HubSpot will refuse or that cannot work from this configuration."""
    base = config["PUBLIC_BASE_URL"]
    found = []
    if not base.startswith("https://") and "localhost" not in base and "127.0.0.1" not in base:
        found.append(
            f"PUBLIC_BASE_URL is {base}: HubSpot needs https for redirect and action URLs."
        )
    if "localhost" in base or "127.0.0.1" in base:
        found.append(
            f"PUBLIC_BASE_URL is {base}: HubSpot cannot reach it to run the action. Set it to "
            "the address this deployment is served at."
        )
    return found
