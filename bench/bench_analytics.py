"""Benchmark: the analytics page at 1,000,000 and 10,000,000 enrollments on PostgreSQL.

For each size the script creates a database of its own on the server ``DATABASE_URL`` (or
``--postgres``) names, ``bench_analytics_<size>_<random>``, and drops it at the end (it never
touches another database). Rows are made by the server
(``generate_series``: 500 sequences with a few popular ones, 50 workflows, 30 mailboxes, 3
rotations, 85% enrolled, 12% failed with HubSpot's reasons, a few recent ones queued, spread over
90 days), then the rollups are built with the product's own rebuild (``rollups.rebuild``, as
``flask analytics rebuild`` does).

Each page is fetched through the Flask test client as a logged-in user: its status must be 200,
its "Enrollments" figure must equal a ``count(*)`` over the same filters computed here from the
rows, and the log page must list a full page of rows. Then the median of ``--repeat`` fetches is
printed in ms and as a ratio against a bare ``SELECT count(*) FROM enrollments`` timed in the same
run, with the load average (1 min) beside each figure.

    .venv/bin/python bench/bench_analytics.py                    # 1M and 10M (DATABASE_URL)
    .venv/bin/python bench/bench_analytics.py --sizes 1000000 --keep   # keep the database
    .venv/bin/python bench/bench_analytics.py --reuse bench_analytics_1000000_ab12cd  # reuse it
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from own_database import own_database  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from autoseq import create_app  # noqa: E402
from autoseq.commands.demo import FAILURES, generate  # noqa: E402
from autoseq.config import database_url  # noqa: E402
from autoseq.extensions import db  # noqa: E402
from autoseq.models import Enrollment, Mailbox, Rotation, Sequence, User, Workspace  # noqa: E402
from autoseq.services import accounts, analytics  # noqa: E402
from autoseq.services.analytics import rollups  # noqa: E402

PREFIX = "bench_analytics_"
EMAIL, PASSWORD = "bench@example.com", "correct horse battery"
WORKFLOWS = 50
_TOTAL_RE = re.compile(r'id="stat-total"><span class="label">Enrollments</span><strong>([0-9,]+)<')


def load() -> float:
    return os.getloadavg()[0]


def _reused(url: str, name: str) -> str:
    """The URL of a database kept by an earlier run (``--keep``); never another database."""
    if not name.startswith(PREFIX):
        raise SystemExit(f"refusing database {name!r}: this script only uses {PREFIX}*")
    parts = urlsplit(url)
    admin = create_engine(
        urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    admin.dispose()
    if not exists:
        raise SystemExit(f"no database {name} to reuse")
    return urlunsplit(parts._replace(path=f"/{name}"))


# The rows, made by the server: a few popular sequences and workflows, a long tail (power law on
# the index), created_at increasing with the series so the indexes grow at their ends.
FILL = """
INSERT INTO enrollments (workspace_id, callback_id, portal_id, workflow_id, contact_id,
    sequence_id, sequence_hubspot_id, sequence_name, send_mode, rotation_id, mailbox_id,
    sender_email, input_fields, status, failure_code, failure_reason, attempts,
    created_at, updated_at, finished_at)
SELECT :ws, 'bench-' || g, 40000000, wf[1 + floor(:nwf * power(r2, 2.2))::int], (1000 + g)::text,
    s.id, s.hubspot_id, s.name, CASE WHEN rot THEN 'rotation' ELSE 'mailbox' END,
    CASE WHEN rot THEN rots[1 + floor(r4 * array_length(rots, 1))::int] END, m.id, m.email, '{}',
    st,
    CASE WHEN st = 'failed' THEN codes[1 + floor(r5 * array_length(codes, 1))::int] END,
    CASE WHEN st = 'failed' THEN 'Refused by HubSpot' END,
    CASE WHEN st = 'queued' THEN 0 ELSE 1 END, created, created,
    CASE WHEN st = 'queued' THEN NULL ELSE created + interval '5 seconds' END
FROM (
    SELECT *, CASE
        WHEN created > now() - interval '20 minutes' AND r3 < 0.5 THEN 'queued'
        WHEN r3 < 0.12 THEN 'failed' ELSE 'enrolled' END AS st
    FROM (
        SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
            random() AS r5, random() AS r6, random() < 0.3 AS rot,
            now() - interval '90 days' + (g + random()) * (interval '90 days' / :n) AS created
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
    ) AS y
) AS x
JOIN bench_seqs AS s ON s.k = floor(:nseq * power(x.r1, 2.5))::int
JOIN bench_boxes AS m ON m.k = floor(:nbox * x.r6)::int
CROSS JOIN (SELECT :wfs ::text[] AS wf, :rots ::int[] AS rots, :codes ::text[] AS codes) AS a
"""


def fill(app, rows: int) -> int:
    with app.app_context():
        db.create_all()
        user = accounts.create_user(EMAIL, PASSWORD)
        workspace = accounts.create_workspace(user, "Bench", timezone="America/New_York")
        ws = workspace.id
        # Sequences (20 removed), mailboxes and rotations the product's way; no rows yet.
        generate(ws, count=0, sequences=500, removed_sequences=20, mailboxes=30, seed=1)
        seqs = db.session.execute(
            select(Sequence.id, Sequence.hubspot_id, Sequence.name)
            .where(Sequence.workspace_id == ws)
            .order_by(Sequence.id)
        ).all()
        boxes = db.session.execute(
            select(Mailbox.id, Mailbox.email).where(Mailbox.workspace_id == ws).order_by(Mailbox.id)
        ).all()
        rots = db.session.scalars(select(Rotation.id).where(Rotation.workspace_id == ws)).all()
        conn = db.session.connection()
        # Lookup tables of this database only (dropped below).
        conn.execute(
            text("CREATE TABLE bench_seqs (k int PRIMARY KEY, id int, hubspot_id text, name text)")
        )
        conn.execute(text("CREATE TABLE bench_boxes (k int PRIMARY KEY, id int, email text)"))
        conn.execute(
            text("INSERT INTO bench_seqs VALUES (:k, :id, :h, :n)"),
            [{"k": k, "id": s.id, "h": s.hubspot_id, "n": s.name} for k, s in enumerate(seqs)],
        )
        conn.execute(
            text("INSERT INTO bench_boxes VALUES (:k, :id, :e)"),
            [{"k": k, "id": b.id, "e": b.email} for k, b in enumerate(boxes)],
        )
        params = {
            "ws": ws,
            "n": rows,
            "nwf": WORKFLOWS,
            "nseq": len(seqs),
            "nbox": len(boxes),
            "wfs": [str(10_000_000 + 7919 * i) for i in range(WORKFLOWS)],
            "rots": list(rots),
            "codes": [f[0] for f in FAILURES],
        }
        step = 1_000_000
        started = time.perf_counter()
        for first in range(0, rows, step):
            last = min(first + step, rows) - 1
            conn.execute(text(FILL), {**params, "first": first, "last": last})
            db.session.commit()
            conn = db.session.connection()
            print(f"  {last + 1:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        db.session.execute(text("DROP TABLE bench_seqs, bench_boxes"))
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE enrollments"))
        started, at = time.perf_counter(), load()
        written = rollups.rebuild(ws)
        seconds = time.perf_counter() - started
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE enrollment_rollups"))
        print(f"  rollups rebuilt: {written:,} rows in {seconds:.1f} s (load {at:.2f})", flush=True)
        return ws


def _timed(fn, repeat: int) -> tuple[float, float]:
    """(median seconds of ``fn`` over ``repeat`` runs after one warm-up, load at the start)."""
    fn()
    at = load()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), at


def combos(app, ws: int) -> list[tuple[str, str]]:
    """(label, query string) of the pages timed: the default and filter combinations."""
    with app.app_context():

        def top(column):
            return db.session.execute(
                select(column, func.count())
                .where(Enrollment.workspace_id == ws, column.is_not(None))
                .group_by(column)
                .order_by(func.count().desc())
                .limit(1)
            ).first()[0]

        seq, wf = top(Enrollment.sequence_id), top(Enrollment.workflow_id)
        box, rot = top(Enrollment.mailbox_id), top(Enrollment.rotation_id)
        db.session.remove()
    return [
        ("default (last 30 days)", ""),
        ("last 7 days", "?period=7"),
        ("last 90 days", "?period=90"),
        ("custom, 366 days", "?period=custom&from=2026-01-01&to=2027-01-01"),
        ("failed", "?status=failed"),
        ("reason BOUNCED, 90 days", "?period=90&reason=BOUNCED"),
        ("top sequence", f"?sequence={seq}"),
        ("top workflow, 90 days", f"?period=90&workflow={wf}"),
        ("top sequence + failed, 90 d", f"?period=90&sequence={seq}&status=failed"),
        ("mailbox + enrolled", f"?mailbox={box}&status=enrolled"),
        ("rotation, 90 days", f"?period=90&rotation={rot}"),
        ("rotation + mailbox (2 filters)", f"?rotation={rot}&mailbox={box}"),
        ("sequence + workflow (2 filters)", f"?sequence={seq}&workflow={wf}"),
    ]


def _expected_total(app, ws: int, query: str) -> int:
    """The "Enrollments" figure, counted here from the rows (not through the rollups)."""
    with app.app_context():
        args = dict(p.split("=", 1) for p in query.lstrip("?").split("&") if p)
        filters = analytics.Filters.parse(args, db.session.get(Workspace, ws))
        total = db.session.scalar(select(func.count()).where(*filters.conditions()))
        db.session.remove()
    return total


def run(url: str, rows: int, ws: int | None, repeat: int) -> None:
    app = create_app(
        {
            "AUTOSEQ_ENV": "testing",
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"),
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
        }
    )
    if ws is None:
        print(f"filling {rows:,} enrollments (load {load():.2f}) ...", flush=True)
        ws = fill(app, rows)
    with app.app_context():
        ws = ws or db.session.scalar(select(func.min(Workspace.id)))
        have = db.session.scalar(select(func.count()).select_from(Enrollment))
        assert db.session.scalar(select(User.id).filter_by(email=EMAIL)), "no bench user"
        db.session.remove()

    def count():
        with app.app_context():
            db.session.execute(text("SELECT count(*) FROM enrollments")).scalar()
            db.session.remove()

    client = app.test_client()
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 302, f"login failed: {response.status_code}"
    base = f"/w/{ws}/analytics/"
    bare, at = _timed(count, repeat)
    print(f"\n== PostgreSQL, {have:,} enrollments")
    label = "bare count(*) of enrollments"
    print(f"  {label:<34} {bare * 1000:8.1f} ms {1:6.2f}x  load {at:.2f}")
    aim = 0.3 if have <= 2_000_000 else 0.5
    worst = 0.0
    for label, query in combos(app, ws):
        want = _expected_total(app, ws, query)

        def page(query=query, want=want):
            r = client.get(base + query)
            body = r.get_data(as_text=True)
            assert r.status_code == 200, (query, r.status_code)
            shown = _TOTAL_RE.search(body)
            assert shown and int(shown.group(1).replace(",", "")) == want, (query, want)

        seconds, at = _timed(page, repeat)
        worst = max(worst, seconds)
        print(
            f"  {label:<34} {seconds * 1000:8.1f} ms {seconds / bare:6.2f}x  load {at:.2f}"
            f"   ({want:,} enrollments)"
        )

    def log():
        r = client.get(base + "log?period=90")
        assert r.status_code == 200, r.status_code
        assert r.get_data(as_text=True).count('<tr id="enrollment-') == 50, "not a full page"

    seconds, at = _timed(log, repeat)
    label = "log, first page (90 d)"
    print(f"  {label:<34} {seconds * 1000:8.1f} ms {seconds / bare:6.2f}x  load {at:.2f}")
    verdict = "met" if worst < aim else "NOT met"
    print(f"  aim: every page < {aim * 1000:.0f} ms: {verdict} (slowest {worst * 1000:.1f} ms)")
    with app.app_context():
        db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--postgres", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the databases made")
    parser.add_argument("--reuse", default=None, help="a bench_analytics_* database kept earlier")
    args = parser.parse_args()
    if not (args.postgres or "").startswith(("postgres://", "postgresql")):
        print("bench_analytics: set DATABASE_URL (or --postgres) to a PostgreSQL server; skipped")
        return 0
    tmp = tempfile.gettempdir()
    if args.reuse:
        run(_reused(database_url(args.postgres, tmp), args.reuse), 0, 0, args.repeat)
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        with own_database(f"{PREFIX}{size}", keep=args.keep, server=args.postgres) as url:
            run(database_url(url, tmp), size, None, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
