"""An enrollment's outcome: the one place it changes (:func:`finish`), and how it reads.

Every outcome an enrollment ever gets (its ``status`` leaves ``queued`` for enrolled,
already_enrolled, or failed with a code) is recorded by :func:`finish` and nowhere else, so
whatever must follow an outcome change (a log line, the analytics rollups) is added here once.
"""

from __future__ import annotations

import functools
import logging

from sqlalchemy import bindparam, case, func
from sqlalchemy.orm.attributes import set_committed_value

from ...extensions import db
from ...models import Enrollment, EnrollmentStatus, ExecutionStatus, RecordExecution
from ...models.base import utcnow
from ...models.failures import FailureCode

log = logging.getLogger(__name__)

# The failure codes (models/failures.py) as the workflow history shows them.
REASONS = {
    FailureCode.SEQUENCE_NOT_FOUND: "Sequence not found",
    FailureCode.ALREADY_ENROLLED: "Contact is already enrolled in a sequence",
    FailureCode.UNSUBSCRIBED: "Contact has unsubscribed from email",
    FailureCode.UNSUBSCRIBED_PERSONAL: "Contact has unsubscribed from the sender's emails",
    FailureCode.BOUNCED: "Contact's email address has bounced",
    FailureCode.BLOCKED_ADDRESS: "Contact's email address is blocked",
    FailureCode.BLOCKED_DOMAIN: "Contact's email domain is blocked",
    FailureCode.PREVIOUSLY_MARKED_AS_SPAM: "Contact previously marked email as spam",
    FailureCode.OTHER_SEND_REJECTED: "HubSpot rejected the send",
    FailureCode.PERMISSION_DENIED: "Permission denied",
    FailureCode.NO_CONNECTED_INBOX: "The mailbox is not connected in HubSpot",
    FailureCode.SEND_LIMIT_EXCEEDED: "The mailbox reached its daily sending limit",
    FailureCode.CONTACT_NOT_FOUND: "Contact not found",
    FailureCode.NEEDS_RECONNECT: "HubSpot connection needs reconnecting",
    FailureCode.HUBSPOT_UNAVAILABLE: "HubSpot was unavailable; gave up after retries",
    FailureCode.DAILY_LIMIT: "HubSpot's daily API limit was reached",
    FailureCode.MAILBOX_NOT_FOUND: "Mailbox not found",
    FailureCode.ROTATION_NOT_FOUND: "Rotation not found",
    FailureCode.NO_ASSOCIATED_CONTACT: "The record has no associated contact to enroll",
    FailureCode.WAIT_TIMED_OUT: (
        "Contact was still in another sequence when the wait for it to end ran out"
    ),
}


def finish(
    row: Enrollment,
    outcome: EnrollmentStatus,
    code: str | None = None,
    reason: str | None = None,
    *,
    batch: Outcomes | None = None,
    **values,
) -> None:
    """Give the enrollment its finished state (``enrolled``, ``already_enrolled`` or ``failed``):
    the one function through which an enrollment's state leaves ``queued``.

    ``values``: other columns the outcome sets (``hubspot_enrollment_id``, ``sender_email``).
    With ``batch`` the outcome is recorded when the drain's batch is (:class:`Outcomes`), else
    now, and committed.
    """
    outcome = EnrollmentStatus(outcome)
    if not outcome.finished:
        raise ValueError(f"{outcome} is not a finished state")
    values.update(
        status=outcome.value,
        failure_code=None if code is None else str(code),  # FailureCode, or HubSpot's own
        failure_reason=reason if reason is not None else (REASONS.get(code) if code else None),
        finished_at=utcnow(),
        job_id=None,
        due_at=None,
    )
    pending = Outcomes() if batch is None else batch
    pending.add(row, values)
    if batch is None:
        pending.record()
        db.session.commit()


class Outcomes:
    """Finished states of a drain's batch, recorded together: one UPDATE of the rows, one upsert
    of their rollups, in one transaction (each row's own commit and rollup upsert, with a locked
    re-read of its old values, were half of a drain's CPU: bench_action.py's profile).

    A row's outcome shows on its object at once and reaches the database at :meth:`record`
    (the drain's batch ends, or waits); a worker killed before that leaves the row queued with its
    attempt counted, and the next drain looks at HubSpot before sending again
    (:mod:`.delivery`): exactly once stays the row's.
    """

    def __init__(self) -> None:
        self.pending: dict[int, tuple[Enrollment, dict]] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, row: Enrollment, values: dict) -> None:
        for name, value in values.items():
            set_committed_value(row, name, value)  # shown now, written by record()
        self.pending[row.id] = (row, values)

    def record(self) -> int:
        """Write the pending outcomes (not committed: the caller commits); how many rows took
        theirs. Only a row still queued takes one (the UPDATE's guard, under its lock), and the
        rollups count exactly the rows it changed (their values as the UPDATE returns them)."""
        from ..analytics import rollups  # not at import: analytics imports this package

        if not self.pending:
            return 0
        pending, self.pending = self.pending, {}
        connection = db.session.connection()
        workspace_ids = {row.workspace_id for row, _ in pending.values()}
        rollups.hold(connection, workspace_ids)
        changed = connection.execute(*_update(pending, rollups.TRACKED)).all()
        rollups.record_outcome_change(
            db.session, ((None, rollups.Fact(*r[1:])) for r in changed), locked=True
        )
        done = {r[0] for r in changed}
        for row_id, (row, values) in pending.items():
            if row_id in done:
                log.info(
                    "enrollment %s (callback %s): %s %s",
                    row_id,
                    row.callback_id,
                    values["status"],
                    values["failure_code"] or "",
                )
            else:  # finished by someone else meanwhile: the row says how
                log.warning("enrollment %s: already finished, outcome %s dropped", row_id, values)
                db.session.expire(row)
        return len(done)


# The columns an outcome sets row by row (a CASE on the id each); KEPT ones only when given
# (``None`` keeps the row's value). The rest of the UPDATE is the same for every row.
PER_ROW = ("status", "failure_code", "failure_reason", "finished_at")
KEPT = ("hubspot_enrollment_id", "sender_email")


def _update(pending: dict[int, tuple[Enrollment, dict]], tracked: tuple[str, ...]):
    """One UPDATE of the rows' outcome columns (a CASE on the id per column) and its parameters.
    It returns each changed row's id and ``tracked`` columns.

    The statement is built and compiled once per size, the rows rounded up to a power of two
    (the last one repeated): built for each batch, it cost more than the rows' own commits had
    (bench_action.py's profile).
    """
    ids = sorted(pending)
    unknown = {k for _, v in pending.values() for k in v} - {*PER_ROW, *KEPT, "job_id", "due_at"}
    if unknown:
        raise ValueError(f"an outcome does not set {sorted(unknown)}")
    size = 1 << (len(ids) - 1).bit_length()
    params: dict[str, object] = {"out_now": utcnow()}
    for i, row_id in enumerate(ids + ids[-1:] * (size - len(ids))):
        values = pending[row_id][1]
        params[f"out_id_{i}"] = row_id
        for name in (*PER_ROW, *KEPT):
            params[f"out_{name}_{i}"] = values.get(name)
    return _update_statement(size, tracked), params


@functools.cache
def _update_statement(size: int, tracked: tuple[str, ...]):
    table = Enrollment.__table__
    ids = [bindparam(f"out_id_{i}", type_=table.c.id.type) for i in range(size)]
    values: dict[str, object] = {"job_id": None, "due_at": None, "updated_at": bindparam("out_now")}
    for name in (*PER_ROW, *KEPT):
        column = table.c[name]
        whens = []
        for i in range(size):
            value = bindparam(f"out_{name}_{i}", type_=column.type)
            if name in KEPT:
                value = func.coalesce(value, column)
            whens.append((table.c.id == ids[i], value))
        values[name] = case(*whens, else_=column)
    return (
        table.update()
        .where(table.c.id.in_(ids), table.c.status == EnrollmentStatus.QUEUED.value)
        .values(values)
        .returning(table.c.id, *(table.c[name] for name in tracked))
    )


def output_fields(row: Enrollment) -> dict:
    """What the workflow sees once the execution completes."""
    status = EnrollmentStatus(row.status)
    return {
        "hs_execution_state": "SUCCESS" if status is EnrollmentStatus.ENROLLED else "FAIL_CONTINUE",
        "enrollment_status": status.output,
        "failure_reason": row.failure_reason or "",
        "sender_email": row.sender_email or "",
        "sequence_name": row.sequence_name or "",
    }


def finish_execution(
    execution: RecordExecution, code: str | None = None, reason: str | None = None
):
    """A record workflow's execution is over: its outcome and counts from its enrollment rows
    (each of which got its own outcome through :func:`finish`), or a failure with no row at all
    (``code``). Commits; the callback is then due."""
    counts = dict(
        db.session.execute(
            db.select(Enrollment.status, db.func.count())
            .where(Enrollment.execution_id == execution.id)
            .group_by(Enrollment.status)
        ).all()
    )
    execution.enrolled_count = counts.get(EnrollmentStatus.ENROLLED, 0)
    execution.skipped_count = counts.get(EnrollmentStatus.ALREADY_ENROLLED, 0)
    execution.failed_count = sum(
        n
        for k, n in counts.items()
        if k not in (EnrollmentStatus.ENROLLED, EnrollmentStatus.ALREADY_ENROLLED)
    )
    if code:
        status = ExecutionStatus.FAILED
    elif execution.enrolled_count:
        status = ExecutionStatus.ENROLLED
    elif execution.skipped_count and not execution.failed_count:
        status = ExecutionStatus.ALREADY_ENROLLED
    else:
        status = ExecutionStatus.FAILED
    if code is None and status is not ExecutionStatus.ENROLLED:
        code, reason = _first_failure(execution)
    execution.failure_code = code
    execution.failure_reason = (
        reason if reason is not None else (REASONS.get(code) if code else None)
    )
    execution.sender_email = db.session.scalar(
        db.select(Enrollment.sender_email)
        .where(
            Enrollment.execution_id == execution.id,
            Enrollment.status == EnrollmentStatus.ENROLLED.value,
        )
        .order_by(Enrollment.id)
        .limit(1)
    )
    execution.status = status.value
    execution.finished_at = utcnow()
    execution.job_id = None
    execution.due_at = None
    db.session.commit()
    log.info(
        "record execution %s (callback %s, %s %s): %s, %d enrolled, %d skipped, %d failed",
        execution.id,
        execution.callback_id,
        execution.record_type,
        execution.record_id,
        execution.status,
        execution.enrolled_count,
        execution.skipped_count,
        execution.failed_count,
    )


def _first_failure(execution: RecordExecution) -> tuple[str | None, str | None]:
    """No contact enrolled: the first row's reason is the execution's."""
    first = db.session.execute(
        db.select(Enrollment.failure_code, Enrollment.failure_reason)
        .where(
            Enrollment.execution_id == execution.id,
            Enrollment.status.in_(
                (EnrollmentStatus.ALREADY_ENROLLED.value, EnrollmentStatus.FAILED.value)
            ),
        )
        .order_by(Enrollment.id)
        .limit(1)
    ).first()
    return (first[0], first[1]) if first else (None, None)


def execution_output_fields(execution: RecordExecution) -> dict:
    """What a deal, company or ticket workflow sees once the execution completes: the contact
    workflow's fields plus the counts to branch on."""
    status = ExecutionStatus(execution.status)
    return {
        "hs_execution_state": "SUCCESS" if status is ExecutionStatus.ENROLLED else "FAIL_CONTINUE",
        "enrollment_status": status.output,
        "failure_reason": execution.failure_reason or "",
        "sender_email": execution.sender_email or "",
        "sequence_name": execution.sequence_name or "",
        "enrolled_count": str(execution.enrolled_count or 0),
        "skipped_count": str(execution.skipped_count or 0),
        "failed_count": str(execution.failed_count or 0),
    }
