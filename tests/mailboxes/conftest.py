"""Factories for the sender side: HubSpot users, sequences, mailboxes and rotations as real rows."""

from __future__ import annotations

import itertools

import pytest

from autoseq.extensions import db
from autoseq.models import (
    HubSpotUser,
    Mailbox,
    MailboxKind,
    Rotation,
    RotationMember,
    Sequence,
    Sharing,
)

_ids = itertools.count(1000)


def make_hubspot_user(
    workspace, email=None, *, active=True, has_seat=True, **fields
) -> HubSpotUser:
    """A synced HubSpot user with its default mailbox (the login email), as sync creates them."""
    n = next(_ids)
    user = HubSpotUser(
        workspace_id=workspace.id,
        hubspot_user_id=fields.pop("hubspot_user_id", str(n)),
        owner_id=str(n + 50_000),
        email=email or f"rep{n}@example.com",
        first_name=fields.pop("first_name", "Rep"),
        last_name=fields.pop("last_name", str(n)),
        active=active,
        has_seat=has_seat,
        **fields,
    )
    db.session.add(user)
    db.session.flush()
    db.session.add(
        Mailbox(
            workspace_id=workspace.id,
            hubspot_user_id=user.id,
            email=user.email,
            kind=MailboxKind.INBOX.value,
            is_default=True,
        )
    )
    db.session.commit()
    return user


def default_mailbox(user: HubSpotUser) -> Mailbox:
    return db.session.scalar(db.select(Mailbox).filter_by(hubspot_user_id=user.id, is_default=True))


def make_mailbox(user: HubSpotUser, email: str, **fields) -> Mailbox:
    mailbox = Mailbox(
        workspace_id=user.workspace_id, hubspot_user_id=user.id, email=email, **fields
    )
    db.session.add(mailbox)
    db.session.commit()
    return mailbox


def make_sequence(workspace, name="Demo follow-up", *, owner=None, senders=(), private=False):
    """A sequence owned by ``owner``; ``senders`` (HubSpot users) see it, the owner always does."""
    sender_ids = [u.hubspot_user_id for u in senders]
    if owner is not None and owner.hubspot_user_id not in sender_ids:
        sender_ids.insert(0, owner.hubspot_user_id)
    sequence = Sequence(
        workspace_id=workspace.id,
        hubspot_id=str(next(_ids)),
        name=name,
        owner_hubspot_user_id=owner.hubspot_user_id if owner else None,
        sharing=(Sharing.PRIVATE if private else Sharing.TEAM).value,
        sender_user_ids=sender_ids,
    )
    db.session.add(sequence)
    db.session.commit()
    return sequence


def make_rotation(workspace, mailboxes, *, weights=None, name="Inbound", reset="never") -> Rotation:
    rotation = Rotation(
        workspace_id=workspace.id,
        name=name,
        mode="weighted" if weights else "even",
        reset_period=reset,
    )
    for position, mailbox in enumerate(mailboxes):
        weight = weights[position] if weights else 1
        rotation.members.append(
            RotationMember(mailbox_id=mailbox.id, weight=weight, position=position)
        )
    db.session.add(rotation)
    db.session.commit()
    return rotation


@pytest.fixture
def factories():
    """The factory functions, for tests outside this folder."""
    return {
        "user": make_hubspot_user,
        "mailbox": make_mailbox,
        "sequence": make_sequence,
        "rotation": make_rotation,
    }
