"""Command line: ``python -m hubspot_sandbox [serve|fire|options] ...``.

serve (default)::

    python -m hubspot_sandbox --port 8765 --seed demo
    python -m hubspot_sandbox --seed generated --sequences 10000 --users 50 --rate-limit off

fire / options talk to the admin API of a running sandbox::

    python -m hubspot_sandbox fire --url http://127.0.0.1:8765 --portal 100001 \
        --definition 1001 --contacts 1001-1100 --workflow 42 --input sequence=2000001
    python -m hubspot_sandbox options --url ... --portal 100001 --definition 1001 \
        --field sequence --q demo

Seed JSON format: ``{"portals": [{"id"?, "domain"?, "users": [{"email", "firstName",
"lastName", "seat", "active", "superAdmin", "inboxes": [...]}], "sequences": [{"name",
"userId" | "userEmail", "shared", "folderId", "state"}], "contacts": n | [{"id", "email",
"unsubscribed", "bounced"}], "settings": {"token_ttl", "rate_limit", "daily_cap",
"include_state"}}]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests

from .runner import RunnerSettings
from .server import SandboxServer
from .state import App, SandboxState, parse_rate_limit


def _env(name: str, default=None):
    return os.environ.get(f"SANDBOX_{name}", default)


def build_state(args) -> SandboxState:
    """Create and seed the state from parsed CLI arguments."""
    app = None
    client_id = args.client_id or _env("CLIENT_ID")
    secret = args.client_secret or _env("CLIENT_SECRET")
    app_id = args.app_id or _env("APP_ID")
    dev_key = args.developer_api_key or _env("DEVELOPER_API_KEY")
    dev_token = args.developer_token or _env("DEVELOPER_TOKEN")
    if any((client_id, secret, app_id, dev_key, dev_token)):
        defaults = SandboxState().app
        app = App(
            client_id=client_id or defaults.client_id,
            client_secret=secret or defaults.client_secret,
            app_id=int(app_id) if app_id else defaults.app_id,
            developer_api_key=dev_key or defaults.developer_api_key,
            developer_token=dev_token or defaults.developer_token,
        )
    state = SandboxState(
        app=app,
        token_ttl=args.token_ttl,
        rate_limit=parse_rate_limit(args.rate_limit),
        refuse_legacy=args.refuse_legacy,
    )
    if args.seed == "demo":
        state.seed_demo(contacts=args.contacts if args.contacts is not None else 500)
    elif args.seed == "generated":
        state.seed_generated(
            sequences=args.sequences,
            users=args.users,
            contacts=args.contacts if args.contacts is not None else 100,
            portals=args.portals,
        )
    elif args.seed == "empty":
        pass
    else:
        state.load_seed_file(args.seed)
    return state


def serve(args) -> int:
    """Start the sandbox and block."""
    started = time.monotonic()
    state = build_state(args)
    settings = RunnerSettings(
        concurrency=args.concurrency,
        backoff_base=args.backoff_base,
        max_attempts=args.max_attempts,
    )
    server = SandboxServer(state, host=args.host, port=args.port, runner_settings=settings)
    server.start()
    app = state.app
    print(
        f"HubSpot sandbox listening on {server.url}  (seeded in {time.monotonic() - started:.2f}s)"
    )
    print(f"  admin page:        {server.url}/_sandbox/")
    print(f"  authorize URL:     {server.url}/oauth/authorize")
    print(f"  client id:         {app.client_id}")
    print(f"  client secret:     {app.client_secret}")
    print(f"  app id:            {app.app_id}")
    print(f"  developer api key: {app.developer_api_key}")
    print(f"  developer token:   {app.developer_token}")
    if state.refuse_legacy:
        print("  legacy paths:      refused (410)")
    print(f"  portals:           {', '.join(str(p) for p in state.portals)}")
    sys.stdout.flush()
    server.serve_forever()
    return 0


def _contacts(spec: str) -> list[str]:
    out: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            if hi < lo or hi - lo > 100000:
                raise SystemExit(f"bad contact range {part}")
            out.extend(str(i) for i in range(lo, hi + 1))
        elif part:
            out.append(part)
    return out


def _inputs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--input wants name=value, got {pair}")
        out[key] = value
    return out


def fire(args) -> int:
    """POST /_sandbox/workflows/fire on a running sandbox and print the answer."""
    body = {
        "portalId": args.portal,
        "definitionId": args.definition,
        "workflowId": args.workflow,
        "contactIds": _contacts(args.contacts),
        "inputFields": _inputs(args.input),
        "wait": args.wait,
        "timeout": args.timeout,
    }
    resp = requests.post(
        f"{args.url}/_sandbox/workflows/fire", json=body, timeout=args.timeout + 30
    )
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.ok else 1


def options(args) -> int:
    """POST /_sandbox/workflows/options on a running sandbox and print the answer."""
    body = {
        "portalId": args.portal,
        "definitionId": args.definition,
        "fieldName": args.field,
        "inputFields": _inputs(args.input),
    }
    if args.q is not None:
        body["q"] = args.q
    if args.after is not None:
        body["after"] = args.after
    resp = requests.post(f"{args.url}/_sandbox/workflows/options", json=body, timeout=60)
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.ok else 1


def parser() -> argparse.ArgumentParser:
    """The CLI argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m hubspot_sandbox", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command")

    def add_serve_args(sp):
        sp.add_argument("--host", default=_env("HOST", "127.0.0.1"))
        sp.add_argument("--port", type=int, default=int(_env("PORT", "8765")))
        sp.add_argument("--seed", default="demo", help="demo | generated | empty | path.json")
        sp.add_argument("--sequences", type=int, default=100)
        sp.add_argument("--users", type=int, default=10)
        sp.add_argument("--contacts", type=int, default=None)
        sp.add_argument("--portals", type=int, default=1)
        sp.add_argument("--token-ttl", type=float, default=float(_env("TOKEN_TTL", "1800")))
        sp.add_argument("--rate-limit", default=_env("RATE_LIMIT", "110/10s"))
        sp.add_argument("--client-id")
        sp.add_argument("--client-secret")
        sp.add_argument("--app-id")
        sp.add_argument("--developer-api-key")
        sp.add_argument("--developer-token", help="developer OAuth token (dated action paths)")
        sp.add_argument(
            "--refuse-legacy",
            action="store_true",
            default=_env("REFUSE_LEGACY", "") in ("1", "true"),
            help="answer 410 to HubSpot's legacy paths (OAuth v1, sequences/actions v4)",
        )
        sp.add_argument("--concurrency", type=int, default=8)
        sp.add_argument("--backoff-base", type=float, default=1.0)
        sp.add_argument("--max-attempts", type=int, default=5)

    add_serve_args(p)
    add_serve_args(sub.add_parser("serve", help="run the sandbox (default)"))
    for name in ("fire", "options"):
        sp = sub.add_parser(name, help=f"{name} through a running sandbox's admin API")
        sp.add_argument("--url", default="http://127.0.0.1:8765")
        sp.add_argument("--portal", type=int, required=True)
        sp.add_argument("--definition", required=True)
        sp.add_argument("--input", action="append", help="name=value (repeatable)")
        if name == "fire":
            sp.add_argument("--contacts", required=True, help="e.g. 1001-1100 or 1001,1002")
            sp.add_argument("--workflow", type=int, default=1)
            sp.add_argument("--wait", action="store_true")
            sp.add_argument("--timeout", type=float, default=30.0)
        else:
            sp.add_argument("--field", required=True)
            sp.add_argument("--q")
            sp.add_argument("--after")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    if args.command == "fire":
        return fire(args)
    if args.command == "options":
        return options(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
