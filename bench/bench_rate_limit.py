"""Benchmark: many callers, one HubSpot portal, the real 110 requests / 10 s budget.

Starts a HubSpot sandbox, connects a workspace to its demo portal through the OAuth token
endpoint, then drives N concurrent callers (threads in several forked processes, each with its own
app, database engine and Redis connections) through ``HubSpotClient`` for ``--seconds``. Prints:

- calls answered, calls/s, and the share of the rate budget used: calls answered within the run
  divided by the most a rolling window lets through in that time (limit x ceil(seconds / window));
- the 429s the sandbox counted (the goal: zero);
- the most calls answered in any rolling window (client side), against the limit.

    TEST_REDIS_DB=14 .venv/bin/python bench/bench_rate_limit.py --seconds 30 --threads 4

Uses Redis at REDIS_URL, database TEST_REDIS_DB (default 14); only its own keys are touched.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import requests
from cryptography.fernet import Fernet

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from own_database import own_database  # noqa: E402

from autoseq import create_app  # noqa: E402
from autoseq.config import database_url  # noqa: E402
from autoseq.extensions import db  # noqa: E402
from autoseq.hubspot import oauth  # noqa: E402
from autoseq.hubspot.http import Transport  # noqa: E402
from autoseq.services import accounts  # noqa: E402
from autoseq.services.connections import for_workspace  # noqa: E402
from hubspot_sandbox import SandboxServer, SandboxState  # noqa: E402
from tests.support.oauth import connect_workspace, consent  # noqa: E402
from tests.support.sandbox import sandbox_settings  # noqa: E402


def redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit(parts._replace(path="/" + os.environ.get("TEST_REDIS_DB", "14")))


def build_config(sandbox: SandboxServer, tmpdir: str, database: str | None) -> dict:
    return {
        "AUTOSEQ_ENV": "testing",
        "SECRET_KEY": "bench",
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        # PostgreSQL when DATABASE_URL names it (a database of the bench's own), else SQLite.
        "SQLALCHEMY_DATABASE_URI": database_url(database, tmpdir),
        "REDIS_URL": redis_url(),
        "PUBLIC_BASE_URL": "http://localhost:5000",
        **sandbox_settings(sandbox),
        "HUBSPOT_RATE_LIMIT": (110, 10.0),
    }


def connect(app, sandbox: SandboxServer, portal_id: int) -> int:
    """A workspace connected to ``portal_id`` (consent form + token endpoint + token info)."""
    config = app.config
    code = consent(
        sandbox.url,
        config["HUBSPOT_CLIENT_ID"],
        portal_id=portal_id,
        redirect_uri=oauth.redirect_uri(config),
    )["code"]
    transport = Transport.from_config(config, rate_limited=False)
    issued = oauth.exchange_code(transport, config, code)
    info = oauth.token_info(transport, config, issued.access_token)
    user = accounts.create_user("bench@example.com", "bench password 123")
    workspace = accounts.create_workspace(user, "Bench")
    body = {
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_in": issued.expires_in,
    }
    connect_workspace(workspace.id, info.hub_id, body, scopes=info.scopes, status="connected")
    return workspace.id


def call_until(app, workspace_id, start, deadline, out) -> None:
    with app.app_context():
        try:
            client = for_workspace(workspace_id)
            time.sleep(max(0.0, start - time.time()))
            while time.time() < deadline:
                client.get("/crm/v3/owners", {"limit": 1})
                out.append(time.time())
        except Exception as exc:  # noqa: BLE001 (reported in the figures)
            out.append(f"{type(exc).__name__}: {exc}")
        finally:
            db.session.remove()


def run_threads(app, workspace_id, start, deadline, count) -> list:
    out: list = []
    threads = [
        threading.Thread(target=call_until, args=(app, workspace_id, start, deadline, out))
        for _ in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def child(config, workspace_id, start, deadline, count, queue) -> None:
    try:
        queue.put(run_threads(create_app(config), workspace_id, start, deadline, count))
    except BaseException as exc:  # noqa: BLE001 (reported by the parent)
        queue.put([f"process failed: {exc!r}"])
    finally:
        queue.close()
        queue.join_thread()
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per process")
    args = parser.parse_args()
    with own_database("bench_rate_limit") as database:  # PostgreSQL when DATABASE_URL names it
        _run(args, database)


def _run(args, database: str | None) -> None:
    state = SandboxState()
    portal = state.seed_demo(contacts=10)
    sandbox = SandboxServer(state).start()
    tmpdir = tempfile.mkdtemp(prefix="autoseq-bench-")
    config = build_config(sandbox, tmpdir, database)
    app = create_app(config)
    limit, window = app.config["HUBSPOT_RATE_LIMIT"]
    with app.app_context():
        db.drop_all()  # a scratch database of the bench's own (see build_config)
        db.create_all()
        workspace_id = connect(app, sandbox, portal.id)
        app.extensions["redis"].delete(f"autoseq:hubspot:rate:{portal.id}")
        db.session.remove()
        db.engine.dispose()

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 2.0
    deadline = start + args.seconds
    procs = [
        ctx.Process(target=child, args=(config, workspace_id, start, deadline, args.threads, queue))
        for _ in range(args.processes)
    ]
    for p in procs:
        p.start()
    results: list = []
    for _ in procs:
        results.extend(queue.get(timeout=args.seconds + 120))
    for p in procs:
        p.join(10)
    ended = time.time()
    stats = requests.get(f"{sandbox.url}/_sandbox/portals/{portal.id}/stats", timeout=10).json()
    sandbox.stop()

    times = sorted(r for r in results if isinstance(r, float))
    errors = [r for r in results if not isinstance(r, float)]
    inside = [t for t in times if t <= deadline]
    most = limit * math.ceil(args.seconds / window)
    peak, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        peak = max(peak, i - j + 1)
    callers = args.processes * args.threads
    print(f"callers: {callers} ({args.processes} processes x {args.threads} threads)")
    print(f"budget: {limit} requests / {window:g} s per portal; run: {args.seconds:g} s")
    print(f"calls answered within the run: {len(inside)} ({len(times)} in all)")
    print(
        f"calls/s within the run: {len(inside) / args.seconds:.2f} (budget {limit / window:.2f}/s)"
    )
    print(f"share of the rate budget used: {len(inside) / most:.1%} ({len(inside)}/{most})")
    print(f"most answers in any rolling {window:g} s, client clock: {peak} (limit {limit})")
    print(f"429s counted by the sandbox: {stats['rate_limited']} of {stats['requests']} requests")
    print(f"errors: {len(errors)}" + (f" first: {errors[0]}" if errors else ""))
    print(f"wall time: {ended - start:.1f} s")


if __name__ == "__main__":
    main()
