"""Sequence sync: keep a true copy of a HubSpot portal's users, mailboxes and sequences.

A sync has two phases. The *fetch* phase only talks to HubSpot and builds plain dicts (users,
then every sequence each user sees); the *write* phase turns them into rows in one transaction,
with bulk statements: one SELECT of the workspace's rows (made while HubSpot is being read), then
bulk upserts of the new rows and executemany UPDATEs of what changed. Nothing is written when
HubSpot fails half-way, so a partial listing can never mark sequences removed.

One sync at a time per workspace: :func:`request_sync` creates a queued :class:`SyncRun` (or
returns the queued/running one) under a short Redis lock, and the job itself holds a per-workspace
Redis lock while it runs, so a duplicate never runs in parallel.

The pure functions (``map_state``, ``parse_timestamp``, ``clean_name``, ``merge_users``,
``merge_sequences``, ``plan_sequence_changes``) take and return plain data and are tested alone.

The package is cut where the module's section banners were: ``records`` (pure functions),
``fetch`` (HubSpot -> records), ``write`` (records -> rows), ``runs`` (requests, locks, runs,
schedule). Every name stays importable from here (``from autoseq.services import sync`` then
``sync.<name>``).
"""

from __future__ import annotations

from .fetch import (  # noqa: F401
    Fetched,
    SyncAborted,
    fetch_portal,
    fetch_workflows,
    merge_workflows,
)
from .records import (  # noqa: F401 (re-exported: sync.<name>)
    ID_MAX,
    SEAT_WORDS,
    SEQUENCE_FIELDS,
    SequenceMerger,
    SequencePlan,
    UserListing,
    clean_name,
    has_sending_seat,
    map_state,
    merge_sequences,
    merge_users,
    parse_timestamp,
    plan_sequence_changes,
)
from .runs import (  # noqa: F401
    ACTIVE_STATUSES,
    INTERRUPTED,
    REQUEST_LOCK_TTL,
    RUN_LOCK_TTL,
    STALE_CHECK_TTL,
    SYNC_INTERVAL,
    SYNC_JOB,
    SyncBusy,
    _RedisLock,
    active_run,
    check_run,
    due_workspaces,
    job_id_for,
    last_success,
    recover_interrupted,
    request_due_syncs,
    request_if_stale,
    request_sync,
    run_sync,
)
from .write import (  # noqa: F401
    CHUNK,
    INSERT_CHUNK,
    SyncCounts,
    insert_sequences,
    load_existing_alongside,
    load_existing_sequences,
    write_sequences,
    write_users,
    write_workflows,
)
