"""Sequences synced from HubSpot."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    DDL,
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

# The workflow editor's dropdown orders sequences by their name, case-insensitively, on this many
# leading characters (an index entry stays small however long a name HubSpot sends).
SORT_PREFIX = 200


class SequenceState(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DRAFT = "draft"
    ARCHIVED = "archived"
    UNKNOWN = "unknown"


class Sharing(enum.StrEnum):
    TEAM = "team"
    PRIVATE = "private"


class Sequence(db.Model):
    """A HubSpot sequence as last synced.

    ``sender_user_ids`` holds the HubSpot user ids that see the sequence, i.e. who may send it
    (hubspot-api.md §2 Decision). A sequence HubSpot no longer lists gets ``removed_at`` and leaves
    every list and dropdown; its enrollments keep pointing at it, so history stays.
    """

    __tablename__ = "sequences"
    __table_args__ = (
        UniqueConstraint("workspace_id", "hubspot_id"),
        Index("ix_sequences_workspace_removed_name", "workspace_id", "removed_at", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    hubspot_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text, default="")
    owner_hubspot_user_id: Mapped[str | None] = mapped_column(String(32))
    folder_id: Mapped[str | None] = mapped_column(String(32))
    hs_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hs_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default=SequenceState.UNKNOWN.value)
    sharing: Mapped[str] = mapped_column(String(16), default=Sharing.PRIVATE.value)
    sender_user_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    enrollments = relationship("Enrollment", back_populates="sequence", lazy="dynamic")

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    def may_be_sent_by(self, hubspot_user_id: str) -> bool:
        """True when HubSpot lets this user enroll contacts into the sequence."""
        return hubspot_user_id in (self.sender_user_ids or [])


def sort_key(name_column=Sequence.name):
    """``lower(substr(name, 1, 200))``: the dropdown's order and search (index below).

    The two numbers are written into the SQL, never bound: a prepared statement's generic plan
    sees ``substr(name, $1, $2)``, which is not the index's expression, and sorts the workspace.
    """
    return func.lower(
        func.substr(name_column, literal_column("1"), literal_column(str(SORT_PREFIX)))
    )


# The dropdown's query (live sequences of one workspace, in sort_key order, keyset-paged) reads
# this index in order and stops after a page: no sort of the whole workspace per call (migration
# 0004; bench/bench_options.py).
Index(
    "ix_sequences_options",
    Sequence.workspace_id,
    sort_key(),
    Sequence.id,
    postgresql_where=Sequence.removed_at.is_(None),
    sqlite_where=Sequence.removed_at.is_(None),
)


# Every sync stamps each live row's last_synced_at: with full pages each stamp was a new row
# version on another page, entered into all five indexes (the trigram one the dearest). Pages
# kept half free let PostgreSQL write it beside the old version and touch no index (a HOT update;
# the next sync's read prunes the old one). 100,000 rows at load 10-13: 6.0-7.3 s full, 3.1-4.2 s
# at 70 (40-80 % HOT), 1.9-2.2 s at 50 (all HOT). Migration 0015 sets it on existing databases.
SEQUENCES_FILLFACTOR = 50
event.listen(
    Sequence.__table__,
    "after_create",
    DDL(f"ALTER TABLE sequences SET (fillfactor = {SEQUENCES_FILLFACTOR})").execute_if(
        dialect="postgresql"
    ),
)
