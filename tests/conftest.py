"""Shared fixtures: a real database (SQLite or PostgreSQL), a real Redis, real forms, a real worker.

The database is SQLite in a temporary folder unless ``DATABASE_URL`` names PostgreSQL (CI runs the
suite both ways). Redis is the server at ``REDIS_URL`` (database 15, flushed around each test).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from autoseq import create_app
from autoseq.config import database_url
from autoseq.extensions import db
from autoseq.models import Role
from autoseq.queue import QUEUE_NAMES, delayed_job_ids, get_queue
from autoseq.queue import Worker as AutoSeqWorker
from autoseq.services import accounts
from tests.support.oauth import hubspot_oauth_dance
from tests.support.sandbox import (  # noqa: F401  (SANDBOX_CONFIG_KEYS: imported from here)
    FAST_RUNNER,
    SANDBOX_CONFIG_KEYS,
    SandboxAdmin,
    fast_runner,
    pointed_at,
)

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
PASSWORD = "correct horse battery"


def _test_redis_url() -> str:
    """The server at REDIS_URL, database TEST_REDIS_DB (15): flushed, so never a dev database."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + os.environ.get("TEST_REDIS_DB", "15")))


def _test_database_url(tmpdir: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql")):
        return database_url(url, tmpdir)
    return "sqlite:///" + os.path.join(tmpdir, "test.db")


class FormClient(FlaskClient):
    """A test client that fills in the CSRF token of its session, as a browser's form would."""

    def open(self, *args, **kwargs):
        # Each request gets its own app context (fresh ``g`` and session), as in production,
        # even though the test itself holds one open for its own queries.
        with self.application.app_context():
            return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        page = self.get("/login" if not self._logged_in() else "/workspaces/new")
        match = CSRF_RE.search(page.get_data(as_text=True))
        assert match, "no CSRF token on the page"
        return match.group(1)

    def _logged_in(self) -> bool:
        with self.session_transaction() as session:
            return "_user_id" in session

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.post(url, data=data, **kwargs)


@pytest.fixture(scope="session")
def app():
    tmpdir = tempfile.mkdtemp(prefix="autoseq-test-")
    app = create_app(
        {
            "AUTOSEQ_ENV": "testing",
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": _test_database_url(tmpdir),
            "REDIS_URL": _test_redis_url(),
            "SECRET_KEY": "test-secret",
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SERVER_NAME": None,
            "PUBLIC_BASE_URL": "http://localhost:5000",
            # Completions wait this long for their batch (3 s in production): tests stay quick.
            "CALLBACK_FLUSH_DELAY": 0.3,
        }
    )
    app.test_client_class = FormClient
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(app):
    """Each test starts with empty tables and an empty Redis database."""
    redis = app.extensions["redis"]
    redis.flushdb()
    with app.app_context():
        yield
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
    redis.flushdb()


@pytest.fixture
def redis(app):
    return app.extensions["redis"]


@pytest.fixture
def client(app) -> FormClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str = PASSWORD, name: str = ""):
        return accounts.create_user(email or f"user{next(counter)}@example.com", password, name)

    return make


@pytest.fixture
def user(make_user):
    return make_user("owner@example.com", name="Olivia Owner")


@pytest.fixture
def workspace(user):
    return accounts.create_workspace(user, "Acme Sales")


def login(client: FormClient, email: str, password: str = PASSWORD):
    return client.post_form("/login", {"email": email, "password": password})


@pytest.fixture
def logged_in(client, user, workspace) -> FormClient:
    """A client logged in as the owner of ``workspace``."""
    response = login(client, user.email)
    assert response.status_code == 302
    return client


@pytest.fixture
def member_client(app, make_user, workspace):
    """A second client, logged in as a plain member of ``workspace``."""

    def make(role: Role = Role.MEMBER):
        member = make_user()
        accounts.add_member(workspace, member, role)
        other = app.test_client()
        assert login(other, member.email).status_code == 302
        return other

    return make


@pytest.fixture(autouse=True)
def _app_config_per_test(app):
    """The app is shared by the session: whatever a test changes in its config ends with it."""
    saved = dict(app.config)
    yield
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def run_jobs(app, redis):
    """Run a real RQ worker (AutoSeq's worker class) in burst mode over every queue.

    A burst worker stops when its queues are empty; a drain waiting a moment for its callbacks'
    batch (CALLBACK_FLUSH_DELAY) or a rate slot is a delayed job (``delayed_job_ids``), so the run
    goes on until none is due within 3 s (drains waiting out a longer retry backoff stay delayed).
    """

    def run(queues=QUEUE_NAMES) -> AutoSeqWorker:
        while True:
            db.session.remove()  # jobs get their own session, as in the worker process
            worker = AutoSeqWorker([get_queue(q, redis) for q in queues], connection=redis)
            worker.app = app
            worker.work(burst=True, with_scheduler=True)
            db.session.remove()
            drains = [
                job_id
                for q in queues
                # a flush's delay; not a retry's 5 s backoff
                for job_id in delayed_job_ids(q, within=3.0)
                if job_id.startswith("drain-")
            ]
            if not drains:
                return worker
            time.sleep(0.1)

    return run


# -- HubSpot sandbox and a connected workspace (engineer "connect", issue 4) ----------------------
#
#   def test_x(connected_workspace, sandbox, sandbox_admin, portal_id): ...
#
# ``sandbox`` is one SandboxServer for the whole session, reset to a freshly seeded demo portal
# before each test (tokens, faults, settings, stats and the rate window forgotten), with the app's
# HUBSPOT_* settings pointed at it (and put back after the test). ``connected_workspace`` is the
# ``workspace`` fixture connected to ``portal_id`` through the real OAuth flow.


@pytest.fixture(scope="session")
def _sandbox_server():
    from hubspot_sandbox import SandboxServer, SandboxState

    state = SandboxState()
    state.seed_demo(contacts=60)
    server = SandboxServer(state, runner_settings=fast_runner()).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(app, _sandbox_server):
    """A running sandbox (``.url``, ``.state``), reset per test, with app config pointed at it."""
    from hubspot_sandbox.state import DEFAULT_RATE_LIMIT

    server = _sandbox_server
    SandboxAdmin(server.url).post("/reset")
    server.state.token_ttl = 1800.0
    server.state.rate_limit = DEFAULT_RATE_LIMIT
    server.state.code_ttl = 300.0
    server.runner.configure(**FAST_RUNNER)
    with pointed_at(app, server):
        yield server


@pytest.fixture
def sandbox_admin(sandbox) -> SandboxAdmin:
    """``sandbox_admin.get("/portals")``, ``.patch(f"/portals/{id}/settings", {...})``..."""
    return SandboxAdmin(sandbox.url)


@pytest.fixture
def portal_id(sandbox_admin) -> int:
    """The seeded demo portal's id (8 users, 25 sequences, 60 contacts)."""
    return sandbox_admin.get("/portals")["results"][0]["id"]


@pytest.fixture
def oauth_dance(sandbox):
    """``oauth_dance(client, workspace_id, portal_id=None, decision="approve", replace=False)``."""

    def dance(client, workspace_id, portal_id=None, decision="approve", replace=False):
        return hubspot_oauth_dance(client, sandbox, workspace_id, portal_id, decision, replace)

    return dance


@pytest.fixture
def connected_workspace(app, sandbox, workspace, user, portal_id):
    """``workspace`` connected to the sandbox's ``portal_id`` through the real OAuth flow."""
    from autoseq.models import HubSpotConnection

    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    response = hubspot_oauth_dance(browser, sandbox, workspace.id, portal_id)
    assert response.status_code == 302, response.get_data(as_text=True)
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=workspace.id)
    )
    assert connection is not None and connection.status == "connected"
    return workspace
