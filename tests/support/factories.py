"""Rows written directly, as sync and the product would write them. Plain functions: call them
inside an app context (every test has one). Each commits unless told otherwise."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from autoseq.extensions import db
from autoseq.models import (
    Enrollment,
    EnrollmentStatus,
    FailureCode,
    HubSpotUser,
    Mailbox,
    MailboxKind,
    Rotation,
    RotationMember,
    Sequence,
    Sharing,
)

_ids = itertools.count(1000)


def next_id() -> int:
    """A number no other factory call returned in this process (HubSpot ids, emails...)."""
    return next(_ids)


def make_hubspot_user(
    workspace, email=None, *, active=True, has_seat=True, **fields
) -> HubSpotUser:
    """A synced HubSpot user with its default mailbox (the login email), as sync creates them."""
    n = next_id()
    user = HubSpotUser(
        workspace_id=workspace.id,
        hubspot_user_id=fields.pop("hubspot_user_id", str(n)),
        owner_id=fields.pop("owner_id", str(n + 50_000)),
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
    """The user's default mailbox (its login email)."""
    return db.session.scalar(db.select(Mailbox).filter_by(hubspot_user_id=user.id, is_default=True))


def make_mailbox(user: HubSpotUser, email: str, **fields) -> Mailbox:
    """Another mailbox of ``user`` (an inbox or alias; any column in ``fields``)."""
    mailbox = Mailbox(
        workspace_id=user.workspace_id, hubspot_user_id=user.id, email=email, **fields
    )
    db.session.add(mailbox)
    db.session.commit()
    return mailbox


def make_sender(workspace, email=None) -> Mailbox:
    """A new HubSpot user's default mailbox: one sender, when the user does not matter."""
    return default_mailbox(make_hubspot_user(workspace, email))


def make_sequence(
    workspace,
    name="Demo follow-up",
    *,
    owner=None,
    senders=(),
    private=False,
    removed=False,
    **fields,
) -> Sequence:
    """A synced sequence owned by ``owner`` (a HubSpot user, or None); ``senders`` (HubSpot
    users) see it, the owner always does. ``removed``: gone from HubSpot (kept for history)."""
    sender_ids = [u.hubspot_user_id for u in senders]
    if owner is not None and owner.hubspot_user_id not in sender_ids:
        sender_ids.insert(0, owner.hubspot_user_id)
    sequence = Sequence(
        workspace_id=workspace.id,
        hubspot_id=fields.pop("hubspot_id", str(next_id())),
        name=name,
        owner_hubspot_user_id=owner.hubspot_user_id if owner else None,
        sharing=(Sharing.PRIVATE if private else Sharing.TEAM).value,
        sender_user_ids=sender_ids,
        removed_at=datetime.now(UTC) if removed else None,
        **fields,
    )
    db.session.add(sequence)
    db.session.commit()
    return sequence


def make_rotation(
    workspace, mailboxes=(), *, weights=None, name="Inbound", reset="never"
) -> Rotation:
    """A rotation over ``mailboxes`` (in order; weighted when ``weights`` are given)."""
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


def make_enrollment(
    workspace,
    created_at=None,
    sequence=None,
    status=EnrollmentStatus.ENROLLED,
    commit=True,
    **fields,
) -> Enrollment:
    """One enrollment row as the pipeline leaves it; every column can be overridden. A failed
    one gets a failure code and reason unless given (already_enrolled: HubSpot's refusal)."""
    n = next_id()
    values = {
        "workspace_id": workspace.id,
        "callback_id": f"cb-{n}",
        "portal_id": 62515,
        "workflow_id": "111",
        "contact_id": str(1000 + n),
        "sequence_id": sequence.id if sequence else None,
        "sequence_hubspot_id": sequence.hubspot_id if sequence else "1",
        "sequence_name": sequence.name if sequence else "Some sequence",
        "status": EnrollmentStatus(status).value,
        "attempts": 1,
        "created_at": created_at or datetime.now(UTC) - timedelta(hours=1),
    }
    if status == EnrollmentStatus.FAILED:
        values.setdefault("failure_code", FailureCode.UNSUBSCRIBED.value)
        values.setdefault("failure_reason", "The contact unsubscribed.")
    elif status == EnrollmentStatus.ALREADY_ENROLLED:
        values.setdefault("failure_code", FailureCode.ALREADY_ENROLLED.value)
        values.setdefault("failure_reason", "Contact is already enrolled in a sequence")
    values.update(fields)
    row = Enrollment(**values)
    db.session.add(row)
    if commit:
        db.session.commit()
    return row
