"""Enrollments: one row per execution of the workflow action (per HubSpot callback id)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..extensions import db
from .base import UTCDateTime, utcnow

# The copy of a sequence's name kept on each enrollment is bounded: on PostgreSQL it rides in the
# covering (workspace_id, created_at) index, whose entries must stay under ~2.7 kB (migration
# 0002), and a name that broke the insert would lose the execution. 500 characters is 2 kB at most.
SEQUENCE_NAME_MAX = 500


class EnrollmentStatus(enum.StrEnum):
    """An enrollment's one state: ``queued`` (waiting for the contact's sequence to end too:
    ``wait_until`` set) until ``services/enrollment/outcome.finish`` gives it a finished state,
    which is also what the workflow's ``enrollment_status`` output says."""

    QUEUED = "queued"
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"  # HubSpot: the contact is in a sequence ("skip")
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self is not EnrollmentStatus.QUEUED

    @property
    def output(self) -> str:
        """HubSpot's ``enrollment_status`` output field (an unfinished row reads ``failed``)."""
        return self.value if self.finished else EnrollmentStatus.FAILED.value

    @property
    def counter(self) -> EnrollmentStatus:
        """What analytics counts it as, and the badge it shows: queued, enrolled or failed
        (a contact already in a sequence was not enrolled: it counts as failed)."""
        return EnrollmentStatus.FAILED if self is EnrollmentStatus.ALREADY_ENROLLED else self


FINISHED_STATUSES = tuple(s.value for s in EnrollmentStatus if s.finished)
# The statuses behind each analytics counter (and status filter): queued, enrolled, failed.
STATUS_COUNTERS = {
    c.value: tuple(s.value for s in EnrollmentStatus if s.counter is c)
    for c in (EnrollmentStatus.QUEUED, EnrollmentStatus.ENROLLED, EnrollmentStatus.FAILED)
}


class SendMode(enum.StrEnum):
    MAILBOX = "mailbox"
    ROTATION = "rotation"


# Columns the analytics aggregates read, carried in the (workspace_id, created_at) index.
ANALYTICS_INCLUDE = [
    "status",
    "sequence_id",
    "sequence_name",
    "workflow_id",
    "mailbox_id",
    "rotation_id",
    "failure_code",
]


class Enrollment(db.Model):
    """What one workflow execution asked for and what became of it. Analytics read this table.

    The sequence's HubSpot id and name are copied as they were, so history survives a rename or a
    deletion in HubSpot.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        # On PostgreSQL it also carries what the analytics page groups by, so the page's scans
        # of a period are index-only (bench/bench_analytics.py; migration 0002).
        Index(
            "ix_enrollments_ws_created",
            "workspace_id",
            "created_at",
            postgresql_include=ANALYTICS_INCLUDE,
        ),
        # A page filtered by two entities reads its rows through the more selective entity's
        # index, index-only on PostgreSQL (migration 0014).
        *(
            Index(
                f"ix_enrollments_ws_{entity}_created",
                "workspace_id",
                f"{entity}_id",
                "created_at",
                postgresql_include=[c for c in ANALYTICS_INCLUDE if c != f"{entity}_id"],
            )
            for entity in ("sequence", "workflow", "mailbox")
        ),
        Index("ix_enrollments_ws_rotation_created", "workspace_id", "rotation_id", "created_at"),
        Index("ix_enrollments_status_updated", "status", "updated_at"),
        # The queue: a drain claims a workspace's queued rows in id order (migration 0009).
        Index(
            "ix_enrollments_queued",
            "workspace_id",
            "id",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # Callbacks still to complete, sent in batches by the workspace's drain.
        Index(
            "ix_enrollments_callbacks_due",
            "workspace_id",
            "finished_at",
            postgresql_where=text("finished_at IS NOT NULL AND callback_completed_at IS NULL"),
            sqlite_where=text("finished_at IS NOT NULL AND callback_completed_at IS NULL"),
        ),
        # The unfinished rows, which the analytics page counts live (the rollups count the
        # finished ones: services/analytics/rollups.py; migration 0010).
        Index(
            "ix_enrollments_ws_queued",
            "workspace_id",
            "created_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # A reason filter reads its rows here (index-only on PostgreSQL; the rollups do not
        # serve it): only rows that have a failure code.
        Index(
            "ix_enrollments_ws_code_created",
            "workspace_id",
            "failure_code",
            "created_at",
            postgresql_include=ANALYTICS_INCLUDE[:-1],
            postgresql_where=text("failure_code IS NOT NULL"),
            sqlite_where=text("failure_code IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    callback_id: Mapped[str] = mapped_column(String(128), unique=True)
    portal_id: Mapped[int] = mapped_column(BigInteger)
    workflow_id: Mapped[str | None] = mapped_column(String(32))
    action_definition_id: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(32))
    # As HubSpot sent them with the execution (the definition's objectRequestOptions): no call.
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    sequence_id: Mapped[int | None] = mapped_column(ForeignKey("sequences.id", ondelete="SET NULL"))
    sequence_hubspot_id: Mapped[str] = mapped_column(String(32))
    sequence_name: Mapped[str] = mapped_column(Text, default="")
    send_mode: Mapped[str] = mapped_column(String(16), default=SendMode.MAILBOX.value)
    rotation_id: Mapped[int | None] = mapped_column(ForeignKey("rotations.id", ondelete="SET NULL"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    sender_email: Mapped[str | None] = mapped_column(String(254))
    input_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    # EnrollmentStatus: queued, then enrolled, already_enrolled or failed (changed only by
    # services/enrollment/outcome.finish)
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.QUEUED.value)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    hubspot_enrollment_id: Mapped[str | None] = mapped_column(String(64))
    # The drain job that has claimed this queued row (None: free to claim). A claim whose job
    # stopped beating is taken back by the sweep.
    job_id: Mapped[str | None] = mapped_column(String(64))
    # Not before this time (a transient HubSpot failure's backoff); None: due now.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Transient HubSpot failures so far (5xx, 429, timeouts): the sixth fails the enrollment.
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # HubSpot refused to complete the callback (expired, unknown): never retried, shown as such.
    callback_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sequence = relationship("Sequence", back_populates="enrollments")

    @validates("sequence_name")
    def _bound_sequence_name(self, key, value):
        return value[:SEQUENCE_NAME_MAX] if value else value

    mailbox = relationship("Mailbox")
    rotation = relationship("Rotation")

    # A deal, company or ticket workflow's execution enrolls one row per chosen contact under a
    # RecordExecution (whose callback id is HubSpot's); None for a contact workflow's execution.
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("record_executions.id", ondelete="CASCADE"), index=True
    )
    # The record the enrollment came from (deal, company or ticket), for analytics and the log.
    record_type: Mapped[str | None] = mapped_column(String(16))
    record_id: Mapped[str | None] = mapped_column(String(32))
    record_name: Mapped[str | None] = mapped_column(String(200))
    # "Already in a sequence: wait" (services/enrollment/waiting.py): while set, the queued row
    # waits for the contact's current sequence to end, checked at ``due_at``; it times out then.
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ExecutionStatus(enum.StrEnum):
    """A record execution's one state. Once every row has an outcome (or none could be made) it
    finishes with the ``enrollment_status`` output it reports (its callback is then due)."""

    QUEUED = "queued"  # its contacts not read yet
    EXPANDED = "expanded"  # one enrollment row per chosen contact, some still queued
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.EXPANDED)

    @property
    def output(self) -> str:
        """HubSpot's ``enrollment_status`` output field (an unfinished one reads ``failed``)."""
        return self.value if self.finished else ExecutionStatus.FAILED.value


UNFINISHED_EXECUTION = (ExecutionStatus.QUEUED.value, ExecutionStatus.EXPANDED.value)


class RecordExecution(db.Model):
    """One execution of the action in a deal, company or ticket workflow (one per callback id).

    The drain reads the record's associated contacts once (``status`` queued -> expanded, in the
    transaction that inserts the child enrollment rows), enrolls each through the ordinary rows,
    then finishes the execution with counts (``status`` enrolled, already_enrolled or failed: its
    ``enrollment_status`` output) and completes HubSpot's callback once.
    """

    __tablename__ = "record_executions"
    __table_args__ = (
        Index("ix_record_executions_ws_status", "workspace_id", "status"),
        Index(
            "ix_record_executions_callbacks_due",
            "workspace_id",
            "finished_at",
            postgresql_where=text("finished_at IS NOT NULL AND callback_completed_at IS NULL"),
            sqlite_where=text("finished_at IS NOT NULL AND callback_completed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    callback_id: Mapped[str] = mapped_column(String(128), unique=True)
    portal_id: Mapped[int] = mapped_column(BigInteger)
    workflow_id: Mapped[str | None] = mapped_column(String(32))
    action_definition_id: Mapped[str | None] = mapped_column(String(64))
    record_type: Mapped[str] = mapped_column(String(16))  # DEAL, COMPANY or TICKET
    record_id: Mapped[str] = mapped_column(String(32))
    record_name: Mapped[str | None] = mapped_column(String(200))
    # primary, all or label; the cap of "all"; the label of "label"
    choose: Mapped[str] = mapped_column(String(16), default="primary")
    max_contacts: Mapped[int] = mapped_column(Integer, default=10)
    label: Mapped[str | None] = mapped_column(String(200))
    sequence_hubspot_id: Mapped[str] = mapped_column(String(32))
    sequence_name: Mapped[str] = mapped_column(Text, default="")
    send_mode: Mapped[str] = mapped_column(String(16), default=SendMode.MAILBOX.value)
    mailbox_ref: Mapped[int | None] = mapped_column(Integer)
    rotation_ref: Mapped[int | None] = mapped_column(Integer)
    input_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ExecutionStatus.QUEUED.value)
    job_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    enrolled_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    sender_email: Mapped[str | None] = mapped_column(String(254))
    callback_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
