"""Benchmark: a full sync against a bare paging loop, at 10,000 sequences / 50 users and at
100,000 sequences / 200 users (issue 17: the sync within 1.2x the bare loop).

For each size, the sandbox runs in its own process (generated seed, no rate limit, no added
latency). The sync runs in this process exactly as the worker runs it (``run_sync``: fetch every
user's listing, merge, bulk-write). The bare loop fetches the same pages (users, owners, archived
owners, workflows, then every user's sequences, 100 per page, with as many threads as the sync's
SYNC_FETCH_THREADS, a ``requests.Session`` each) and does nothing with them: like for like.

The machine's speed drifts by 15-30 % from one run to the next (the same bare loop, repeated
against one sandbox at load < 2: 7.6 to 10.2 s, its CPU seconds in step), more than the margin being
measured. So every sync run is bracketed by two bare runs and compared with their mean, and the runs
are repeated in rounds: bare A0, then per round a first sync F (the rows of the last sync deleted
beforehand, outside the clock), bare, a re-sync R (nothing changed), bare. F1 is compared with
(A0+A1)/2, R1 with (A1+A2)/2, F2 with (A2+A3)/2 and so on; the summary gives every ratio and their
median. The 1-minute load average is printed beside every figure, and this process's CPU seconds
(the fetch threads' included; the sandbox runs in its own). Every run is checked: the sync
succeeded with the portal's counts, the bare loop saw the same items.

    .venv/bin/python bench/bench_sync.py [--sizes 10000x50,100000x200] [--rounds N] [--threads N]
        [--bare-parser requests|orjson]

Database: ``bench_sync_<sequences>_<random>``, the bench's own, made on the PostgreSQL server
DATABASE_URL names and dropped at the end (never DATABASE_URL's own database), else a temporary
SQLite file.
Redis: a private redis-server, started and stopped here. The app's rate limit is lifted so that
only the sync's own work is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from own_database import own_database  # noqa: E402

from tests.support.oauth import connect_workspace, token_dance  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc) -> None:
    proc.terminate()
    proc.wait(10)


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
            # A day-long token: a 100,000-sequence round outlives the default 30 minutes, and the
            # bare loop does not refresh (the sync would, one call more than the bare loop).
            "--token-ttl",
            "86400",
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


def bare_loop(
    url: str, token: str, threads: int = 1, parser: str = "requests"
) -> tuple[float, int, int]:
    """Fetch the pages the sync fetches, doing nothing with them; (seconds, requests, items).

    Like for like: the users' sequence listings are fetched by ``threads`` threads at once, as the
    sync does with SYNC_FETCH_THREADS (each thread with its own session), and each session is made
    as the sync's transport makes its own (``autoseq.hubspot.http._session``: the environment read
    once, not on every request; the same User-Agent). A plain ``requests.Session()`` re-reads the
    proxy variables and ~/.netrc on every request: about 75 us of CPU a request more than the
    sync's (measured): the bare loop was slowed, and the ratio flattered the sync.

    ``parser``: ``requests`` parses each page as a bare loop would (``response.json()``, the
    standard library); ``orjson`` as the sync's client does (``autoseq.hubspot.client.parse_json``),
    for the stricter comparison.
    """
    from autoseq.hubspot.client import parse_json
    from autoseq.hubspot.http import USER_AGENT, _session

    local = threading.local()
    lock = threading.Lock()
    counts = {"calls": 0, "items": 0}

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = _session(url)
            local.session.headers["User-Agent"] = USER_AGENT
            local.session.headers["Authorization"] = f"Bearer {token}"
        return local.session

    def pages(path: str, params: dict):
        params = dict(params, limit=100)
        while True:
            response = session().get(url + path, params=params)
            response.raise_for_status()  # an error page is never timed as a fast page
            body = response.json() if parser == "requests" else parse_json(response.content)
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


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``10000x50,100000x200`` -> [(10000, 50), (100000, 200)]."""
    sizes = []
    for part in text.split(","):
        sequences, _, users = part.strip().lower().partition("x")
        sizes.append((int(sequences), int(users)))
    return sizes


def loadavg() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def bench_size(
    sequences: int,
    users: int,
    redis_url: str,
    threads: int | None,
    rounds: int,
    parser: str = "requests",
) -> dict[str, list[float]]:
    """The rounds at one size; returns the ratios (and prints each run as it comes)."""
    from cryptography.fernet import Fernet
    from sqlalchemy import delete

    from autoseq import create_app
    from autoseq.config import database_url
    from autoseq.extensions import db
    from autoseq.models import HubSpotUser, Mailbox, Sequence, Workflow
    from autoseq.services import accounts
    from autoseq.services.sync import run_sync

    tmp = tempfile.mkdtemp(prefix="autoseq-bench-")
    # Unwound in reverse: the sandbox stopped, then the bench's own database dropped (its
    # connections closed by force), also when the set-up fails half-way.
    with contextlib.ExitStack() as stack:
        db_url = database_url(stack.enter_context(own_database(f"bench_sync_{sequences}")), tmp)
        print(
            f"\n== {sequences:,} sequences over {users} users ({db_url.split(':')[0]})", flush=True
        )
        proc, url = start_sandbox(sequences, users)
        stack.callback(_stop, proc)
        app_info, token, portal_id = oauth(url)
        app = create_app(
            {
                "AUTOSEQ_ENV": "testing",
                "SECRET_KEY": "bench",
                "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "SQLALCHEMY_DATABASE_URI": db_url,
                "REDIS_URL": redis_url,
                "HUBSPOT_API_BASE": url,
                "HUBSPOT_CLIENT_ID": app_info["client_id"],
                "HUBSPOT_CLIENT_SECRET": app_info["client_secret"],
                "HUBSPOT_RATE_LIMIT": (10_000_000, 10.0),
            }
        )
        if threads:
            app.config["SYNC_FETCH_THREADS"] = threads
        threads = app.config["SYNC_FETCH_THREADS"]
        access = token["access_token"]
        with app.app_context():
            db.drop_all()  # a scratch database of its own (bench_sync_<sequences>)
            db.create_all()
            user = accounts.create_user("bench@example.com", "bench-password-123", "Bench")
            ws = accounts.create_workspace(user, "Bench")
            connect_workspace(ws.id, portal_id, token, scopes=None)
            ws_id = ws.id
            expected_items: list[int] = []

            def bare(label: str) -> float:
                lavg = loadavg()
                cpu = time.process_time()
                seconds, calls, items = bare_loop(url, access, threads, parser)
                cpu = time.process_time() - cpu
                expected_items.append(items)
                assert items == expected_items[0], "the bare loop saw a different portal"
                print(
                    f"  {label} bare loop  : {seconds:7.2f} s  ({calls:,} requests, "
                    f"{items:,} items; this process {cpu:.1f} s CPU; {lavg})",
                    flush=True,
                )
                return seconds

            def sync(label: str, first: bool) -> float:
                lavg = loadavg()
                cpu = time.process_time()
                started = time.perf_counter()
                run = run_sync(ws_id, trigger="cli")
                seconds = time.perf_counter() - started
                cpu = time.process_time() - cpu
                assert run.status == "succeeded", run.error
                assert run.users == users, (run.users, users)
                want = (sequences, 0, 0) if first else (0, 0, 0)
                assert (run.added, run.updated, run.removed) == want, (run.added, want)
                count = db.session.scalar(
                    db.select(db.func.count()).where(
                        Sequence.workspace_id == ws_id, Sequence.removed_at.is_(None)
                    )
                )
                assert count == sequences, (count, sequences)
                kind = "first sync" if first else "re-sync   "
                print(
                    f"  {label} {kind} : {seconds:7.2f} s  (+{run.added} ~{run.updated} "
                    f"-{run.removed}, {run.users} users; this process {cpu:.1f} s CPU; {lavg})",
                    flush=True,
                )
                return seconds

            def forget() -> None:
                """The next sync is a first sync again: the rows of the last one deleted."""
                for model in (Mailbox, HubSpotUser, Sequence, Workflow):
                    db.session.execute(delete(model).where(model.workspace_id == ws_id))
                db.session.commit()

            # One warm-up of both paths on a small request (first connections).
            requests.get(url + "/settings/v3/users", headers={"Authorization": f"Bearer {access}"})
            print(
                f"  {threads} fetch threads for the sync and the bare loop alike; the bare loop "
                f"parses with {'requests (json)' if parser == 'requests' else 'orjson'}",
                flush=True,
            )
            ratios: dict[str, list[float]] = {"first": [], "resync": []}
            before = bare("A0")
            for n in range(1, rounds + 1):
                if n > 1:
                    forget()  # outside the clock, before the bare run that precedes F
                first = sync(f"F{n}", first=True)
                middle = bare(f"A{2 * n - 1}")
                again = sync(f"R{n}", first=False)
                after = bare(f"A{2 * n}")
                ratios["first"].append(first / ((before + middle) / 2))
                ratios["resync"].append(again / ((middle + after) / 2))
                print(
                    f"  round {n}: first sync / bare {ratios['first'][-1]:.2f}, "
                    f"re-sync / bare {ratios['resync'][-1]:.2f}  (aim <= 1.20)",
                    flush=True,
                )
                before = after
    print(f"  ({loadavg()} at the end)", flush=True)
    return ratios


def _figures(ratios: list[float]) -> str:
    return f"median {statistics.median(ratios):.2f} (" + ", ".join(f"{r:.2f}" for r in ratios) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000x50,100000x200", help="SEQUENCESxUSERS,...")
    parser.add_argument(
        "--threads", type=int, default=None, help="SYNC_FETCH_THREADS (default: the app's, 2)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of (first sync, bare, re-sync, bare) per size (default: 3, 1 at 100,000+)",
    )
    parser.add_argument(
        "--bare-parser",
        choices=("requests", "orjson"),
        default="requests",
        help="how the bare loop parses a page: response.json(), or orjson as the sync does",
    )
    args = parser.parse_args()

    from bench_action import private_redis

    redis_proc, redis_url = private_redis()
    try:
        results = {
            size: bench_size(
                *size,
                redis_url,
                args.threads,
                args.rounds or (1 if size[0] >= 100_000 else 3),
                args.bare_parser,
            )
            for size in parse_sizes(args.sizes)
        }
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    print("\nsummary (sync / the mean of the bare runs either side of it; aim <= 1.20):")
    for (sequences, users), ratios in results.items():
        print(
            f"  {sequences:>7,} / {users:>3} users: first sync {_figures(ratios['first'])}; "
            f"re-sync {_figures(ratios['resync'])}"
        )


if __name__ == "__main__":
    main()
