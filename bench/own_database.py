"""A PostgreSQL database of a benchmark's own, for one run: a unique name on the server
DATABASE_URL names, created at the start and dropped at the end (never DATABASE_URL's own
database, never a name another run could share). None when DATABASE_URL is not PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import secrets
from urllib.parse import urlsplit


@contextlib.contextmanager
def own_database(prefix: str, keep: bool = False, server: str | None = None):
    """Yield the URL of a new database ``<prefix>_<random>`` on ``server`` (default:
    DATABASE_URL's), or None (SQLite); dropped on exit unless ``keep``."""
    url = server or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield None
        return
    import psycopg

    url = url.replace("postgres://", "postgresql://", 1)
    parts = urlsplit(url)
    server = parts._replace(path="/postgres").geturl()
    name = f"{prefix}_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path="/" + name).geturl()
    finally:
        if keep:
            print(f"   (database {name} kept, not dropped)")
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
