"""Who sends: mailboxes of HubSpot users, and rotations over them."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

DEFAULT_DAILY_CAP = 1000


class MailboxStatus(enum.StrEnum):
    OK = "ok"
    DISCONNECTED = "disconnected"
    PAUSED = "paused"


class MailboxKind(enum.StrEnum):
    INBOX = "inbox"
    ALIAS = "alias"


class RotationMode(enum.StrEnum):
    EVEN = "even"
    WEIGHTED = "weighted"


class ResetPeriod(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    NEVER = "never"


class Mailbox(db.Model):
    """An inbox (or sender alias) a HubSpot user sends sequence email from.

    A user's login email is their default mailbox (hubspot-api.md §3 Decision); admins may add more.
    """

    __tablename__ = "mailboxes"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    hubspot_user_id: Mapped[int] = mapped_column(
        ForeignKey("hubspot_users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(16), default=MailboxKind.INBOX.value)
    # For an alias: the connected inbox it sends through (senderEmail);
    # the alias itself goes to HubSpot as senderAliasAddress.
    inbox_email: Mapped[str | None] = mapped_column(String(254))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_cap: Mapped[int] = mapped_column(Integer, default=DEFAULT_DAILY_CAP)
    status: Mapped[str] = mapped_column(String(16), default=MailboxStatus.OK.value)
    # Why HubSpot made us mark it disconnected (its NO_CONNECTED_INBOX message); cleared when an
    # admin sets it back to ok.
    disconnect_reason: Mapped[str | None] = mapped_column(String(500))
    out_of_office_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    hubspot_user = relationship("HubSpotUser", back_populates="mailboxes")


class Rotation(db.Model):
    """A named group of mailboxes that share enrollments evenly or by weight."""

    __tablename__ = "rotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(16), default=RotationMode.EVEN.value)
    reset_period: Mapped[str] = mapped_column(String(16), default=ResetPeriod.NEVER.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    members: Mapped[list[RotationMember]] = relationship(
        back_populates="rotation",
        cascade="all, delete-orphan",
        order_by="RotationMember.position",
    )


class RotationMember(db.Model):
    __tablename__ = "rotation_members"
    __table_args__ = (UniqueConstraint("rotation_id", "mailbox_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    position: Mapped[int] = mapped_column(Integer, default=0)

    rotation: Mapped[Rotation] = relationship(back_populates="members")
    mailbox: Mapped[Mailbox] = relationship()
