"""Enrollment: record a workflow execution once, enroll the contact once, complete the callback.

Cut along the pipeline's seams:

- :mod:`.intake` (web): validate an execution and commit its row, once per callback id;
- :mod:`.queueing`: the rows are the queue; one drain per workspace claims due rows within its
  portal's rate budget, and the sweep takes back the work of dead drains;
- :mod:`.delivery` (worker): choose the sender and enroll one claimed row;
- :mod:`.callbacks` (worker): complete finished executions in HubSpot batch calls;
- :mod:`.records` (worker): a deal, company or ticket workflow's execution becomes one row per
  chosen associated contact, and is finished (one callback) once they all are;
- :mod:`.outcome`: :func:`finish`, the one function through which an outcome changes.
"""

from __future__ import annotations

from .callbacks import CALLBACK_BATCH, callback_state, complete_one
from .callbacks import flush as flush_callbacks
from .delivery import RETRY_BACKOFF, Transient, deliver
from .intake import (
    Execution,
    InvalidExecution,
    Recorded,
    UnknownPortal,
    final_answer,
    parse_execution,
    record_execution,
    workspace_for_portal,
)
from .outcome import REASONS, execution_output_fields, finish, finish_execution, output_fields
from .queueing import (
    DRAIN_FUNC,
    QUEUE,
    DrainReport,
    claim,
    drain,
    drain_pending,
    enqueue_due_retries,
    release_claims,
    request_drain,
    requeue_stuck,
)
from .waiting import block_expiration, waiting_count

__all__ = [
    "block_expiration",
    "waiting_count",
    "CALLBACK_BATCH",
    "DRAIN_FUNC",
    "QUEUE",
    "REASONS",
    "RETRY_BACKOFF",
    "DrainReport",
    "Execution",
    "InvalidExecution",
    "Recorded",
    "Transient",
    "UnknownPortal",
    "callback_state",
    "claim",
    "complete_one",
    "deliver",
    "drain",
    "drain_pending",
    "enqueue_due_retries",
    "execution_output_fields",
    "finish_execution",
    "final_answer",
    "finish",
    "flush_callbacks",
    "output_fields",
    "parse_execution",
    "record_execution",
    "release_claims",
    "request_drain",
    "requeue_stuck",
    "workspace_for_portal",
]
