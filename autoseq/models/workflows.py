"""HubSpot workflows (flows) as last synced: their names, so pages never show a bare id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class Workflow(db.Model):
    """One HubSpot workflow of the workspace's portal (``GET /automation/v4/flows``)."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("workspace_id", "hubspot_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    hubspot_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text, default="")
    is_enabled: Mapped[bool | None] = mapped_column(default=None)
    object_type_id: Mapped[str | None] = mapped_column(String(16))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
