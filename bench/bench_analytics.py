"""Benchmark: the analytics page over 1,000,000 enrollments, against a bare ``SELECT count(*)``.

Fills a database with 1M enrollments over 90 days (500 sequences, 50 workflows, 30 mailboxes) with
``flask demo-data``'s generator, then renders the analytics page through the Flask test client as a
logged-in user (default filters, and a filtered view) and times a bare ``SELECT count(*)`` over the
same table in the same run. Prints each time and the ratio page / count.

SQLite always; PostgreSQL too when ``--postgres URL`` or ``DATABASE_URL`` is given: the script then
creates (and drops at the start) its own database ``autoseq_bench`` on that server: it never
touches the database named in the URL.

    .venv/bin/python bench/bench_analytics.py                      # SQLite only
    .venv/bin/python bench/bench_analytics.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/bench_analytics.py --rows 200000 --reuse  # keep an earlier fill
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from autoseq import create_app  # noqa: E402
from autoseq.commands.demo import generate  # noqa: E402
from autoseq.config import database_url  # noqa: E402
from autoseq.extensions import db  # noqa: E402
from autoseq.models import Enrollment, User, Workspace  # noqa: E402
from autoseq.services import accounts  # noqa: E402

BENCH_DB = "autoseq_bench"
EMAIL, PASSWORD = "bench@example.com", "correct horse battery"


def _pg_bench_url(url: str, reset: bool) -> str:
    """Create (or reset) the ``autoseq_bench`` database next to the one ``url`` names."""
    url = database_url(url, tempfile.gettempdir())
    parts = urlsplit(url)
    admin = create_engine(
        urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB})
        if exists and reset:
            conn.execute(text(f'DROP DATABASE "{BENCH_DB}" WITH (FORCE)'))
            exists = False
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _timed(fn, repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(label: str, url: str, rows: int, reuse: bool, repeat: int) -> dict:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    app = create_app(
        {
            "AUTOSEQ_ENV": "testing",
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        if not reuse:
            db.drop_all()
        db.create_all()
        user = db.session.scalar(select(User).filter_by(email=EMAIL))
        if user is None:
            user = accounts.create_user(EMAIL, PASSWORD)
            accounts.create_workspace(user, "Bench", timezone="America/New_York")
        workspace = db.session.scalar(select(Workspace).order_by(Workspace.id))
        have = db.session.scalar(select(func.count()).select_from(Enrollment))
        if have < rows:
            print(f"[{label}] inserting {rows - have:,} enrollments ...", flush=True)
            result = generate(
                workspace.id,
                days=90,
                count=rows - have,
                sequences=500,
                removed_sequences=20,
                workflows=50,
                mailboxes=30,
                chunk=20_000,
                seed=1,
                with_queued=True,
            )
            print(
                f"[{label}] inserted {result.inserted:,} in {result.seconds:.1f} s "
                f"({result.inserted / result.seconds:,.0f} rows/s)",
                flush=True,
            )
            # Fresh planner statistics, as autovacuum would have them in production.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE" if label == "sqlite" else "VACUUM ANALYZE enrollments"))
        total = db.session.scalar(select(func.count()).select_from(Enrollment))
        popular = db.session.execute(
            select(Enrollment.sequence_id, func.count())
            .where(Enrollment.workspace_id == workspace.id)
            .group_by(Enrollment.sequence_id)
            .order_by(func.count().desc())
            .limit(1)
        ).first()[0]
        workspace_id = workspace.id
        db.session.remove()

    client = app.test_client()
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 302, "login failed"
    base = f"/w/{workspace_id}/analytics/"

    def page(query: str):
        def fetch():
            r = client.get(base + query)
            assert r.status_code == 200 and 'id="stat-total"' in r.get_data(as_text=True), r.status

        return fetch

    def count():
        with app.app_context():
            db.session.execute(text("SELECT count(*) FROM enrollments")).scalar()
            db.session.remove()

    figures = {
        "rows": total,
        "count": _timed(count, repeat),
        "page_default": _timed(page(""), repeat),
        "page_filtered": _timed(page(f"?period=90&sequence={popular}&status=failed"), repeat),
        "page_7_days": _timed(page("?period=7"), repeat),
        "log_page": _timed(lambda: client.get(base + "log?period=90"), repeat),
    }
    with app.app_context():
        db.engine.dispose()
    return figures


def report(label: str, f: dict) -> None:
    print(f"\n== {label}: {f['rows']:,} enrollments")
    print(f"  SELECT count(*)                      {f['count'] * 1000:8.1f} ms")
    for key, name in (
        ("page_default", "analytics page, last 30 days"),
        ("page_filtered", "analytics page, 90 d + sequence + failed"),
        ("page_7_days", "analytics page, last 7 days"),
        ("log_page", "execution log, first page (90 d)"),
    ):
        print(f"  {name:<40} {f[key] * 1000:8.1f} ms   ratio {f[key] / f['count']:6.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--sqlite-path", default=os.path.join(tempfile.gettempdir(), "autoseq_bench.db")
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--reuse", action="store_true", help="keep rows from an earlier run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    results = {}
    if not args.no_sqlite:
        if not args.reuse and os.path.exists(args.sqlite_path):
            os.remove(args.sqlite_path)
        results["sqlite"] = run(
            "sqlite", "sqlite:///" + args.sqlite_path, args.rows, args.reuse, args.repeat
        )
        report("SQLite", results["sqlite"])
    if args.postgres and args.postgres.startswith(("postgres://", "postgresql")):
        url = _pg_bench_url(args.postgres, reset=not args.reuse)
        results["postgresql"] = run("postgresql", url, args.rows, args.reuse, args.repeat)
        report("PostgreSQL", results["postgresql"])
        pg = results["postgresql"]
        verdict = pg["page_default"] < 0.5 and pg["page_default"] / pg["count"] <= 10
        outcome = "met" if verdict else "NOT met"
        print(f"\nPostgreSQL aim (page < 0.5 s and within 10x of count): {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
