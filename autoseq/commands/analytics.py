"""``flask analytics rebuild``: recount the analytics rollups from the enrollment rows.

Needed only after writing enrollments past the ORM (COPY, Core inserts, SQL by hand): every ORM
write keeps the rollups itself (services/analytics/rollups.py).
"""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import AppGroup

from ..extensions import db
from ..models import Workspace
from ..services.analytics import rollups

analytics_cli = AppGroup("analytics", help="Analytics rollups.")


@analytics_cli.command("rebuild")
@click.option("--workspace", "workspace_id", type=int, default=None, help="Only this workspace.")
def rebuild_command(workspace_id: int | None) -> None:
    """Recount the rollups of one workspace (or of every workspace with enrollments)."""
    started = time.perf_counter()
    if workspace_id is not None:
        if db.session.get(Workspace, workspace_id) is None:
            raise click.ClickException(f"no workspace with id {workspace_id}")
        written = {workspace_id: rollups.rebuild(workspace_id)}
    else:
        written = rollups.rebuild_all()
    for ws, rows in written.items():
        click.echo(f"workspace {ws}: {rows:,} rollup rows")
    click.echo(f"rebuilt {len(written)} workspace(s) in {time.perf_counter() - started:.1f} s")


def register_cli(app: Flask) -> None:
    app.cli.add_command(analytics_cli)
