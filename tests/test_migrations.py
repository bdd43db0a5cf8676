"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_upgrade_from_empty_matches_models(tmp_path):
    env = dict(os.environ, AUTOSEQ_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path}/m.db")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]
    upgrade = subprocess.run([*flask, "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    check = subprocess.run([*flask, "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def _insert(conn, table, **values) -> int:
    """Insert one row into a reflected ``table``: ``values``, and a plain value for every other
    column the schema requires (the models' Python-side defaults are not in the schema)."""
    import datetime as dt

    import sqlalchemy as sa

    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key:
            continue
        if column.server_default is not None:
            continue
        kind = column.type
        if isinstance(kind, sa.Boolean):
            values[column.name] = False
        elif isinstance(kind, sa.Integer):
            values[column.name] = 0
        elif isinstance(kind, sa.DateTime):
            values[column.name] = dt.datetime(2026, 1, 1)
        elif isinstance(kind, sa.Date):
            values[column.name] = dt.date(2026, 1, 1)
        elif isinstance(kind, sa.JSON):
            values[column.name] = []
        else:
            values[column.name] = "x"
    return conn.execute(table.insert().values(**values)).inserted_primary_key[0]


def test_disconnect_reasons_move_from_redis_into_their_column(tmp_path, app, redis):
    """0007 copies each mailbox's reason from Redis (no expiry there) into mailboxes."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/m.db"
    env = dict(
        os.environ, AUTOSEQ_ENV="development", DATABASE_URL=url, REDIS_URL=app.config["REDIS_URL"]
    )
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]
    before = subprocess.run(
        [*flask, "upgrade", "0006_pages_names"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert before.returncode == 0, before.stderr
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine, only=["workspaces", "hubspot_users", "mailboxes"])
    with engine.begin() as conn:
        workspace = _insert(conn, meta.tables["workspaces"], name="Acme")
        user = _insert(conn, meta.tables["hubspot_users"], workspace_id=workspace, email="j@x.com")
        mailboxes = meta.tables["mailboxes"]
        gone, fine = (
            _insert(conn, mailboxes, workspace_id=workspace, hubspot_user_id=user, email=email)
            for email in ("gone@x.com", "fine@x.com")
        )
    redis.set(f"autoseq:senders:disconnect-reason:{gone}", "User 7 has no connected inboxes")
    after = subprocess.run([*flask, "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, disconnect_reason FROM mailboxes")).all())
    engine.dispose()
    assert rows == {gone: "User 7 has no connected inboxes", fine: None}


def test_status_takes_the_outcome_and_gives_it_back(tmp_path):
    """0013: ``outcome`` folds into ``status`` (enrollments and record executions) and comes
    back out on downgrade."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/m.db"
    env = dict(os.environ, AUTOSEQ_ENV="development", DATABASE_URL=url)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]

    def migrate(*args):
        done = subprocess.run([*flask, *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    migrate("upgrade", "0012_waiting")
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine, only=["workspaces", "enrollments", "record_executions"])
    before = {
        "queued": ("queued", None),
        "enrolled": ("enrolled", "enrolled"),
        "skipped": ("failed", "already_enrolled"),
        "failed": ("failed", "failed"),
    }
    executions = {
        "waiting": ("expanded", None),
        "ok": ("finished", "enrolled"),
        "skip": ("finished", "already_enrolled"),
        "bad": ("finished", "failed"),
    }
    with engine.begin() as conn:
        ws = _insert(conn, meta.tables["workspaces"], name="Acme")
        for cb, (status, outcome) in before.items():
            _insert(
                conn,
                meta.tables["enrollments"],
                workspace_id=ws,
                callback_id=cb,
                status=status,
                outcome=outcome,
            )
        for cb, (status, outcome) in executions.items():
            _insert(
                conn,
                meta.tables["record_executions"],
                workspace_id=ws,
                callback_id=cb,
                status=status,
                outcome=outcome,
            )

    def read(name, *columns):
        table = sa.Table(name, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.callback_id, *(table.c[c] for c in columns)))
            return {r[0]: tuple(r[1:]) for r in rows}

    migrate("upgrade")
    assert read("enrollments", "status") == {
        "queued": ("queued",),
        "enrolled": ("enrolled",),
        "skipped": ("already_enrolled",),
        "failed": ("failed",),
    }
    assert read("record_executions", "status") == {
        "waiting": ("expanded",),
        "ok": ("enrolled",),
        "skip": ("already_enrolled",),
        "bad": ("failed",),
    }
    migrate("downgrade", "0012_waiting")
    assert read("enrollments", "status", "outcome") == before
    assert read("record_executions", "status", "outcome") == executions
    engine.dispose()
