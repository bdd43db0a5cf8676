"""Factories for the sender side: HubSpot users, sequences, mailboxes and rotations as real rows
(from ``tests/support/factories.py``, importable from here as before)."""

from __future__ import annotations

import pytest

from tests.support.factories import (  # noqa: F401  (imported from here by the tests)
    default_mailbox,
    make_hubspot_user,
    make_mailbox,
    make_rotation,
    make_sequence,
)


@pytest.fixture
def factories():
    """The factory functions, for tests outside this folder."""
    return {
        "user": make_hubspot_user,
        "mailbox": make_mailbox,
        "sequence": make_sequence,
        "rotation": make_rotation,
    }
