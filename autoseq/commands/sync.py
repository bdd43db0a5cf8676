"""``flask sync``: request (or run in place) the sync of one workspace or of all connected ones."""

from __future__ import annotations

import click
from flask import Flask

from ..extensions import db
from ..models import ConnectionStatus, HubSpotConnection, SyncTrigger, Workspace
from ..services import sync as sync_service


@click.command("sync")
@click.option("--workspace", "workspace_id", type=int, help="The workspace to sync.")
@click.option("--all", "all_", is_flag=True, help="Every workspace connected to HubSpot.")
@click.option("--inline", is_flag=True, help="Run here and wait, instead of queueing for a worker.")
def sync_command(workspace_id: int | None, all_: bool, inline: bool) -> None:
    """Sync sequences, users and mailboxes from HubSpot."""
    if bool(workspace_id) == all_:
        raise click.UsageError("give either --workspace ID or --all")
    if all_:
        ids = list(
            db.session.scalars(
                db.select(HubSpotConnection.workspace_id)
                .filter_by(status=ConnectionStatus.CONNECTED.value)
                .order_by(HubSpotConnection.workspace_id)
            )
        )
    else:
        if db.session.get(Workspace, workspace_id) is None:
            raise click.BadParameter(f"no workspace {workspace_id}", param_hint="--workspace")
        ids = [workspace_id]
    for ws in ids:
        if inline:
            run = sync_service.run_sync(ws, trigger=SyncTrigger.CLI)
            if run is None:
                click.echo(f"workspace {ws}: skipped, a sync is running")
                continue
            click.echo(
                f"workspace {ws}: run {run.id} {run.status} (+{run.added} ~{run.updated} "
                f"-{run.removed}, {run.users} users){' ' + run.error if run.error else ''}"
            )
        else:
            run = sync_service.request_sync(ws, SyncTrigger.CLI)
            click.echo(f"workspace {ws}: run {run.id} {run.status} (job {run.job_id})")
    if not ids:
        click.echo("no connected workspace")


def register_cli(app: Flask) -> None:
    app.cli.add_command(sync_command)
