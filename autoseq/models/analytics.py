"""Analytics rollups: counts of finished enrollments, kept as the rows change.

One row counts the finished enrollments (``n_ok`` enrolled, ``n_failed`` failed) of a workspace
created within one UTC *bucket* (15 minutes, or a whole UTC day), for one *projection* (``dims``:
which of sequence, workflow, mailbox, rotation and failure code the row is keyed by; the others
hold their "none" value). Every real time zone's midnight falls on a 15-minute UTC
boundary, so a workspace's local days (in whatever zone it has today) are sums of whole buckets.
"None" is stored as 0 or '' so the key has no NULLs and can be upserted.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime


class RollupGrain(enum.IntEnum):
    QUARTER = 0  # 15 minutes
    DAY = 1  # a UTC day


class Dim(enum.IntFlag):
    """The dimensions a rollup row is keyed by (``dims`` is a combination of these)."""

    SEQUENCE = 1
    WORKFLOW = 2
    MAILBOX = 4
    ROTATION = 8
    CODE = 16  # the failure code (only in the reason breakdown's projections)


class EnrollmentRollup(db.Model):
    __tablename__ = "enrollment_rollups"
    __table_args__ = (
        # Reading one filtered value of a projection over a period.
        Index(
            "ix_enrollment_rollups_sequence",
            "workspace_id",
            "grain",
            "dims",
            "sequence_id",
            "bucket",
        ),
        Index(
            "ix_enrollment_rollups_workflow",
            "workspace_id",
            "grain",
            "dims",
            "workflow_id",
            "bucket",
        ),
        Index(
            "ix_enrollment_rollups_mailbox", "workspace_id", "grain", "dims", "mailbox_id", "bucket"
        ),
        Index(
            "ix_enrollment_rollups_rotation",
            "workspace_id",
            "grain",
            "dims",
            "rotation_id",
            "bucket",
        ),
    )

    # The key (the primary key also serves reading a whole projection over a period).
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    grain: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    dims: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rotation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    failure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence_name: Mapped[str] = mapped_column(Text, primary_key=True)
    # The counts.
    n_ok: Mapped[int] = mapped_column(BigInteger, default=0)
    n_failed: Mapped[int] = mapped_column(BigInteger, default=0)
