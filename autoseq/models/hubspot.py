"""The HubSpot side of a workspace: its portal connection and the portal's users."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class ConnectionStatus(enum.StrEnum):
    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"
    DISCONNECTED = "disconnected"


class HubSpotConnection(db.Model):
    """One per workspace; a portal belongs to at most one workspace.

    Tokens are stored encrypted (see :mod:`autoseq.hubspot.tokens`); they are never logged or shown.
    A disconnected connection keeps its row (and so the workspace's history) with the tokens erased.
    """

    __tablename__ = "hubspot_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True
    )
    portal_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    hub_domain: Mapped[str | None] = mapped_column(String(255))
    installed_by_email: Mapped[str | None] = mapped_column(String(254))
    installed_by_hubspot_user_id: Mapped[str | None] = mapped_column(String(32))
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The access token's lifetime as HubSpot gave it (``expires_in``): the refresh margin is never
    # more than half of it.
    token_lifetime: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ConnectionStatus.CONNECTED.value)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    workspace = relationship("Workspace")
    connected_by = relationship("User")

    @property
    def is_connected(self) -> bool:
        return self.status == ConnectionStatus.CONNECTED

    @property
    def needs_reconnect(self) -> bool:
        return self.status == ConnectionStatus.NEEDS_RECONNECT


class HubSpotUser(db.Model):
    """A user of the connected portal (a sales rep who may send sequences)."""

    __tablename__ = "hubspot_users"
    __table_args__ = (UniqueConstraint("workspace_id", "hubspot_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    hubspot_user_id: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(120), default="")
    last_name: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    has_seat: Mapped[bool] = mapped_column(Boolean, default=False)
    super_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    mailboxes = relationship("Mailbox", back_populates="hubspot_user", order_by="Mailbox.email")

    @property
    def full_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email


class PublishedAction(db.Model):
    """The *Enroll in sequence* workflow action definition as last published to HubSpot."""

    __tablename__ = "published_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[str] = mapped_column(String(32), unique=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    action_url: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    revision: Mapped[str | None] = mapped_column(String(32))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
