"""Fixtures for the analytics tests: sequences, senders and enrollment rows written directly."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from autoseq.extensions import db
from autoseq.models import Enrollment, HubSpotUser, Mailbox, Rotation, Sequence

_ids = itertools.count(1)


@pytest.fixture
def make_sequence():
    def make(workspace, name="Cold Outbound - SaaS Companies", removed=False):
        n = next(_ids)
        seq = Sequence(
            workspace_id=workspace.id,
            hubspot_id=str(5000 + n),
            name=name,
            removed_at=datetime.now(UTC) if removed else None,
        )
        db.session.add(seq)
        db.session.commit()
        return seq

    return make


@pytest.fixture
def make_mailbox():
    def make(workspace, email=None):
        n = next(_ids)
        email = email or f"rep{n}@example.com"
        user = HubSpotUser(workspace_id=workspace.id, hubspot_user_id=str(900 + n), email=email)
        db.session.add(user)
        db.session.flush()
        box = Mailbox(workspace_id=workspace.id, hubspot_user_id=user.id, email=email)
        db.session.add(box)
        db.session.commit()
        return box

    return make


@pytest.fixture
def make_rotation():
    def make(workspace, name="SDR round robin"):
        rotation = Rotation(workspace_id=workspace.id, name=name)
        db.session.add(rotation)
        db.session.commit()
        return rotation

    return make


@pytest.fixture
def make_enrollment():
    """Insert one enrollment row; every column can be overridden."""

    def make(workspace, created_at=None, sequence=None, status="enrolled", commit=True, **fields):
        n = next(_ids)
        values = {
            "workspace_id": workspace.id,
            "callback_id": f"cb-{n}",
            "portal_id": 62515,
            "workflow_id": "111",
            "contact_id": str(1000 + n),
            "sequence_id": sequence.id if sequence else None,
            "sequence_hubspot_id": sequence.hubspot_id if sequence else "1",
            "sequence_name": sequence.name if sequence else "Some sequence",
            "status": status,
            "outcome": {"enrolled": "enrolled", "failed": "failed"}.get(status),
            "attempts": 1,
            "created_at": created_at or datetime.now(UTC) - timedelta(hours=1),
        }
        if status == "failed":
            values.setdefault("failure_code", "UNSUBSCRIBED")
            values.setdefault("failure_reason", "The contact unsubscribed.")
        values.update(fields)
        row = Enrollment(**values)
        db.session.add(row)
        if commit:
            db.session.commit()
        return row

    return make


@pytest.fixture
def scattered(workspace, make_sequence, make_mailbox, make_rotation, make_enrollment):
    """~300 enrollments over the last 70 days across 3 sequences, 3 workflows, 2 mailboxes,
    a rotation and 3 failure codes, with a fixed seed. Returns the inserted rows."""
    rng = random.Random(8)
    seqs = [make_sequence(workspace, name) for name in ("Alpha", "Beta", "Gamma")]
    boxes = [make_mailbox(workspace) for _ in range(2)]
    rotation = make_rotation(workspace)
    now = datetime.now(UTC)
    rows = []
    for _ in range(300):
        status = rng.choice(["enrolled"] * 6 + ["failed"] * 3 + ["queued"])
        extra = {}
        if status == "failed":
            extra["failure_code"] = rng.choice(["UNSUBSCRIBED", "BOUNCED", "PERMISSION_DENIED"])
        rows.append(
            make_enrollment(
                workspace,
                created_at=now - timedelta(seconds=rng.randint(60, 70 * 86400)),
                sequence=rng.choice(seqs),
                status=status,
                workflow_id=rng.choice(["101", "202", "303"]),
                mailbox_id=rng.choice(boxes).id,
                rotation_id=rng.choice([None, rotation.id]),
                commit=False,
                **extra,
            )
        )
    db.session.commit()
    return rows
