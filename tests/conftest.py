"""Shared fixtures: a real database (SQLite or PostgreSQL), a real Redis, real forms, a real worker.

The database is SQLite in a temporary folder unless ``DATABASE_URL`` names PostgreSQL (CI runs the
suite both ways). Redis is the server at ``REDIS_URL`` (database 15, flushed around each test).
"""

from __future__ import annotations

import os
import re
import tempfile
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from autoseq import create_app
from autoseq.config import database_url
from autoseq.extensions import db
from autoseq.jobs import QUEUE_NAMES, get_queue
from autoseq.jobs.worker import AutoSeqWorker
from autoseq.models import Role
from autoseq.services import accounts

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


@pytest.fixture
def run_jobs(app, redis):
    """Run a real RQ worker (AutoSeq's forking worker class) in burst mode over every queue."""

    def run(queues=QUEUE_NAMES) -> AutoSeqWorker:
        db.session.remove()  # the horse must not inherit a checked-out connection
        worker = AutoSeqWorker([get_queue(q, redis) for q in queues], connection=redis)
        worker.app = app
        worker.work(burst=True, with_scheduler=True)
        db.session.remove()
        return worker

    return run
