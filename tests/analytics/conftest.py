"""Fixtures for the analytics tests: sequences, senders and enrollment rows written directly."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from autoseq.extensions import db
from tests.support import factories


@pytest.fixture
def make_sequence():
    """``make_sequence(workspace, name, removed=False)``: ``factories.make_sequence``."""

    def make(workspace, name="Cold Outbound - SaaS Companies", removed=False, **fields):
        return factories.make_sequence(workspace, name, removed=removed, **fields)

    return make


@pytest.fixture
def make_mailbox():
    """``make_mailbox(workspace, email=None)``: a new HubSpot user's default mailbox."""
    return factories.make_sender


@pytest.fixture
def make_rotation():
    """``make_rotation(workspace, name)``: a rotation with no mailboxes."""

    def make(workspace, name="SDR round robin"):
        return factories.make_rotation(workspace, name=name)

    return make


@pytest.fixture
def make_enrollment():
    """Insert one enrollment row; every column can be overridden."""
    return factories.make_enrollment


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
