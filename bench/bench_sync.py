"""Benchmark: a full sync of 10,000 sequences over 50 users, against a bare paging loop.

The sandbox runs in its own process (generated seed, no rate limit, no added latency). The sync
runs in this process exactly as the worker runs it (``run_sync``: fetch every user's listing,
merge, bulk-write to a fresh SQLite database). The bare loop fetches the same pages (users,
owners, archived owners, workflows, then every user's sequences, 100 per page, with as many
threads as the sync's SYNC_FETCH_THREADS, a ``requests.Session`` each) and does nothing with
them: like for like. Prints both times and their ratio (the sync's own overhead), then a re-sync
with nothing changed.

    .venv/bin/python bench/bench_sync.py [--sequences 10000] [--users 50] [--threads 1]

Needs Redis (``REDIS_URL``, database ``BENCH_REDIS_DB``, default 11) for the rate limiter and
locks; the app's own rate limit is lifted so that only the sync's own work is measured.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support.oauth import connect_workspace, token_dance  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(sequences: int, users: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hubspot_sandbox",
            "serve",
            "--port",
            str(port),
            "--seed",
            "generated",
            "--sequences",
            str(sequences),
            "--users",
            str(users),
            "--contacts",
            "0",
            "--rate-limit",
            "off",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(url + "/_sandbox/app", timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def oauth(url: str) -> tuple[dict, dict, int]:
    """The sandbox app's credentials, a token for the first portal, and the portal's id."""
    app = requests.get(url + "/_sandbox/app").json()
    portal_id = requests.get(url + "/_sandbox/portals").json()["results"][0]["id"]
    body = token_dance(url, app["client_id"], app["client_secret"], portal_id)
    return app, body, portal_id


def bare_loop(url: str, token: str, threads: int = 1) -> tuple[float, int, int]:
    """Fetch the pages the sync fetches, doing nothing with them; (seconds, requests, items).

    Like for like: the users' sequence listings are fetched by ``threads`` threads at once, as the
    sync does with SYNC_FETCH_THREADS (each thread with its own session).
    """
    local = threading.local()
    lock = threading.Lock()
    counts = {"calls": 0, "items": 0}

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = f"Bearer {token}"
        return local.session

    def pages(path: str, params: dict):
        params = dict(params, limit=100)
        while True:
            body = session().get(url + path, params=params).json()
            results = body.get("results") or []
            with lock:
                counts["calls"] += 1
                counts["items"] += len(results)
            yield from results
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params["after"] = after

    def listing(user_id) -> None:
        for _ in pages("/automation/sequences/2026-03", {"userId": user_id}):
            pass

    started = time.perf_counter()
    users = list(pages("/settings/v3/users", {}))
    list(pages("/crm/v3/owners", {}))
    list(pages("/crm/v3/owners", {"archived": "true"}))
    list(pages("/automation/v4/flows", {}))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(listing, [user["id"] for user in users]))
    return time.perf_counter() - started, counts["calls"], counts["items"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="bare-loop rounds (best is kept)")
    parser.add_argument(
        "--threads", type=int, default=None, help="SYNC_FETCH_THREADS (default: the app's, 2)"
    )
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    from autoseq import create_app
    from autoseq.extensions import db
    from autoseq.services import accounts
    from autoseq.services.sync import DEFAULT_FETCH_THREADS, run_sync

    proc, url = start_sandbox(args.sequences, args.users)
    try:
        app_info, token, portal_id = oauth(url)
        tmp = tempfile.mkdtemp(prefix="autoseq-bench-")
        redis_url = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        redis_url = urlunsplit(
            redis_url._replace(path="/" + os.environ.get("BENCH_REDIS_DB", "11"))
        )
        app = create_app(
            {
                "AUTOSEQ_ENV": "testing",
                "SECRET_KEY": "bench",
                "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "SQLALCHEMY_DATABASE_URI": os.environ.get("BENCH_DATABASE_URL")
                or "sqlite:///" + os.path.join(tmp, "bench.db"),
                "REDIS_URL": redis_url,
                "HUBSPOT_API_BASE": url,
                "HUBSPOT_CLIENT_ID": app_info["client_id"],
                "HUBSPOT_CLIENT_SECRET": app_info["client_secret"],
                "HUBSPOT_RATE_LIMIT": (10_000_000, 10.0),
            }
        )
        if args.threads:
            app.config["SYNC_FETCH_THREADS"] = args.threads
        with app.app_context():
            db.drop_all()  # a fresh schema (BENCH_DATABASE_URL may name a reused database)
            db.create_all()
            user = accounts.create_user("bench@example.com", "bench-password-123", "Bench")
            ws = accounts.create_workspace(user, "Bench")
            connect_workspace(ws.id, portal_id, token, scopes=None)
            ws_id = ws.id

            # Warm both paths once on a small request so neither pays for first connections.
            requests.get(url + "/settings/v3/users", headers={"Authorization": "Bearer x"})

            # Interleaved (bare, first sync, bare, re-sync, bare): on a shared machine the load
            # drifts, so each sync is compared with the bare loops run just before and after it.
            threads = int(app.config.get("SYNC_FETCH_THREADS", DEFAULT_FETCH_THREADS))

            def bare() -> float:
                return min(
                    bare_loop(url, token["access_token"], threads)[0] for _ in range(args.rounds)
                )

            def timed_sync():
                started = time.perf_counter()
                run = run_sync(ws_id, trigger="cli")
                assert run.status == "succeeded", run.error
                return time.perf_counter() - started, (
                    run.added,
                    run.updated,
                    run.removed,
                    run.users,
                )

            _, calls, items = bare_loop(url, token["access_token"], threads)
            bare_1 = bare()
            first_s, summary = timed_sync()
            bare_2 = bare()
            again_s, summary_again = timed_sync()
            bare_3 = bare()
    finally:
        proc.terminate()
        proc.wait(10)

    ratio_first = first_s / ((bare_1 + bare_2) / 2)
    ratio_again = again_s / ((bare_2 + bare_3) / 2)
    print(
        f"portal: {args.sequences:,} sequences over {args.users} users; "
        f"{threads} fetch threads for the sync and for the bare loop alike"
    )
    print(f"bare loop : {bare_1:.2f} s, {bare_2:.2f} s, {bare_3:.2f} s", end="")
    print(f"  ({calls:,} requests, {items:,} items each)")
    print(f"first sync: {first_s:.2f} s  (added/updated/removed/users = {summary})")
    print(f"re-sync   : {again_s:.2f} s  (added/updated/removed/users = {summary_again})")
    print(f"ratio first sync / bare loop (mean of the two beside it): {ratio_first:.2f}")
    print(f"ratio re-sync / bare loop (mean of the two beside it)   : {ratio_again:.2f}")
    print(f"re-sync / first sync: {again_s / first_s:.2f}")


if __name__ == "__main__":
    main()
