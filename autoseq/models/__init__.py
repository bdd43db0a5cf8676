"""The models, one module per aggregate; imported here so Alembic and the app see them all."""

from .accounts import Membership, Role, User, Workspace
from .analytics import Dim, EnrollmentRollup, RollupGrain
from .enrollments import (
    FINISHED_STATUSES,
    STATUS_COUNTERS,
    UNFINISHED_EXECUTION,
    Enrollment,
    EnrollmentStatus,
    ExecutionStatus,
    RecordExecution,
    SendMode,
)
from .failures import FailureCode
from .hubspot import ConnectionStatus, HubSpotConnection, HubSpotUser, PublishedAction
from .mailboxes import (
    DEFAULT_DAILY_CAP,
    Mailbox,
    MailboxKind,
    MailboxStatus,
    ResetPeriod,
    Rotation,
    RotationMember,
    RotationMode,
)
from .sequences import Sequence, SequenceState, Sharing
from .sync import SyncRun, SyncStatus, SyncTrigger
from .system import Heartbeat
from .workflows import Workflow

__all__ = [
    "Workflow",
    "Dim",
    "EnrollmentRollup",
    "RollupGrain",
    "DEFAULT_DAILY_CAP",
    "ConnectionStatus",
    "Enrollment",
    "FailureCode",
    "EnrollmentStatus",
    "FINISHED_STATUSES",
    "STATUS_COUNTERS",
    "UNFINISHED_EXECUTION",
    "ExecutionStatus",
    "RecordExecution",
    "Heartbeat",
    "HubSpotConnection",
    "HubSpotUser",
    "Mailbox",
    "MailboxKind",
    "MailboxStatus",
    "Membership",
    "PublishedAction",
    "ResetPeriod",
    "Role",
    "Rotation",
    "RotationMember",
    "RotationMode",
    "SendMode",
    "Sequence",
    "SequenceState",
    "Sharing",
    "SyncRun",
    "SyncStatus",
    "SyncTrigger",
    "User",
    "Workspace",
]
