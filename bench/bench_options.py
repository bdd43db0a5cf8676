"""Benchmark the workflow action's sequence dropdown at scale (issue 17).

HubSpot's workflow editor asks ``POST /hubspot/actions/options`` for the sequence dropdown while a
person waits. With S sequences in one workspace (default 10,000), this prints:

(1) the query alone, in this process: a page in the order of the ``ix_sequences_options`` index
    against the same page ordered by ``lower(name)`` (what the query did before: a sort of every
    sequence of the workspace per call), p50 and p99 of each and the ratio;
(2) the endpoint under gunicorn (as in the Procfile) with C concurrent callers (default 8): p50 and
    p99 of first pages, searches and next pages, beside a bare endpoint (bench/bare_app.py, answers
    200 and nothing else) on the same gunicorn settings, run twice in mirrored order
    (aim: p99 < 50 ms at 10,000 sequences, < 100 ms at 100,000).

    .venv/bin/python bench/bench_options.py --database-url postgresql://postgres@127.0.0.1:5432/bench_options
    .venv/bin/python bench/bench_options.py --sequences 100000 --database-url ...

Both sizes by default (10,000 then 100,000, each on a fresh schema), then a summary.

Database: a temporary SQLite file, or --database-url (a scratch database of its own: its tables are
dropped and created again). Redis: a private redis-server, started and stopped here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_action import (  # noqa: E402
    ROOT,
    Env,
    free_port,
    load,
    percentile,
    private_redis,
    scratch_database,
    seed_workspace,
)

from autoseq.hubspot.signatures import sign_v3  # noqa: E402

PORTAL = 4242
WORDS = [
    "Cold",
    "Outbound",
    "Inbound",
    "Follow-up",
    "Nurture",
    "Demo",
    "Trial",
    "Renewal",
    "Upsell",
    "Webinar",
    "Event",
    "Partner",
    "enterprise",
    "SaaS",
    "fintech",
    "Healthcare",
    "retail",
    "EMEA",
    "APAC",
    "q1",
    "Q2",
    "q3",
    "Q4",
    "re-engage",
    "Win-back",
    "Onboarding",
]


def seed(app, count: int) -> int:
    from autoseq.extensions import db
    from autoseq.models import Sequence, SyncRun

    rng = random.Random(7)
    with app.app_context():
        workspace_id = seed_workspace(PORTAL, "Bench options")
        now = datetime.now(UTC)
        rows = [
            {
                "workspace_id": workspace_id,
                "hubspot_id": str(100000 + i),
                "name": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) + f" {i}",
                "state": rng.choice(("active", "paused", "unknown")),
                "sharing": rng.choice(("team", "private")),
                "sender_user_ids": [],
                "created_at": now,
                "last_synced_at": now,
            }
            for i in range(count)
        ]
        for start in range(0, count, 5000):
            db.session.execute(db.insert(Sequence), rows[start : start + 5000])
        # A fresh sync: the dropdown must not ask for one during the run.
        db.session.add(
            SyncRun(
                workspace_id=workspace_id,
                trigger="cli",
                status="succeeded",
                started_at=now,
                finished_at=now,
            )
        )
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # What migration 0004 adds where pg_trgm can be created (create_all knows only models).
            db.session.execute(db.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            db.session.execute(
                db.text(
                    "CREATE INDEX IF NOT EXISTS ix_sequences_name_trgm ON sequences USING gin "
                    "(lower(substr(name, 1, 200)) gin_trgm_ops) WHERE removed_at IS NULL"
                )
            )
            # What migration 0007 adds: statistics on the sort key, so a search's matches are
            # estimated from the names (without them a common word was sorted: 74 ms at 100,000).
            db.session.execute(
                db.text(
                    "CREATE STATISTICS IF NOT EXISTS sequences_sort_key_stats "
                    "ON (lower(substr(name, 1, 200))) FROM sequences"
                )
            )
            db.session.execute(db.text("ANALYZE sequences"))
            db.session.commit()
        return workspace_id


def time_queries(app, workspace_id: int, runs: int = 200) -> dict:
    """The page query in the index's order against the same page sorted by lower(name)."""
    from autoseq.extensions import db

    page = (
        "SELECT id, hubspot_id, name, state, sharing FROM sequences "
        "WHERE workspace_id = :ws AND removed_at IS NULL ORDER BY {order}, id LIMIT 101"
    )
    orders = {"index order": "lower(substr(name, 1, 200))", "lower(name) (before)": "lower(name)"}
    out = {}
    with app.app_context():
        for label, order in orders.items():
            statement = db.text(page.format(order=order))
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                rows = db.session.execute(statement, {"ws": workspace_id}).all()
                times.append(time.perf_counter() - started)
                assert len(rows) == 101, len(rows)
            db.session.rollback()
            out[label] = (percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000)
    return out


def bodies(count: int, after: str | None) -> list[bytes]:
    rng = random.Random(11)
    out = []
    for i in range(count):
        fetch: dict = {}
        kind = i % 4
        if kind == 1:
            fetch["q"] = rng.choice(WORDS)[:4]
        elif kind == 2:
            fetch["q"] = rng.choice(WORDS).lower()
        elif kind == 3 and after:
            fetch["after"] = after
        body = {
            "origin": {"portalId": PORTAL},
            "inputFieldName": "sequence",
            "fetchOptions": fetch,
            "inputFields": {},
        }
        out.append(json.dumps(body).encode())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sequences",
        default="10000,100000",
        help="workspace sizes, comma-separated (each on a fresh schema)",
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--database-url",
        default=None,
        help="a scratch database (default: autoseq_bench_options on DATABASE_URL's PostgreSQL "
        "server when it names one, else a temporary SQLite file)",
    )
    args = parser.parse_args()
    args.database_url = args.database_url or scratch_database("autoseq_bench_options")
    worst = {}
    for size in (int(n) for n in args.sequences.split(",")):
        worst[size] = bench_size(args, size)
    print("summary: worst p99 of the endpoint, 8 concurrent callers, both rounds:")
    for size, (p99, aim, load_avg) in worst.items():
        verdict = "met" if p99 < aim else "NOT met"
        print(
            f"   {size:>7,} sequences: {p99:.1f} ms "
            f"(aim < {aim} ms: {verdict}; load {load_avg:.1f})"
        )
    return 0


def bench_size(args, sequences: int) -> tuple[float, int, float]:
    """Seed ``sequences`` on a fresh schema, time the query and the endpoint; (worst p99, aim,
    load average)."""
    args.sequences = sequences
    redis_server, redis_url = private_redis()
    env = Env(args.database_url, redis_url)
    try:
        env.create_schema()
        app = env.app()
        workspace_id = seed(app, args.sequences)
        where = "PostgreSQL" if "postgresql" in env.database_url else "SQLite"
        print(f"== sequence dropdown at {args.sequences:,} sequences ({where})")
        queries = time_queries(app, workspace_id)
        for label, (p50, p99) in queries.items():
            print(f"   query, {label:<21}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        ratio = queries["lower(name) (before)"][0] / queries["index order"][0]
        print(f"   query speed-up (p50)          : {ratio:.1f}x")

        env.gunicorn("wsgi:app", env.port)
        bare_port = free_port()
        env.gunicorn("bare_app:app", bare_port, chdir=ROOT / "bench")
        ours_url = env.public + "/hubspot/actions/options"
        bare_url = f"http://127.0.0.1:{bare_port}/hubspot/actions/enroll"
        body = bodies(1, None)[0]
        ts = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(env.secret, "POST", ours_url, body, ts),
            "X-HubSpot-Request-Timestamp": ts,
        }
        first = requests.post(ours_url, data=body, headers=headers, timeout=10)
        assert first.status_code == 200, first.text
        answer = first.json()
        assert len(answer["options"]) == 100 and answer.get("after"), answer
        work = bodies(args.requests, answer["after"])
        rounds = []
        for order in (("ours", "bare"), ("bare", "ours")):
            result = {}
            for who in order:
                url = ours_url if who == "ours" else bare_url
                result[who] = load(url, env.secret, work, args.concurrency)
                assert result[who]["statuses"] == {200: len(work)}, result[who]["statuses"]
            rounds.append(result)
        load_avg = os.getloadavg()[0]
        for i, result in enumerate(rounds, 1):
            ours, bare = result["ours"], result["bare"]
            print(
                f"   endpoint, round {i}, c={args.concurrency}: ours p50 {ours['p50_ms']:.1f} ms "
                f"p99 {ours['p99_ms']:.1f} ms ({ours['rps']:.0f} req/s); bare p50 "
                f"{bare['p50_ms']:.1f} ms p99 {bare['p99_ms']:.1f} ms ({bare['rps']:.0f} req/s); "
                f"p99 ratio {ours['p99_ms'] / bare['p99_ms']:.2f}"
            )
        aim = 50 if args.sequences <= 10_000 else 100
        worst = max(r["ours"]["p99_ms"] for r in rounds)
        print(
            f"   worst p99                     : {worst:.1f} ms  (aim < {aim} ms; "
            f"load average {load_avg:.1f})"
        )
        return worst, aim, load_avg
    finally:
        env.stop()
        redis_server.terminate()
        redis_server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
