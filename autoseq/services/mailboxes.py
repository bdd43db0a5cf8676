"""Mailboxes and rotations: what the Mailboxes & Rotations pages read and change.

Choosing a sender is :mod:`autoseq.services.senders`; this module manages the rows it reads.
Every function takes a workspace id or rows already scoped to one; nothing here sees a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func

from ..extensions import db
from ..models import (
    DEFAULT_DAILY_CAP,
    Enrollment,
    EnrollmentStatus,
    HubSpotUser,
    Mailbox,
    MailboxKind,
    MailboxStatus,
    Rotation,
    RotationMember,
    RotationMode,
    Workspace,
)
from . import senders

USAGE_WINDOW = timedelta(days=90)


class MailboxError(ValueError):
    """A change that cannot be made; ``field`` names the form field the message belongs beside."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --- mailboxes ------------------------------------------------------------------------------------


def hubspot_users(workspace_id: int) -> list[HubSpotUser]:
    """The workspace's synced HubSpot users, by email, with their mailboxes loaded."""
    return list(
        db.session.scalars(
            db.select(HubSpotUser)
            .filter_by(workspace_id=workspace_id)
            .order_by(HubSpotUser.email)
            .options(db.selectinload(HubSpotUser.mailboxes))
        )
    )


def workspace_mailboxes(workspace_id: int) -> list[Mailbox]:
    """Every mailbox of the workspace, by email."""
    return list(
        db.session.scalars(
            db.select(Mailbox)
            .filter_by(workspace_id=workspace_id)
            .order_by(Mailbox.email)
            .options(db.joinedload(Mailbox.hubspot_user))
        )
    )


def mailbox_state(mailbox: Mailbox, today: date | None = None) -> tuple[str, str]:
    """(badge state, label) for a mailbox: ok, disconnected, paused, or out of office until."""
    today = today or datetime.now(UTC).date()
    if mailbox.status == MailboxStatus.DISCONNECTED:
        return "disconnected", "Disconnected"
    if mailbox.status == MailboxStatus.PAUSED:
        return "paused", "Paused by an admin"
    if mailbox.out_of_office_until and mailbox.out_of_office_until >= today:
        return "ooo", f"Out of office until {mailbox.out_of_office_until.isoformat()}"
    return "ok", "OK"


def add_mailbox(
    workspace_id: int,
    hubspot_user_id: int,
    email: str,
    *,
    kind: str = MailboxKind.INBOX.value,
    inbox_email: str | None = None,
    daily_cap: int = DEFAULT_DAILY_CAP,
) -> Mailbox:
    """Add an inbox address or a sender alias for one of the workspace's HubSpot users.

    An alias sends through one of the user's inboxes (its ``senderEmail``); without one given, the
    user's login email. Raises :class:`MailboxError` for a duplicate or a foreign user.
    """
    user = db.session.scalar(
        db.select(HubSpotUser).filter_by(id=hubspot_user_id, workspace_id=workspace_id)
    )
    if user is None:
        raise MailboxError("hubspot_user_id", "Pick one of this workspace's HubSpot users.")
    email = email.strip().lower()
    duplicate = db.select(Mailbox.id).where(
        Mailbox.workspace_id == workspace_id, func.lower(Mailbox.email) == email
    )
    if db.session.scalar(duplicate):
        raise MailboxError("email", "This workspace already has a mailbox with this address.")
    _check_cap(daily_cap)
    if kind == MailboxKind.ALIAS:
        inbox_email = (inbox_email or user.email).strip().lower()
        inboxes = {m.email.lower() for m in user.mailboxes if m.kind == MailboxKind.INBOX}
        if inbox_email not in inboxes:
            raise MailboxError("inbox_email", f"{inbox_email} is not an inbox of {user.email}.")
    else:
        inbox_email = None
    mailbox = Mailbox(
        workspace_id=workspace_id,
        hubspot_user_id=user.id,
        email=email,
        kind=kind,
        inbox_email=inbox_email,
        is_default=False,
        daily_cap=daily_cap,
    )
    db.session.add(mailbox)
    db.session.commit()
    return mailbox


def _check_cap(daily_cap) -> None:
    if daily_cap is None or not 1 <= int(daily_cap) <= senders.HUBSPOT_MAX_DAILY_CAP:
        raise MailboxError(
            "daily_cap", "The daily cap must be between 1 and 1,000 (HubSpot's maximum)."
        )


def update_mailbox(
    mailbox: Mailbox, *, daily_cap: int, status: str, out_of_office_until: date | None
) -> Mailbox:
    """Change a mailbox's cap, status (ok, paused, disconnected) and out-of-office date."""
    _check_cap(daily_cap)
    if status not in {s.value for s in MailboxStatus}:
        raise MailboxError("status", "Unknown status.")
    if status == MailboxStatus.OK and mailbox.status == MailboxStatus.DISCONNECTED:
        mailbox.disconnect_reason = None  # an admin reconnected it
    mailbox.daily_cap = int(daily_cap)
    mailbox.status = status
    mailbox.out_of_office_until = out_of_office_until
    db.session.commit()
    return mailbox


def delete_mailbox(mailbox: Mailbox) -> None:
    """Remove an added mailbox (never a user's default one, which sync owns) and its memberships."""
    if mailbox.is_default:
        raise MailboxError("mailbox", "A user's default mailbox comes from HubSpot and stays.")
    db.session.execute(db.delete(RotationMember).filter_by(mailbox_id=mailbox.id))
    db.session.delete(mailbox)
    db.session.commit()


# --- rotations ------------------------------------------------------------------------------------


def rotations(workspace_id: int) -> list[Rotation]:
    """The workspace's rotations that are not deleted, by name."""
    return list(
        db.session.scalars(
            db.select(Rotation)
            .filter_by(workspace_id=workspace_id, deleted_at=None)
            .order_by(Rotation.name)
            .options(db.selectinload(Rotation.members).joinedload(RotationMember.mailbox))
        )
    )


def _validate_members(workspace_id: int, mode: str, members: list[tuple[int, int | None]]):
    ids = [mailbox_id for mailbox_id, _ in members]
    if len(set(ids)) != len(ids):
        raise MailboxError("members", "A mailbox can be in a rotation only once.")
    if ids:
        found = set(
            db.session.scalars(
                db.select(Mailbox.id).where(
                    Mailbox.workspace_id == workspace_id, Mailbox.id.in_(ids)
                )
            )
        )
        if found != set(ids):
            raise MailboxError("members", "Pick mailboxes of this workspace only.")
    if mode == RotationMode.WEIGHTED:
        weights = [w for _, w in members]
        if any(w is None or not 1 <= w <= 100 for w in weights):
            raise MailboxError("members", "Each weight is a percentage from 1 to 100.")
        if members and sum(weights) != 100:
            raise MailboxError(
                "members", f"The weights add up to {sum(weights)}%; they must add up to 100%."
            )


def save_rotation(
    workspace_id: int,
    rotation: Rotation | None,
    *,
    name: str,
    mode: str,
    reset_period: str,
    members: list[tuple[int, int | None]],
) -> Rotation:
    """Create (``rotation`` None) or update a rotation with its members in order.

    ``members`` is [(mailbox_id, weight)], in rotation order; weights are percentages for a
    weighted rotation (each 1..100, summing to 100) and ignored for an even one. Raises
    :class:`MailboxError` and saves nothing when the input is wrong.
    """
    _validate_members(workspace_id, mode, members)
    if rotation is None:
        rotation = Rotation(workspace_id=workspace_id)
        db.session.add(rotation)
    rotation.name = name.strip()
    rotation.mode = mode
    rotation.reset_period = reset_period
    existing = {m.mailbox_id: m for m in rotation.members}
    kept = []
    for position, (mailbox_id, weight) in enumerate(members):
        member = existing.pop(mailbox_id, None) or RotationMember(mailbox_id=mailbox_id)
        member.weight = int(weight) if mode == RotationMode.WEIGHTED else 1
        member.position = position
        kept.append(member)
    rotation.members = kept
    db.session.commit()
    return rotation


def move_member(rotation: Rotation, member_id: int, direction: str) -> None:
    """Move one member up or down in its rotation's order."""
    members = list(rotation.members)
    index = next((i for i, m in enumerate(members) if m.id == member_id), None)
    if index is None:
        return
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(members):
        return
    members[index], members[other] = members[other], members[index]
    for position, member in enumerate(members):
        member.position = position
    db.session.commit()
    db.session.refresh(rotation)


@dataclass
class RotationUsage:
    enrollments_90d: int
    workflow_ids: list[str]

    @property
    def in_use(self) -> bool:
        return bool(self.enrollments_90d or self.workflow_ids)


def rotation_usage(rotation: Rotation, now: datetime | None = None) -> RotationUsage:
    """How much a rotation is used: its enrollments of the last 90 days, the workflows naming it."""
    now = now or datetime.now(UTC)
    recent = db.session.scalar(
        db.select(func.count(Enrollment.id)).where(
            Enrollment.workspace_id == rotation.workspace_id,
            Enrollment.rotation_id == rotation.id,
            Enrollment.created_at >= now - USAGE_WINDOW,
        )
    )
    workflows = db.session.scalars(
        db.select(Enrollment.workflow_id)
        .where(
            Enrollment.workspace_id == rotation.workspace_id,
            Enrollment.rotation_id == rotation.id,
            Enrollment.workflow_id.is_not(None),
        )
        .distinct()
        .order_by(Enrollment.workflow_id)
    )
    return RotationUsage(int(recent or 0), list(workflows))


def delete_rotation(rotation: Rotation, now: datetime | None = None) -> None:
    """Soft-delete: it leaves every list; executions that still name it fail ROTATION_DELETED."""
    rotation.deleted_at = now or datetime.now(UTC)
    db.session.commit()


@dataclass
class SpreadRow:
    mailbox: Mailbox
    target_pct: float
    count: int
    actual_pct: float


def rotation_spread(rotation: Rotation, now: datetime | None = None):
    """How the rotation's enrollments were spread since its current period began, vs the weights.

    Returns (period start or None, total, [SpreadRow]) counting enrolled Enrollment rows.
    """
    now = now or datetime.now(UTC)
    workspace = db.session.get(Workspace, rotation.workspace_id)
    start = senders.period_start(rotation.reset_period, now, workspace.timezone)
    query = (
        db.select(Enrollment.mailbox_id, func.count(Enrollment.id))
        .where(
            Enrollment.workspace_id == rotation.workspace_id,
            Enrollment.rotation_id == rotation.id,
            Enrollment.status == EnrollmentStatus.ENROLLED.value,
        )
        .group_by(Enrollment.mailbox_id)
    )
    if start is not None:
        query = query.where(Enrollment.created_at >= start)
    counts = {mailbox_id: n for mailbox_id, n in db.session.execute(query)}
    total = sum(counts.values())
    members = list(rotation.members)
    weight_total = sum((m.weight if rotation.mode == RotationMode.WEIGHTED else 1) for m in members)
    rows = []
    for member in members:
        weight = member.weight if rotation.mode == RotationMode.WEIGHTED else 1
        count = counts.get(member.mailbox_id, 0)
        rows.append(
            SpreadRow(
                member.mailbox,
                100.0 * weight / weight_total if weight_total else 0.0,
                count,
                100.0 * count / total if total else 0.0,
            )
        )
    return start, total, rows
