"""The first-run checklist: the steps a new workspace goes through, each with its state."""

from __future__ import annotations

from dataclasses import dataclass

from ..extensions import db
from ..models import (
    ConnectionStatus,
    Enrollment,
    HubSpotConnection,
    PublishedAction,
    Rotation,
    SyncRun,
    SyncStatus,
)


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    done: bool
    optional: bool = False


def first_run_steps(workspace_id: int, app_id: str | None) -> list[Step]:
    """Connect HubSpot, first sync, action published, a rotation (optional), first enrollment."""

    def exists(query) -> bool:
        return db.session.scalar(query.limit(1)) is not None

    connected = exists(
        db.select(HubSpotConnection.id).where(
            HubSpotConnection.workspace_id == workspace_id,
            HubSpotConnection.status == ConnectionStatus.CONNECTED.value,
        )
    )
    synced = exists(
        db.select(SyncRun.id).where(
            SyncRun.workspace_id == workspace_id, SyncRun.status == SyncStatus.SUCCEEDED.value
        )
    )
    published = bool(app_id) and exists(
        db.select(PublishedAction.id).where(
            PublishedAction.app_id == str(app_id), PublishedAction.published.is_(True)
        )
    )
    rotation = exists(db.select(Rotation.id).where(Rotation.workspace_id == workspace_id))
    enrolled = exists(db.select(Enrollment.id).where(Enrollment.workspace_id == workspace_id))
    return [
        Step("connect", "Connect your HubSpot portal", connected),
        Step("sync", "First sync of sequences, users and mailboxes", synced),
        Step("action", "The “Enroll in sequence” action is published to HubSpot", published),
        Step("rotation", "Set up a rotation of mailboxes", rotation, optional=True),
        Step("enroll", "A HubSpot workflow enrolls its first contact", enrolled),
    ]
