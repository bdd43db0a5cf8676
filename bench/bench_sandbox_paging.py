"""Benchmark: page through 10,000 sequences of one user at limit=100.

Prints pages/s and sequences/s for the sandbox, the same for a bare werkzeug server that
answers a precomputed 100-item JSON page, and the ratio sandbox ÷ bare.

    .venv/bin/python bench/bench_sandbox_paging.py
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hubspot_sandbox import SandboxServer, SandboxState  # noqa: E402
from tests.support.oauth import token_dance  # noqa: E402

ROUNDS = 5


def token_for(server: SandboxServer) -> str:
    app = server.state.app
    body = token_dance(
        server.url,
        app.client_id,
        app.client_secret,
        scope="automation.sequences.read",
        redirect_uri="http://localhost/cb",
    )
    return body["access_token"]


def page_sandbox(server: SandboxServer, token: str, user_id: int) -> tuple[int, int, float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    pages = items = 0
    after = None
    started = time.perf_counter()
    for _ in range(10000):
        params = {"userId": user_id, "limit": 100}
        if after:
            params["after"] = after
        body = session.get(f"{server.url}/automation/sequences/2026-03", params=params).json()
        pages += 1
        items += len(body["results"])
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    return pages, items, time.perf_counter() - started


def page_bare(pages: int) -> float:
    page = json.dumps(
        {
            "total": 10000,
            "results": [
                {
                    "id": str(2000001 + i),
                    "name": f"Sequence {i}",
                    "createdAt": "2025-01-01T00:00:00.000Z",
                    "updatedAt": "2025-01-01T00:00:00.000Z",
                    "userId": "7000001",
                    "folderId": "1001",
                }
                for i in range(100)
            ],
            "paging": {"next": {"after": "djE6MjAwMDEwMA", "link": "http://x/?after=x"}},
        }
    ).encode()

    def app(environ, start_response):
        return Response(page, content_type="application/json")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/automation/sequences/2026-03"
    session = requests.Session()
    started = time.perf_counter()
    for i in range(pages):
        session.get(url, params={"userId": 1, "limit": 100, "after": str(i)}).json()
    elapsed = time.perf_counter() - started
    server.shutdown()
    server.server_close()
    return elapsed


def main() -> None:
    t0 = time.perf_counter()
    state = SandboxState(rate_limit=None)
    portal = state.seed_generated(sequences=10000, users=50, contacts=10)[0]
    print(f"seeded 10,000 sequences / 50 users in {time.perf_counter() - t0:.2f}s")
    with SandboxServer(state) as server:
        token = token_for(server)
        uid = sorted(portal.users)[0]
        best = None
        for _ in range(ROUNDS):
            pages, items, elapsed = page_sandbox(server, token, uid)
            if best is None or elapsed < best[2]:
                best = (pages, items, elapsed)
    pages, items, elapsed = best
    bare = min(page_bare(pages) for _ in range(ROUNDS))
    sandbox_pps = pages / elapsed
    bare_pps = pages / bare
    print(
        f"sandbox: {pages} pages, {items} sequences in {elapsed:.3f}s -> "
        f"{sandbox_pps:.0f} pages/s, {items / elapsed:.0f} sequences/s"
    )
    print(f"bare werkzeug (precomputed page): {bare_pps:.0f} pages/s")
    print(f"ratio sandbox/bare pages/s: {sandbox_pps / bare_pps:.2f}")


if __name__ == "__main__":
    main()
