"""``flask hubspot ...``: HubSpot app administration (publishing the workflow action)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from ..services import actions, project, tokens

hubspot_cli = AppGroup("hubspot", help="HubSpot app administration.")


@hubspot_cli.command("publish-action")
@click.option("--show", is_flag=True, help="Print the definition instead of publishing it.")
def publish_action(show: bool) -> None:
    """Create or update the *Enroll in sequence* action definition of HUBSPOT_APP_ID."""
    if show:
        definition = actions.build_definition(current_app.config["PUBLIC_BASE_URL"])
        click.echo(json.dumps(definition, indent=2))
        return
    try:
        result = actions.publish_action(current_app.config)
    except actions.PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "Created" if result.created else "Updated"
    click.echo(
        f"{verb} action definition {result.definition_id} (revision {result.revision}) "
        f"for app {current_app.config['HUBSPOT_APP_ID']}: {result.action_url}"
    )


@hubspot_cli.command("export-project")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="AutoSeq", show_default=True, help="The app's name in HubSpot.")
@click.option(
    "--distribution",
    type=click.Choice(project.DISTRIBUTIONS),
    default="marketplace",
    show_default=True,
    help="marketplace: any portal may install it; private: only portals you allow.",
)
@click.option("--support-email", default=None, help="Shown to installing users.")
def export_project(directory: Path, name: str, distribution: str, support_email) -> None:
    """Write this deployment as a HubSpot project, ready for ``hs project upload``.

    The OAuth redirect URL and the action and options URLs come from PUBLIC_BASE_URL; the
    workflow action is the definition ``publish-action`` sends.
    """
    config = current_app.config
    if not name.strip() or len(name.strip()) > 200:
        raise click.BadParameter("give a name of 1 to 200 characters", param_hint="--name")
    files = project.project_files(
        config, name=name, distribution=distribution, support_email=support_email
    )
    for path in project.write_project(directory, files):
        click.echo(f"wrote {path}")
    for warning in project.warnings(config):
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"Next: cd {directory} && hs project upload (HubSpot CLI), then copy the app's client id, "
        "client secret and app id into HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET, HUBSPOT_APP_ID."
    )


@hubspot_cli.command("rotate-token-keys")
def rotate_token_keys() -> None:
    """Re-encrypt every stored HubSpot token under the first TOKEN_ENCRYPTION_KEY."""
    report = tokens.rotate_all()
    click.echo(f"Re-encrypted {report.rotated} connection(s) under the first key.")
    click.echo(f"{report.under_old_keys} connection(s) remain under old keys.")
    if report.unreadable:
        ids = ", ".join(str(i) for i in report.unreadable)
        raise click.ClickException(
            f"no configured key can read the tokens of connection(s) {ids}: "
            "they were left as they are (reconnect those workspaces)"
        )


def register_cli(app: Flask) -> None:
    app.cli.add_command(hubspot_cli)
