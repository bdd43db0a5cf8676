"""Fixtures for the workflow action: a sandbox portal, AutoSeq served over real HTTP, a published
action, and helpers to fire executions through the sandbox's workflow runner.

The sandbox settings, the OAuth dance and the connection come from ``tests/support``. This sandbox
is a fresh, empty one per test (no rate limit), unlike the shared, seeded ``sandbox`` fixture.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from autoseq.extensions import db
from autoseq.models import Enrollment, Mailbox, Rotation, RotationMember
from autoseq.services import actions as action_service
from autoseq.services.sync import run_sync
from hubspot_sandbox import SandboxServer, SandboxState
from hubspot_sandbox.signing import signed_headers
from tests.support.oauth import REDIRECT, SCOPES, connect_workspace, oauth_tokens  # noqa: F401
from tests.support.sandbox import fast_runner, pointed_at


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Admin:
    """The sandbox's admin API over HTTP, for one portal."""

    def __init__(self, server: SandboxServer, portal_id: int):
        self.url = server.url
        self.portal_id = portal_id
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs):
        url = f"{self.url}/_sandbox{path}"
        response = self.http.request(method, url, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def portal(self, method: str, path: str, **kwargs):
        return self.call(method, f"/portals/{self.portal_id}{path}", **kwargs)

    def faults(self, **fields) -> dict:
        return self.portal("PATCH", "/faults", json=fields)

    def enrollments(self) -> list[dict]:
        return self.portal("GET", "/enrollments")["results"]

    def callback(self, callback_id: str) -> dict:
        return self.call("GET", f"/callbacks/{callback_id}")

    def stats(self) -> dict:
        return self.portal("GET", "/stats")


class World:
    """What a test needs: the sandbox, the portal, AutoSeq's URL, the action, ids of things."""

    def __init__(self, app, sandbox: SandboxServer, portal, workspace, autoseq_url: str):
        self.app = app
        self.sandbox = sandbox
        self.state = sandbox.state
        self.portal = portal
        self.portal_id = portal.id
        self.workspace_id = workspace.id
        self.url = autoseq_url
        self.admin = Admin(sandbox, portal.id)
        self.definition_id: str | None = None
        self.users: dict[str, object] = {}
        self.sequences: dict[str, object] = {}

    def mailbox(self, email: str) -> Mailbox:
        return db.session.scalar(
            db.select(Mailbox).filter_by(workspace_id=self.workspace_id, email=email)
        )

    def fire(self, contact_ids, inputs: dict, workflow_id: int = 77, wait: bool = True) -> list:
        """Fire executions through the sandbox runner; wait until each delivery settled."""
        db.session.commit()  # end the test's read transaction: the server thread writes
        body = {
            "portalId": self.portal_id,
            "definitionId": self.definition_id,
            "workflowId": workflow_id,
            "contactIds": [str(c) for c in contact_ids],
            "inputFields": inputs,
            "wait": wait,
            "timeout": 30,
        }
        result = self.admin.call("POST", "/workflows/fire", json=body)
        if wait:
            assert result["settled"], result
        return result["callbackIds"]

    def deliver_again(self, callback_id: str) -> requests.Response:
        """HubSpot delivers an execution again (same callbackId): replay it, signed anew."""
        first = self.admin.callback(callback_id)
        payload = {
            "callbackId": callback_id,
            "origin": {"portalId": self.portal_id, "actionDefinitionId": self.definition_id},
            "context": {"source": "WORKFLOWS", "workflowId": first.get("workflowId", 77)},
            "object": {"objectId": int(first["contactId"]), "objectType": "CONTACT"},
            "inputFields": first["inputFields"],
        }
        url = self.url + "/hubspot/actions/enroll"
        body = json.dumps(payload)
        headers = signed_headers(self.state.app.client_secret, "POST", url, body)
        return requests.post(url, data=body, headers=headers, timeout=5)

    def direct(self, sequence: str, mailbox_email: str) -> dict:
        return {
            "sequence": self.sequences[sequence].id,
            "send_from": "mailbox",
            "mailbox": str(self.mailbox(mailbox_email).id),
        }

    def via_rotation(self, sequence: str, rotation: Rotation) -> dict:
        return {
            "sequence": self.sequences[sequence].id,
            "send_from": "rotation",
            "rotation": str(rotation.id),
        }

    def rotation(self, name: str, emails: list[str]) -> Rotation:
        rotation = Rotation(workspace_id=self.workspace_id, name=name)
        db.session.add(rotation)
        db.session.flush()
        for position, email in enumerate(emails):
            db.session.add(
                RotationMember(
                    rotation_id=rotation.id, mailbox_id=self.mailbox(email).id, position=position
                )
            )
        db.session.commit()
        return rotation

    def rows(self) -> list[Enrollment]:
        db.session.expire_all()
        return db.session.scalars(db.select(Enrollment).order_by(Enrollment.id)).all()

    def row(self, callback_id: str) -> Enrollment:
        db.session.expire_all()
        return db.session.scalar(db.select(Enrollment).filter_by(callback_id=callback_id))

    def completion(self, callback_id: str) -> dict | None:
        return self.admin.callback(callback_id)["completion"]

    def outputs(self, callback_id: str) -> dict:
        completion = self.completion(callback_id)
        assert completion is not None, self.admin.callback(callback_id)
        return completion["outputFields"]

    def enrolled_contacts(self) -> list[str]:
        return [e["contactId"] for e in self.admin.enrollments()]

    def contacts(self, n: int) -> list[str]:
        ids = sorted(self.portal.contacts, key=int)
        return ids[:n]

    def sync(self) -> None:
        run = run_sync(self.workspace_id)
        assert run.status == "succeeded", run.error


@pytest.fixture
def action_sandbox(app):
    """A started sandbox (no rate limit unless set); the app's HubSpot settings point at it."""
    state = SandboxState(rate_limit=None)
    server = SandboxServer(state, runner_settings=fast_runner(connect_timeout=2, read_timeout=10))
    server.start()
    try:
        with pointed_at(
            app, server, HUBSPOT_RATE_LIMIT=(100_000, 10.0), HUBSPOT_RATE_LIMIT_MAX_WAIT=5.0
        ):
            yield server
    finally:
        server.stop()


@pytest.fixture
def autoseq_server(app, action_sandbox):
    """AutoSeq served over real HTTP (werkzeug, threaded) on a free port; PUBLIC_BASE_URL = it."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def world(app, action_sandbox, autoseq_server, workspace) -> World:
    """A portal with three reps, sequences (team and private), contacts; a connected workspace,
    synced; the action published to the sandbox."""
    state = action_sandbox.state
    portal = state.add_portal()
    ada = state.add_user(portal, "ada@acme.test", "Ada", "Admin", super_admin=True)
    bob = state.add_user(portal, "bob@acme.test", "Bob", "Seller")
    cyd = state.add_user(portal, "cyd@acme.test", "Cyd", "Closer")
    w = World(app, action_sandbox, portal, workspace, autoseq_server)
    w.users = {"ada": ada, "bob": bob, "cyd": cyd}
    w.sequences = {
        "team": state.add_sequence(portal, "Cold Outbound - SaaS Companies", ada.id, shared=True),
        "private": state.add_sequence(portal, "Personal Follow-up (Bob)", bob.id, shared=False),
        "doomed": state.add_sequence(portal, "Old Nurture", ada.id, shared=True),
    }
    state.add_contacts(portal, 50)
    body = oauth_tokens(action_sandbox, portal.id)
    connect_workspace(workspace.id, portal.id, body, hub_domain=portal.domain)
    w.sync()
    result = action_service.publish_action(app.config)
    w.definition_id = result.definition_id
    db.session.commit()
    return w


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
