"""``flask`` commands for scripts and first deployments."""

from __future__ import annotations

import importlib

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import User
from .services import accounts

users_cli = AppGroup("users", help="Manage AutoSeq accounts.")


@users_cli.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="AUTOSEQ_NEW_USER_PASSWORD",
    help="Prompted for when not given (or read from AUTOSEQ_NEW_USER_PASSWORD).",
)
@click.option(
    "--workspace", default=None, help="Also create a workspace of this name, owned by them."
)
def users_create(email: str, name: str, password: str, workspace: str | None) -> None:
    """Create a user (and optionally their workspace)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise click.BadParameter("not an email address", param_hint="EMAIL")
    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    if db.session.scalar(db.select(User).filter_by(email=email)):
        raise click.ClickException(f"a user with email {email} exists already")
    try:
        user = accounts.create_user(email, password, name, verified=True)
    except IntegrityError as exc:
        db.session.rollback()
        raise click.ClickException(f"a user with email {email} exists already") from exc
    click.echo(f"Created user {user.id} <{user.email}>")
    if workspace:
        ws = accounts.create_workspace(user, workspace)
        click.echo(f"Created workspace {ws.id} “{ws.name}”")


def register_cli(app: Flask) -> None:
    app.cli.add_command(users_cli)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a broken import inside an existing module must be loud
                raise
            continue
        module.register_cli(app)


# Each area keeps its commands in its own module, with a ``register_cli(app)`` function.
COMMAND_MODULES = (
    "autoseq.jobs.schedule",
    "autoseq.commands.hubspot",
    "autoseq.commands.sync",
    "autoseq.commands.demo",
    "autoseq.commands.analytics",
)
