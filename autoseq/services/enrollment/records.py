"""Deal, company and ticket workflows: one execution, one enrollment row per chosen contact.

A record workflow's execution is a :class:`~autoseq.models.RecordExecution` (one per callback id,
recorded by :mod:`.intake`). The workspace's drain claims it like a row (``job_id``, guarded),
reads the record's associated contacts through the rate-limited client, and in ONE transaction
inserts one queued enrollment row per chosen contact (callback id ``<callback>~<contact>``,
unique) and marks the execution ``expanded``: a worker killed before that commit leaves the
execution queued (the sweep frees its claim) and nothing half-written; after it, the rows are the
ordinary queue (exactly once per row, :mod:`.delivery`). Once none of its rows is queued,
:func:`settle` finishes the execution with its counts (:func:`.outcome.finish_execution`) and its
callback is completed once, with the other completions (:mod:`.callbacks`).

Whom to enroll (the action's ``contacts_to_enroll`` input):

- ``primary``: the contact carrying a "Primary" association label, if any, else the earliest
  association (the first HubSpot lists);
- ``all``: every associated contact in association order, at most ``max_contacts`` (default 10,
  at most 100);
- ``label``: the contacts whose association carries the chosen label (its type id, from the
  labels API), at most 100.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...hubspot import errors
from ...hubspot.oauth import RECORD_SCOPES
from ...models import (
    UNFINISHED_EXECUTION,
    Enrollment,
    EnrollmentStatus,
    ExecutionStatus,
    RecordExecution,
)
from ...models.base import utcnow
from ...models.failures import FailureCode
from .claims import claim_rows
from .delivery import RETRY_BACKOFF
from .intake import MAX_CONTACTS_CAP, insert_children
from .outcome import finish_execution

log = logging.getLogger(__name__)

# HubSpot's object type names on the associations paths.
CRM_TYPES = {"DEAL": "deals", "COMPANY": "companies", "TICKET": "tickets"}
NOUNS = {"DEAL": "deal", "COMPANY": "company", "TICKET": "ticket"}
PRIMARY_LABEL = "primary"


class ExpandTransient(Exception):
    """HubSpot could not be reached for the associations: try the execution again later."""


def _queued(workspace_id: int):
    return (
        RecordExecution.workspace_id == workspace_id,
        RecordExecution.status == ExecutionStatus.QUEUED.value,
    )


def claim(workspace_id: int, job_id: str, limit: int) -> list[RecordExecution]:
    """Claim up to ``limit`` due, unclaimed queued executions (:func:`.claims.claim_rows`)."""
    now = utcnow()
    return claim_rows(
        RecordExecution,
        due=(
            *_queued(workspace_id),
            db.or_(RecordExecution.due_at.is_(None), RecordExecution.due_at <= now),
        ),
        still=(RecordExecution.status == ExecutionStatus.QUEUED.value,),
        order_by=(RecordExecution.id,),
        job_id=job_id,
        limit=limit,
        now=now,
    )


def release_claims(job_id: str) -> int:
    result = db.session.execute(
        db.update(RecordExecution)
        .where(
            RecordExecution.job_id == job_id,
            RecordExecution.status == ExecutionStatus.QUEUED.value,
        )
        .values(job_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount or 0


def claimed_job_ids(cutoff) -> list[str]:
    return db.session.scalars(
        db.select(RecordExecution.job_id)
        .where(
            RecordExecution.status == ExecutionStatus.QUEUED.value,
            RecordExecution.job_id.is_not(None),
            RecordExecution.updated_at < cutoff,
        )
        .distinct()
        .limit(1000)
    ).all()


def expand_due(workspace_id: int, job_id: str, client, limit: int) -> tuple[int, float | None]:
    """Claim and expand due executions; (how many, the backoff to wait after a transient
    failure or None)."""
    done = 0
    for execution in claim(workspace_id, job_id, limit):
        try:
            expand(execution, client)
        except ExpandTransient as exc:
            log.warning("record execution %s: HubSpot transient failure: %s", execution.id, exc)
            delay = _back_off(execution)
            release_claims(job_id)
            return done, min(delay, RETRY_BACKOFF[0])
        done += 1
    return done, None


def _back_off(execution: RecordExecution) -> float:
    execution.retries = (execution.retries or 0) + 1
    delay = RETRY_BACKOFF[min(execution.retries, len(RETRY_BACKOFF)) - 1]
    execution.due_at = utcnow() + timedelta(seconds=delay)
    execution.job_id = None
    db.session.commit()
    return float(delay)


def expand(execution: RecordExecution, client) -> None:
    """Read the record's contacts, make one row per chosen contact (or finish the execution)."""
    noun = NOUNS.get(execution.record_type, "record")
    try:
        associations = list(
            client.iter_associated_contacts(CRM_TYPES[execution.record_type], execution.record_id)
        )
    except (errors.NeedsReconnect, errors.HubSpotAuthError):
        db.session.rollback()
        finish_execution(execution, FailureCode.NEEDS_RECONNECT)
        return
    except (errors.HubSpotUnavailable, errors.RateLimited) as exc:
        db.session.rollback()
        if (execution.retries or 0) >= len(RETRY_BACKOFF):
            finish_execution(execution, FailureCode.HUBSPOT_UNAVAILABLE)
            return
        raise ExpandTransient(str(exc)) from exc
    except errors.HubSpotClientError as exc:
        db.session.rollback()
        finish_execution(execution, *_refusal(execution, exc, noun))
        return
    cap = execution.max_contacts if execution.choose == "all" else MAX_CONTACTS_CAP
    chosen = choose(associations, execution.choose, cap, execution.label)
    if not chosen:
        which = {
            "label": "no associated contact with the chosen association label",
            "primary": "no associated contact",
            "all": "no associated contact",
        }[execution.choose if execution.choose in ("label", "primary", "all") else "all"]
        finish_execution(
            execution,
            FailureCode.NO_ASSOCIATED_CONTACT,
            f"The {noun} {_named(execution)} has {which}: nobody was enrolled.",
        )
        return
    try:
        insert_children(execution, chosen)
        execution.status = ExecutionStatus.EXPANDED.value
        execution.job_id = None
        db.session.commit()
    except IntegrityError:
        # Rows of this execution already exist (cannot happen under a claim, but the unique
        # callback ids decide): they are the rows.
        db.session.rollback()
        execution.status = ExecutionStatus.EXPANDED.value
        execution.job_id = None
        db.session.commit()
    log.info(
        "record execution %s: %s %s, %d contacts to enroll (%s)",
        execution.id,
        execution.record_type,
        execution.record_id,
        len(chosen),
        execution.choose,
    )


def _named(execution: RecordExecution) -> str:
    return f'"{execution.record_name}"' if execution.record_name else execution.record_id


def _refusal(execution: RecordExecution, exc, noun: str) -> tuple[str, str]:
    if exc.status == 403:
        scope = RECORD_SCOPES.get(execution.record_type, "")
        return (
            FailureCode.MISSING_SCOPE,
            f"AutoSeq may not read this portal's {noun} associations (scope {scope}): "
            "reconnect HubSpot in AutoSeq and grant it.",
        )
    if exc.status == 404:
        missing = f"The {noun} {execution.record_id} was not found in HubSpot."
        return FailureCode.RECORD_NOT_FOUND, missing
    refused = f"HubSpot refused to list the {noun}'s contacts: {exc.message}"
    return FailureCode.HUBSPOT_ERROR, refused


def choose(associations: list[dict], how: str, cap: int, label: str | None) -> list[str]:
    """The contact ids to enroll, in association order, without duplicates."""
    ids: list[str] = []
    labelled: list[str] = []
    primary: list[str] = []
    for item in associations:
        contact = str(item.get("toObjectId") or "").strip()
        if not contact or not contact.isascii() or not contact.isdigit() or contact in ids:
            continue
        ids.append(contact)
        for kind in item.get("associationTypes") or []:
            name = str(kind.get("label") or "").strip().lower()
            if name == PRIMARY_LABEL and contact not in primary:
                primary.append(contact)
            if label and _matches(kind, label) and contact not in labelled:
                labelled.append(contact)
    if how == "primary":
        return (primary or ids)[:1]
    if how == "label":
        return labelled[:cap]
    return ids[:cap]


def _matches(kind: dict, label: str) -> bool:
    """``label`` is the label's type id (the options' value) or, typed by hand, its text."""
    if str(kind.get("typeId")) == label:
        return True
    text = kind.get("label")
    return bool(text) and str(text).strip().lower() == label.strip().lower()


def settle(workspace_id: int) -> int:
    """Finish the expanded executions none of whose rows is still queued; how many."""
    still_queued = (
        db.select(Enrollment.id)
        .where(
            Enrollment.execution_id == RecordExecution.id,
            Enrollment.status == EnrollmentStatus.QUEUED.value,
        )
        .exists()
    )
    ready = db.session.scalars(
        db.select(RecordExecution).where(
            RecordExecution.workspace_id == workspace_id,
            RecordExecution.status == ExecutionStatus.EXPANDED.value,
            ~still_queued,
        )
    ).all()
    for execution in ready:
        finish_execution(execution)
    if not ready:
        db.session.commit()
    return len(ready)


def has_work(workspace_id: int) -> bool:
    return (
        db.session.scalar(
            db.select(RecordExecution.id)
            .where(
                RecordExecution.workspace_id == workspace_id,
                RecordExecution.status.in_(UNFINISHED_EXECUTION),
                RecordExecution.job_id.is_(None),
            )
            .limit(1)
        )
        is not None
    )


def next_due_in(workspace_id: int) -> float | None:
    """Seconds until the next unclaimed queued execution is due (0: now), None if none."""
    count, dated, first = db.session.execute(
        db.select(
            db.func.count(),
            db.func.count(RecordExecution.due_at),
            db.func.min(RecordExecution.due_at),
        ).where(*_queued(workspace_id), RecordExecution.job_id.is_(None))
    ).one()
    if not count:
        return None
    if count > dated:
        return 0.0
    return max(0.0, (first - utcnow()).total_seconds())


def workspaces_with_work():
    """A select of workspace ids with executions to expand or settle (for the sweep)."""
    return db.select(RecordExecution.workspace_id).where(
        RecordExecution.status.in_(UNFINISHED_EXECUTION)
    )


def fail_unreachable(workspace_id: int, job_id: str) -> int:
    n = 0
    while rows := claim(workspace_id, job_id, 50):
        for execution in rows:
            finish_execution(execution, FailureCode.NEEDS_RECONNECT)
            n += 1
    return n
