"""Benchmark: how the sender service spreads enrollments over a rotation, from several processes.

Builds a throw-away workspace (a fresh SQLite file, or ``bench_senders`` on the PostgreSQL server
DATABASE_URL names) with four reps in a weighted rotation and one
in an even one, then lets P forked processes call ``choose_sender`` N times in total against the
same Redis, one pick a minute of simulated time (so the 1,000-a-day caps never bite). Timings
depend on the machine's load; the spread does not. Prints each
mailbox's share against its weight, the largest deviation, whether every SWRR turn was taken
exactly once, and picks per second.

    .venv/bin/python bench/bench_senders.py [--picks 10000] [--procs 4]

Needs Redis (``REDIS_URL``, database ``BENCH_REDIS_DB``, default 13; it is flushed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from own_database import own_database  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def build_app(tmpdir: str, database: str | None):
    from cryptography.fernet import Fernet

    from autoseq import create_app
    from autoseq.config import database_url

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_url = urlunsplit(
        urlsplit(url)._replace(path="/" + os.environ.get("BENCH_REDIS_DB", "13"))
    )
    return create_app(
        {
            "AUTOSEQ_ENV": "testing",
            # PostgreSQL when DATABASE_URL names it (a database of the bench's own), else SQLite.
            "SQLALCHEMY_DATABASE_URI": database_url(database, tmpdir),
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench",
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        }
    )


def seed(weights):
    """A workspace, one rep per weight, a team sequence and a weighted plus an even rotation."""
    from autoseq.extensions import db
    from autoseq.models import User, Workspace
    from tests.support.factories import (
        default_mailbox,
        make_hubspot_user,
        make_rotation,
        make_sequence,
    )

    workspace = Workspace(name="Bench")
    db.session.add(workspace)
    db.session.add(User(email="bench@example.com", password_hash="x"))
    db.session.commit()
    reps = [
        make_hubspot_user(workspace, f"rep{i}@bench.test", hubspot_user_id=str(100 + i))
        for i in range(len(weights))
    ]
    boxes = [default_mailbox(rep) for rep in reps]
    sequence = make_sequence(workspace, "Bench", owner=reps[0], senders=reps, hubspot_id="1")
    rotations = {
        "weighted": make_rotation(workspace, boxes, weights=weights, name="weighted"),
        "even": make_rotation(workspace, boxes, name="even"),
    }
    return workspace.id, sequence.id, {m: r.id for m, r in rotations.items()}


def worker(app, workspace_id, sequence_id, rotation_id, index, procs, picks, start, out):
    from autoseq.extensions import db
    from autoseq.models import Sequence
    from autoseq.services.senders import choose_sender

    with app.app_context():
        db.engine.dispose(close=False)
        sequence = db.session.get(Sequence, sequence_id)
        result = []
        for k in range(index, picks, procs):
            now = start + timedelta(minutes=k)
            choice = choose_sender(workspace_id, sequence, rotation_id=rotation_id, now=now)
            result.append((choice.turn, choice.mailbox.email))
    out.put(result)


def run(app, ids, mode, weights, picks, procs, start):
    workspace_id, sequence_id, rotations = ids
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    started = time.perf_counter()
    workers = [
        ctx.Process(
            target=worker,
            args=(app, workspace_id, sequence_id, rotations[mode], i, procs, picks, start, out),
        )
        for i in range(procs)
    ]
    for proc in workers:
        proc.start()
    results = [pick for _ in workers for pick in out.get(timeout=600)]
    for proc in workers:
        proc.join()
    elapsed = time.perf_counter() - started
    turns = sorted(turn for turn, _ in results)
    counts = Counter(email for _, email in results)
    shares = weights if mode == "weighted" else [1] * len(weights)
    total_weight = sum(shares)
    print(
        f"\n{mode} rotation, {len(results):,} picks from {procs} processes in {elapsed:.2f}s "
        f"({len(results) / elapsed:,.0f} picks/s)"
    )
    worst = 0.0
    for i, share in enumerate(shares):
        email = f"rep{i}@bench.test"
        target = 100 * share / total_weight
        actual = 100 * counts[email] / len(results)
        worst = max(worst, abs(actual - target))
        print(f"  {email:<16} target {target:6.2f}%  actual {actual:6.2f}%  ({counts[email]:,})")
    print(f"  largest deviation: {worst:.3f} percentage points (limit 1.0)")
    print(f"  every turn taken exactly once: {turns == list(range(1, len(results) + 1))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picks", type=int, default=10_000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--weights", default="50,25,15,10")
    args = parser.parse_args()
    with own_database("bench_senders") as database:  # PostgreSQL when DATABASE_URL names it
        _run(args, database)


def _run(args, database: str | None) -> None:
    weights = [int(w) for w in args.weights.split(",")]

    from autoseq.extensions import db

    app = build_app(tempfile.mkdtemp(prefix="bench-senders-"), database)
    with app.app_context():
        app.extensions["redis"].flushdb()
        db.drop_all()  # a scratch database of the bench's own (see build_app)
        db.create_all()
        ids = seed(weights)
        db.session.remove()
    # The two runs share mailboxes: the second starts after the first's caps have rolled off.
    start = START
    for mode in ("weighted", "even"):
        run(app, ids, mode, weights, args.picks, args.procs, start)
        start += timedelta(minutes=args.picks) + timedelta(days=2)
    app.extensions["redis"].flushdb()


if __name__ == "__main__":
    main()
