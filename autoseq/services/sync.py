"""Sequence sync: keep a true copy of a HubSpot portal's users, mailboxes and sequences.

A sync has two phases. The *fetch* phase only talks to HubSpot and builds plain dicts (users,
then every sequence each user sees); the *write* phase turns them into rows in one transaction,
with bulk statements: one SELECT of the workspace's rows, then chunked executemany INSERTs and
UPDATEs of what changed. Nothing is written when HubSpot fails half-way, so a partial listing
can never mark sequences removed.

One sync at a time per workspace: :func:`request_sync` creates a queued :class:`SyncRun` (or
returns the queued/running one) under a short Redis lock, and the job itself holds a per-workspace
Redis lock while it runs, so a duplicate never runs in parallel.

The pure functions (``map_state``, ``parse_timestamp``, ``clean_name``, ``merge_users``,
``merge_sequences``, ``plan_sequence_changes``) take and return plain data and are tested alone.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Sequence as Sequence_
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import insert, update

from ..extensions import db
from ..models import (
    ConnectionStatus,
    HubSpotConnection,
    HubSpotUser,
    Mailbox,
    MailboxKind,
    Sequence,
    SequenceState,
    Sharing,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    Workflow,
)
from ..models.base import utcnow
from ..queue import Lock, enqueue, job_status, redis_connection

log = logging.getLogger(__name__)

SYNC_JOB = "autoseq.jobs.sync.sync_workspace"
SYNC_INTERVAL = timedelta(hours=24)
CHUNK = 1000  # rows per executemany statement
ID_MAX = 32  # String(32) columns: longer ids are not HubSpot ids
# The running lock lives this long unless the sync renews it (each progress report does): a
# worker killed mid-sync blocks the next sync of its workspace for at most this long.
RUN_LOCK_TTL = 10 * 60
REQUEST_LOCK_TTL = 10
# Users' listings fetched at once (SYNC_FETCH_THREADS). Two keep a real portal's 110/10 s budget
# busy at HubSpot's latency; more would only crowd out the enrollments sharing that budget.
DEFAULT_FETCH_THREADS = 2
# A sync makes 3 + sum over users of ceil(sequences they see / 100) calls at 11 per second
# (HubSpot's 110/10 s): 10,000 sequences over 50 users is about 3,600 calls, 6 minutes. Far larger
# portals need longer than the sync queue's 30-minute default.
SYNC_JOB_TIMEOUT = 4 * 3600
# The workflow editor asking for sequences while the last successful sync is older than this asks
# for a background sync (config SYNC_STALE_AFTER, seconds); checked at most once a minute.
SYNC_STALE_AFTER = 15 * 60
STALE_CHECK_TTL = 60
ACTIVE_STATUSES = (SyncStatus.QUEUED.value, SyncStatus.RUNNING.value)


class SyncBusy(Exception):
    """The request lock could not be taken in time (another request holds it)."""


class SyncAborted(Exception):
    """The sync cannot go on; ``reason`` is shown to the user. Not retried."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Pure functions: HubSpot payloads -> plain records
# --------------------------------------------------------------------------------------------

_STATE_WORDS = {
    "active": SequenceState.ACTIVE,
    "enabled": SequenceState.ACTIVE,
    "live": SequenceState.ACTIVE,
    "published": SequenceState.ACTIVE,
    "on": SequenceState.ACTIVE,
    "running": SequenceState.ACTIVE,
    "paused": SequenceState.PAUSED,
    "inactive": SequenceState.PAUSED,
    "disabled": SequenceState.PAUSED,
    "off": SequenceState.PAUSED,
    "stopped": SequenceState.PAUSED,
    "draft": SequenceState.DRAFT,
    "unpublished": SequenceState.DRAFT,
    "archived": SequenceState.ARCHIVED,
    "deleted": SequenceState.ARCHIVED,
}


def map_state(item: Mapping) -> str:
    """The state HubSpot gives a sequence, if it gives one; else ``unknown`` (never invented).

    Tolerant reader: ``state``/``status``/``sequenceState`` words, then ``archived``/``isArchived``,
    ``paused``/``isPaused``, ``draft``/``isDraft``, ``active``/``isActive``/``enabled`` booleans.
    """
    for key in ("state", "status", "sequenceState", "sequenceStatus"):
        value = item.get(key)
        if isinstance(value, str):
            mapped = _STATE_WORDS.get(value.strip().lower())
            if mapped:
                return mapped.value
    flags = (
        (("archived", "isArchived"), SequenceState.ARCHIVED, True),
        (("paused", "isPaused"), SequenceState.PAUSED, True),
        (("draft", "isDraft"), SequenceState.DRAFT, True),
        (("active", "isActive", "enabled", "isEnabled"), SequenceState.ACTIVE, True),
        (("active", "isActive", "enabled", "isEnabled"), SequenceState.PAUSED, False),
    )
    for keys, state, wanted in flags:
        for key in keys:
            if item.get(key) is wanted:
                return state.value
    if item.get("archivedAt"):
        return SequenceState.ARCHIVED.value
    return SequenceState.UNKNOWN.value


def parse_timestamp(value) -> datetime | None:
    """An ISO 8601 string (``Z`` or offset) or epoch milliseconds as an aware UTC datetime."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip()
        if text.isascii() and text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.year <= 9999:
        return None
    return parsed.astimezone(UTC)


def clean_name(value) -> str:
    """A sequence name as text: never None, no NUL bytes (PostgreSQL refuses them)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.replace("\x00", "")


def _clean_id(value) -> str | None:
    """An id as a short string, or None when it is missing or cannot be a HubSpot id."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value).strip()
    if not text or len(text) > ID_MAX:
        return None
    return text


def _short(value, limit: int) -> str:
    if not isinstance(value, str):
        return "" if value is None else str(value)[:limit]
    return value.replace("\x00", "")[:limit]


@dataclass
class UserListing:
    """The portal's people as HubSpot lists them (the fetch phase's first output)."""

    users: list = field(default_factory=list)  # /settings/v3/users items (active users)
    owners: list = field(default_factory=list)  # /crm/v3/owners items
    archived_owners: list = field(default_factory=list)  # /crm/v3/owners?archived=true


SEAT_WORDS = ("sales", "service")


def has_sending_seat(seat_names) -> bool:
    """Whether a user may send sequences, as far as ``seatNames`` says it plainly.

    Sequences need a Sales Hub or Service Hub seat (hubspot-api.md section 2). ``seatNames`` on
    ``/settings/v3/users`` is newer and not in every portal's answer (section 8): absent, null, an
    empty list or anything but a list of names says nothing, and counts as a seat (HubSpot still
    refuses an enrollment by a user without one). Only a list of seat names none of which is a
    Sales or Service seat says "no seat".
    """
    if not isinstance(seat_names, list):
        return True
    names = [n.lower() for n in seat_names if isinstance(n, str) and n.strip()]
    if not names:
        return True
    return any(word in name for name in names for word in SEAT_WORDS)


def merge_users(listing: UserListing) -> tuple[dict[str, dict], int]:
    """Merge users and owners into records keyed by HubSpot user id; returns (records, skipped).

    Users listed by /settings/v3/users are active; archived owners' users are inactive. The owner
    id is joined through ``owner.userId``. ``has_seat`` is :func:`has_sending_seat`.
    """
    records: dict[str, dict] = {}
    skipped = 0
    for item in listing.users:
        uid = _clean_id(item.get("id")) if isinstance(item, Mapping) else None
        email = item.get("email") if uid else None
        if not uid or not isinstance(email, str) or "@" not in email:
            skipped += 1
            continue
        records[uid] = {
            "hubspot_user_id": uid,
            "owner_id": None,
            "email": _short(email.strip(), 254),
            "first_name": _short(item.get("firstName") or "", 120),
            "last_name": _short(item.get("lastName") or "", 120),
            "active": True,
            "has_seat": has_sending_seat(item.get("seatNames")),
            "super_admin": item.get("superAdmin") is True,
        }
    for archived, items in ((False, listing.owners), (True, listing.archived_owners)):
        for owner in items:
            if not isinstance(owner, Mapping):
                skipped += 1
                continue
            uid = _clean_id(owner.get("userId"))
            oid = _clean_id(owner.get("id"))
            if not uid or not oid:
                continue  # queues and teams have no user: not an error
            is_archived = archived or owner.get("archived") is True
            record = records.get(uid)
            if record is not None:
                if not is_archived or record["owner_id"] is None:
                    record["owner_id"] = oid
                continue
            email = owner.get("email")
            if not is_archived or not isinstance(email, str) or "@" not in email:
                continue  # an active owner whose user is not listed: not ours to invent
            records[uid] = {
                "hubspot_user_id": uid,
                "owner_id": oid,
                "email": _short(email.strip(), 254),
                "first_name": _short(owner.get("firstName") or "", 120),
                "last_name": _short(owner.get("lastName") or "", 120),
                "active": False,
                "has_seat": False,
                "super_admin": False,
            }
    return records, skipped


class SequenceMerger:
    """Fold per-user sequence listings into one record per sequence, as they stream in.

    ``add(user_id, item)`` is called for every item of every user's listing; ``records()`` gives
    the merged result. A sequence seen by a user other than its owner is a team sequence; the
    users who see it (and may send: ``sender_ids``) are its senders.
    """

    def __init__(self, sender_ids: Iterable[str] = ()):
        self.sender_ids = set(sender_ids)
        self.items: dict[str, Mapping] = {}
        self.seen_by: dict[str, set[str]] = {}
        self.skipped = 0
        self.seen = 0

    def add(self, user_id: str, item) -> None:
        self.seen += 1
        sid = _clean_id(item.get("id")) if isinstance(item, Mapping) else None
        if sid is None:
            self.skipped += 1
            log.warning("sync: skipped a sequence without a usable id: %.200r", item)
            return
        viewers = self.seen_by.get(sid)
        if viewers is None:
            self.items[sid] = item
            self.seen_by[sid] = {user_id}
        else:
            viewers.add(user_id)

    def records(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for sid, item in self.items.items():
            try:
                out[sid] = self._record(sid, item, self.seen_by[sid])
            except Exception:  # one odd record never fails the sync
                self.skipped += 1
                log.warning("sync: skipped sequence %s with unreadable fields", sid, exc_info=True)
        return out

    def _record(self, sid: str, item: Mapping, viewers: set[str]) -> dict:
        owner = _clean_id(item.get("userId"))
        others = viewers - {owner} if owner else viewers
        # With no owner given, being seen by two users still proves it is shared.
        shared = bool(others) if owner else len(viewers) > 1
        return {
            "hubspot_id": sid,
            "name": clean_name(item.get("name")),
            "owner_hubspot_user_id": owner,
            "folder_id": _clean_id(item.get("folderId")),
            "hs_created_at": parse_timestamp(item.get("createdAt")),
            "hs_updated_at": parse_timestamp(item.get("updatedAt")),
            "state": map_state(item),
            "sharing": (Sharing.TEAM if shared else Sharing.PRIVATE).value,
            "sender_user_ids": sorted(v for v in viewers if v in self.sender_ids),
        }


def merge_sequences(
    listings: Mapping[str, Iterable], sender_ids: Iterable[str] | None = None
) -> tuple[dict[str, dict], int]:
    """Merge ``{user_id: [sequence items]}`` into ``({hubspot_id: record}, skipped)``."""
    merger = SequenceMerger(listings.keys() if sender_ids is None else sender_ids)
    for user_id, items in listings.items():
        for item in items:
            merger.add(str(user_id), item)
    return merger.records(), merger.skipped


SEQUENCE_FIELDS = (
    "name",
    "owner_hubspot_user_id",
    "folder_id",
    "hs_created_at",
    "hs_updated_at",
    "state",
    "sharing",
    "sender_user_ids",
)


@dataclass
class SequencePlan:
    inserts: list[dict]
    updates: list[dict]  # each with "id" and only the changed columns (+ removed_at cleared)
    removals: list[int]  # row ids to mark removed
    kept: int


def plan_sequence_changes(
    existing: Mapping[str, Mapping],
    incoming: Mapping[str, Mapping],
    keep_owners: Iterable[str] = (),
) -> SequencePlan:
    """Compare rows (``{hubspot_id: row}``, rows with ``id`` and ``removed_at``) with records.

    New ids are inserted; changed ones updated (a removed one that reappears gets ``removed_at``
    cleared); rows HubSpot no longer lists are removed, except those owned by ``keep_owners``
    (users whose listing could not be read this time).
    """
    keep = set(keep_owners)
    inserts, updates, removals = [], [], []
    kept = 0
    for sid, record in incoming.items():
        row = existing.get(sid)
        if row is None:
            inserts.append(dict(record))
            continue
        changes = {
            name: record[name] for name in SEQUENCE_FIELDS if _differs(row.get(name), record[name])
        }
        if row.get("removed_at") is not None:
            changes["removed_at"] = None
        if changes:
            changes["id"] = row["id"]
            updates.append(changes)
        else:
            kept += 1
    for sid, row in existing.items():
        if sid in incoming or row.get("removed_at") is not None:
            continue
        if row.get("owner_hubspot_user_id") in keep:
            continue
        removals.append(row["id"])
    return SequencePlan(inserts, updates, removals, kept)


def _differs(old, new) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return abs((old - new).total_seconds()) >= 0.001
    if isinstance(old, list) or isinstance(new, list):
        return sorted(old or []) != sorted(new or [])
    return old != new


# --------------------------------------------------------------------------------------------
# Write phase
# --------------------------------------------------------------------------------------------


@dataclass
class SyncCounts:
    added: int = 0
    updated: int = 0
    removed: int = 0
    users: int = 0
    skipped: int = 0


def write_users(workspace_id: int, records: Mapping[str, dict], now: datetime) -> dict[str, int]:
    """Upsert HubSpotUser rows and their default mailboxes; return {hubspot user id: row id}.

    Users no longer listed are kept with ``active=False``. Each listed user's login email is
    their default mailbox (created when missing); mailboxes admins added are never deleted.
    """
    rows = {
        u.hubspot_user_id: u
        for u in db.session.scalars(db.select(HubSpotUser).filter_by(workspace_id=workspace_id))
    }
    for uid, record in records.items():
        row = rows.get(uid)
        if row is None:
            row = HubSpotUser(workspace_id=workspace_id, hubspot_user_id=uid)
            db.session.add(row)
            rows[uid] = row
        for name, value in record.items():
            if name != "hubspot_user_id" and getattr(row, name) != value:
                setattr(row, name, value)
        row.last_synced_at = now
    for uid, row in rows.items():
        if uid not in records and row.active:
            row.active = False
    db.session.flush()

    mailboxes = db.session.scalars(db.select(Mailbox).filter_by(workspace_id=workspace_id)).all()
    by_email = {m.email.lower(): m for m in mailboxes}
    for uid, record in records.items():
        if not record["active"]:
            continue  # a deactivated user keeps what they had; nothing new is made for them
        user = rows[uid]
        email = record["email"]
        box = by_email.get(email.lower())
        if box is not None and box.hubspot_user_id != user.id:
            log.warning("sync: mailbox %s belongs to another HubSpot user; left alone", email)
            continue
        for other in mailboxes:
            if other.hubspot_user_id == user.id and other.is_default and other is not box:
                other.is_default = False
        if box is None:
            box = Mailbox(
                workspace_id=workspace_id,
                hubspot_user_id=user.id,
                email=email,
                kind=MailboxKind.INBOX.value,
                is_default=True,
            )
            db.session.add(box)
            mailboxes.append(box)
            by_email[email.lower()] = box
        elif not box.is_default:
            box.is_default = True
    db.session.flush()
    return {uid: row.id for uid, row in rows.items()}


def load_existing_sequences(workspace_id: int) -> dict[str, dict]:
    """Every sequence row of the workspace as plain dicts, in one SELECT."""
    columns = [Sequence.id, Sequence.hubspot_id, Sequence.removed_at] + [
        getattr(Sequence, name) for name in SEQUENCE_FIELDS
    ]
    result = db.session.execute(db.select(*columns).where(Sequence.workspace_id == workspace_id))
    return {row.hubspot_id: row._asdict() for row in result}


def write_sequences(
    workspace_id: int,
    records: Mapping[str, dict],
    now: datetime,
    keep_owners: Iterable[str] = (),
) -> SyncCounts:
    """Apply the merged records with bulk statements; return what changed."""
    existing = load_existing_sequences(workspace_id)
    plan = plan_sequence_changes(existing, records, keep_owners)
    for start in range(0, len(plan.inserts), CHUNK):
        chunk = [
            dict(r, workspace_id=workspace_id, last_synced_at=now, created_at=now)
            for r in plan.inserts[start : start + CHUNK]
        ]
        db.session.execute(insert(Sequence), chunk)
    # Bulk UPDATE by primary key wants the same keys in every row of one executemany.
    groups: dict[tuple, list[dict]] = {}
    for row in plan.updates:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for rows in groups.values():
        for start in range(0, len(rows), CHUNK):
            db.session.execute(update(Sequence), rows[start : start + CHUNK])
    for start in range(0, len(plan.removals), CHUNK):
        ids = plan.removals[start : start + CHUNK]
        db.session.execute(
            update(Sequence)
            .where(Sequence.id.in_(ids))
            .values(removed_at=now)
            .execution_options(synchronize_session=False)
        )
    # Everything HubSpot listed was confirmed now: one statement, not one per row.
    db.session.execute(
        update(Sequence)
        .where(Sequence.workspace_id == workspace_id, Sequence.removed_at.is_(None))
        .values(last_synced_at=now)
        .execution_options(synchronize_session=False)
    )
    return SyncCounts(
        added=len(plan.inserts), updated=len(plan.updates), removed=len(plan.removals)
    )


# --------------------------------------------------------------------------------------------
# Fetch phase
# --------------------------------------------------------------------------------------------


@dataclass
class Fetched:
    users: dict[str, dict]
    sequences: dict[str, dict]
    unreadable_users: set[str]  # whose private sequences could not be listed: never removed
    skipped: int
    workflows: dict[str, dict] | None = None  # None: HubSpot would not list them (names kept)


def fetch_portal(
    client, progress: Callable[[dict], None] | None = None, extra_clients: Sequence_ = ()
) -> Fetched:
    """Read users, owners and every sequence each active user sees.

    Sequences are listed for every active user, seat or not: whether a user may send must not
    hang on ``seatNames`` alone; a user HubSpot will not list is kept as unreadable.

    With ``extra_clients`` (more clients of the same portal, built by the caller), the users'
    listings are fetched by that many more threads at once; every call still takes a slot of the
    portal's shared rate budget, so this only helps when the budget is not the bottleneck.
    """
    from ..hubspot.errors import HubSpotClientError

    report = progress or (lambda meta: None)
    report({"phase": "users", "users_done": 0, "users_total": 0, "sequences_seen": 0})
    listing = UserListing(
        users=list(client.iter_users()),
        owners=list(client.iter_owners()),
        archived_owners=list(client.iter_owners(archived=True)),
    )
    users, skipped = merge_users(listing)
    workflows = fetch_workflows(client)
    senders = sorted(uid for uid, r in users.items() if r["active"])
    if not senders:
        # Without anyone to list sequences for, every sequence would look deleted.
        raise SyncAborted(
            "HubSpot listed no active user, so no sequence could be read; nothing was changed."
        )
    merger = SequenceMerger(senders)
    unreadable: set[str] = set()
    meta = {"phase": "sequences", "users_done": 0, "users_total": len(senders)}
    report(dict(meta, sequences_seen=0))
    clients = [client, *extra_clients]
    listings = (
        _list_concurrently(senders, clients)
        if len(clients) > 1 and len(senders) > 1
        else (_list_one(client, uid) for uid in senders)
    )
    for done, (uid, items, error) in enumerate(listings, start=1):
        if error is not None:
            if not isinstance(error, HubSpotClientError):
                raise error
            # One user HubSpot will not list (removed meanwhile, lost the seat): keep going, and
            # keep their private sequences rather than calling them removed.
            unreadable.add(uid)
            log.warning("sync: sequences of user %s unreadable: %s", uid, error)
            continue
        for item in items:
            merger.add(uid, item)
        report(dict(meta, users_done=done, sequences_seen=len(merger.items)))
    report(
        {
            "phase": "saving",
            "users_done": len(senders),
            "users_total": len(senders),
            "sequences_seen": len(merger.items),
        }
    )
    records = merger.records()
    # Nobody lists the private sequences of deactivated users: not seeing
    # them is no evidence they were deleted, so they are kept as they were.
    unlisted = {uid for uid in users if uid not in merger.sender_ids}
    return Fetched(users, records, unreadable | unlisted, skipped + merger.skipped, workflows)


def merge_workflows(items: Iterable[Mapping]) -> dict[str, dict]:
    """HubSpot's flows by id: name, enabled, object type; items without an id are skipped."""
    records: dict[str, dict] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        fid = _clean_id(item.get("id"))
        if fid is None:
            continue
        enabled = item.get("isEnabled")
        records[fid] = {
            "name": clean_name(item.get("name")),
            "is_enabled": enabled if isinstance(enabled, bool) else None,
            "object_type_id": _short(item.get("objectTypeId"), 16) or None,
        }
    return records


def fetch_workflows(client) -> dict[str, dict] | None:
    """The portal's workflow names, or None when HubSpot refuses to list them (a 4xx: the
    flows API is HubSpot's newer, beta one; names then stay as last synced, never a failed sync)."""
    from ..hubspot.errors import HubSpotClientError

    try:
        return merge_workflows(client.iter_flows())
    except HubSpotClientError as exc:
        log.warning("sync: workflows unreadable, names kept as they were: %s", exc)
        return None


def write_workflows(workspace_id: int, records: Mapping[str, dict] | None, now: datetime) -> int:
    """Upsert the workflows' names (a workflow HubSpot no longer lists keeps its last name, for
    the history that mentions it); returns how many rows changed."""
    if not records:
        return 0
    existing = {
        w.hubspot_id: w
        for w in db.session.scalars(db.select(Workflow).filter_by(workspace_id=workspace_id))
    }
    changed = 0
    for fid, record in records.items():
        row = existing.get(fid)
        if row is None:
            row = Workflow(workspace_id=workspace_id, hubspot_id=fid, synced_at=now, **record)
            db.session.add(row)
            changed += 1
        elif any(getattr(row, k) != v for k, v in record.items()):
            for k, v in record.items():
                setattr(row, k, v)
            row.synced_at = now
            changed += 1
    return changed


def _list_one(client, uid: str) -> tuple[str, list | None, Exception | None]:
    """One user's whole listing, or the error that stopped it."""
    try:
        return uid, list(client.iter_sequences(uid)), None
    except Exception as exc:  # handed to the caller, which decides
        return uid, None, exc


def _list_concurrently(senders: list[str], clients: list):
    """Yield ``_list_one`` results as they finish, one thread per client (clients not shared)."""
    app = current_app._get_current_object()
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for c in clients:
        idle.put(c)

    def task(uid: str):
        client = idle.get()
        try:
            with app.app_context():  # a token refresh reads and writes the connection row
                return _list_one(client, uid)
        finally:
            idle.put(client)

    with ThreadPoolExecutor(len(clients), thread_name_prefix="sync-fetch") as pool:
        futures = [pool.submit(task, uid) for uid in senders]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


# --------------------------------------------------------------------------------------------
# Runs, locks and requests
# --------------------------------------------------------------------------------------------


def _run_lock_key(workspace_id: int) -> str:
    return f"autoseq:sync:{workspace_id}:running"


def _request_lock_key(workspace_id: int) -> str:
    return f"autoseq:sync:{workspace_id}:request"


# The one lock idiom (SET NX EX with a token), from the queue floor.
_RedisLock = Lock


def job_id_for(run: SyncRun) -> str:
    """The RQ job id of a sync run: deterministic, so a run is never enqueued twice."""
    return f"sync-ws{run.workspace_id}-run{run.id}"


def active_run(workspace_id: int) -> SyncRun | None:
    """The queued or running sync of the workspace, if one is alive."""
    run = db.session.scalar(
        db.select(SyncRun)
        .where(SyncRun.workspace_id == workspace_id, SyncRun.status.in_(ACTIVE_STATUSES))
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    if run is None:
        return None
    check_run(run)
    return None if run.is_finished else run


def check_run(run: SyncRun) -> SyncRun:
    """Mark a queued/running run failed when its job is gone (so a poller never waits forever)."""
    if not run.is_finished and _is_dead(run):
        db.session.refresh(run)
        if not run.is_finished:
            _finish(run, SyncStatus.FAILED, "The sync was interrupted before it finished.")
            db.session.commit()
    return run


def _is_dead(run: SyncRun) -> bool:
    """A queued/running run whose job is gone or ended (a killed worker leaves these behind)."""
    if run.job_id is None:
        return utcnow() - run.created_at > timedelta(minutes=1)
    status = job_status(run.job_id)
    # The job ended while the row says otherwise: its horse died. A job still "started" whose
    # horse died is moved to failed by RQ's registry cleanup once its timeout has passed.
    return status is None or status in ("failed", "stopped", "canceled", "finished")


def request_sync(
    workspace_id: int, trigger: str = SyncTrigger.MANUAL, wait: float = REQUEST_LOCK_TTL
) -> SyncRun:
    """Ask for a sync of the workspace: a new queued run, or the queued/running one to join.

    Race-safe: a short Redis lock makes "look for an active run, else create one and enqueue it"
    atomic across web processes, so two clicks (or a click and a tick) enqueue once. ``wait``:
    how long to wait for that lock before :class:`SyncBusy`.
    """
    lock = _RedisLock(_request_lock_key(workspace_id), REQUEST_LOCK_TTL)
    if not lock.acquire(wait=wait):
        raise SyncBusy(f"could not take the sync request lock of workspace {workspace_id}")
    try:
        db.session.expire_all()
        run = active_run(workspace_id)
        if run is not None:
            return run
        run = SyncRun(workspace_id=workspace_id, trigger=str(SyncTrigger(trigger)), status="queued")
        db.session.add(run)
        db.session.flush()
        run.job_id = job_id_for(run)
        db.session.commit()
        enqueue(
            SYNC_JOB,
            workspace_id,
            run.trigger,
            run.id,
            queue="sync",
            job_id=run.job_id,
            timeout=int(current_app.config.get("SYNC_JOB_TIMEOUT", SYNC_JOB_TIMEOUT)),
        )
        log.info("sync of workspace %s requested (%s): run %s", workspace_id, trigger, run.id)
        return run
    finally:
        lock.release()


def last_success(workspace_id: int) -> datetime | None:
    """When the workspace's last successful sync finished (None: never)."""
    return db.session.scalar(
        db.select(db.func.max(SyncRun.finished_at)).where(
            SyncRun.workspace_id == workspace_id, SyncRun.status == SyncStatus.SUCCEEDED.value
        )
    )


def request_if_stale(workspace_id: int) -> SyncRun | None:
    """Ask for a background sync when the last successful one is older than SYNC_STALE_AFTER.

    Called when HubSpot's workflow editor asks for the sequence options: the answer never waits
    for it (it comes from the database at once), and a sequence created in HubSpot since then is
    offered once the sync finishes. At most one check a minute per workspace (a Redis key), and
    never a second run beside a queued or running one (:func:`request_sync`, without waiting for
    its lock: someone holding it is requesting already).
    """
    redis = redis_connection()
    checked = f"autoseq:sync:{workspace_id}:stale-checked"
    if not redis.set(checked, "1", nx=True, ex=STALE_CHECK_TTL):
        return None
    stale_after = timedelta(seconds=current_app.config.get("SYNC_STALE_AFTER", SYNC_STALE_AFTER))
    last = last_success(workspace_id)
    if last is not None and utcnow() - last < stale_after:
        return None
    connection = db.session.scalar(
        db.select(HubSpotConnection).filter_by(workspace_id=workspace_id)
    )
    if connection is None or not connection.is_connected:
        return None
    try:
        return request_sync(workspace_id, SyncTrigger.STALE, wait=0)
    except SyncBusy:
        return None


def _finish(run: SyncRun, status: SyncStatus, error: str | None = None) -> None:
    run.status = status.value
    run.error = error
    run.finished_at = utcnow()


def _fail(run_id: int, reason: str) -> SyncRun:
    db.session.rollback()
    run = db.session.get(SyncRun, run_id)
    _finish(run, SyncStatus.FAILED, reason)
    db.session.commit()
    log.warning("sync run %s failed: %s", run_id, reason)
    return run


def run_sync(
    workspace_id: int,
    trigger: str = SyncTrigger.MANUAL,
    sync_run_id: int | None = None,
    progress: Callable[[dict], None] | None = None,
    client=None,
) -> SyncRun:
    """Sync one workspace now, in this process; returns its finished :class:`SyncRun`.

    A connection that needs reconnecting ends the run FAILED with that reason and returns (no
    retry storm). Other HubSpot errors end it FAILED and are re-raised so RQ records them.
    """
    from ..hubspot.errors import HubSpotAuthError, HubSpotError, NeedsReconnect

    lock = _RedisLock(_run_lock_key(workspace_id), RUN_LOCK_TTL)
    run = db.session.get(SyncRun, sync_run_id) if sync_run_id else None
    if run is not None and run.workspace_id != workspace_id:
        raise ValueError(f"sync run {sync_run_id} is not of workspace {workspace_id}")
    if not lock.acquire():
        reason = "Another sync of this workspace was already running; this one was skipped."
        if run is not None and not run.is_finished:
            _finish(run, SyncStatus.FAILED, reason)
            db.session.commit()
        log.info("sync of workspace %s skipped: one is running", workspace_id)
        return run
    try:
        if run is None:
            run = SyncRun(workspace_id=workspace_id, trigger=str(SyncTrigger(trigger)))
            db.session.add(run)
        if run.is_finished:
            return run
        run.status = SyncStatus.RUNNING.value
        run.started_at = utcnow()
        run.error = None
        db.session.commit()
        run_id = run.id

        connection = db.session.scalar(
            db.select(HubSpotConnection).filter_by(workspace_id=workspace_id)
        )
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            state = "not connected" if connection is None else connection.status.replace("_", " ")
            return _fail(run_id, f"HubSpot is {state}: reconnect HubSpot, then sync again.")
        extra: list = []
        started = time.monotonic()
        try:
            if client is None:
                from ..hubspot.client import HubSpotClient

                client = HubSpotClient.for_connection(connection)
                workers = int(current_app.config.get("SYNC_FETCH_THREADS", DEFAULT_FETCH_THREADS))
                extra = [HubSpotClient.for_connection(connection) for _ in range(workers - 1)]
            fetched = fetch_portal(client, _renewing(lock, progress), extra)
        except (NeedsReconnect, HubSpotAuthError) as exc:
            return _fail(run_id, f"HubSpot needs reconnecting: {_message(exc)}")
        except SyncAborted as exc:
            return _fail(run_id, exc.reason)
        except HubSpotError as exc:
            _fail(run_id, f"HubSpot answered with an error: {_message(exc)}")
            raise
        finally:
            for c in extra:
                c.close()
        fetch_seconds = time.monotonic() - started

        now = utcnow()
        try:
            write_users(workspace_id, fetched.users, now)
            write_workflows(workspace_id, fetched.workflows, now)
            counts = write_sequences(workspace_id, fetched.sequences, now, fetched.unreadable_users)
            run = db.session.get(SyncRun, run_id)
            run.added, run.updated, run.removed = counts.added, counts.updated, counts.removed
            run.users = sum(1 for r in fetched.users.values() if r["active"])
            _finish(run, SyncStatus.SUCCEEDED)
            db.session.commit()
        except Exception as exc:
            _fail(run_id, f"Saving the sync failed: {exc.__class__.__name__}")
            raise
        if fetched.skipped:
            log.warning("sync run %s skipped %s unreadable records", run_id, fetched.skipped)
        log.info(
            "sync run %s of workspace %s: +%s ~%s -%s, %s users (fetch %.1f s, write %.1f s)",
            run.id,
            workspace_id,
            run.added,
            run.updated,
            run.removed,
            run.users,
            fetch_seconds,
            time.monotonic() - started - fetch_seconds,
        )
        return run
    finally:
        lock.release()


def _renewing(lock: _RedisLock, progress: Callable[[dict], None] | None):
    """A progress callback that also renews the running lock (at most every 30 s)."""
    last = [time.monotonic()]

    def report(meta: dict) -> None:
        now = time.monotonic()
        if now - last[0] > 30:
            last[0] = now
            lock.renew()
        if progress is not None:
            progress(meta)

    return report


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or exc.__class__.__name__


# --------------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------------


def due_workspaces(now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Connected workspaces whose last successful sync is ≥ 24 h old (or never), oldest first."""
    now = now or utcnow()
    last_ok = (
        db.select(SyncRun.workspace_id, db.func.max(SyncRun.finished_at).label("last"))
        .where(SyncRun.status == SyncStatus.SUCCEEDED.value)
        .group_by(SyncRun.workspace_id)
        .subquery()
    )
    busy = db.select(SyncRun.workspace_id).where(SyncRun.status.in_(ACTIVE_STATUSES))
    query = (
        db.select(HubSpotConnection.workspace_id)
        .outerjoin(last_ok, last_ok.c.workspace_id == HubSpotConnection.workspace_id)
        .where(
            HubSpotConnection.status == ConnectionStatus.CONNECTED.value,
            db.or_(last_ok.c.last.is_(None), last_ok.c.last <= now - SYNC_INTERVAL),
            HubSpotConnection.workspace_id.not_in(busy),
        )
        # Never-synced first, then the oldest.
        .order_by(last_ok.c.last.is_not(None), last_ok.c.last, HubSpotConnection.workspace_id)
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def request_due_syncs(now: datetime | None = None, limit: int | None = None) -> list[SyncRun]:
    """Request the daily sync of every due workspace (at most ``limit`` per call)."""
    if limit is None:
        limit = current_app.config.get("SYNC_MAX_PER_TICK", 200)
    runs = []
    for workspace_id in due_workspaces(now, limit):
        runs.append(request_sync(workspace_id, SyncTrigger.DAILY))
    return runs
