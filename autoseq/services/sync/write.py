"""The sync's write phase: merged records into rows, with bulk statements, in the caller's
transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from collections.abc import Sequence as Sequence_
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import orjson
from flask import current_app
from sqlalchemy import Integer, Text, bindparam, cast, column, insert, update

from ...extensions import db
from ...models import (
    HubSpotUser,
    Mailbox,
    MailboxKind,
    Sequence,
    Workflow,
)
from .records import (
    SEQUENCE_FIELDS,
    plan_sequence_changes,
)

log = logging.getLogger(__name__)

CHUNK = 1000  # rows per executemany statement
INSERT_CHUNK = 5000  # new sequences per INSERT statement on PostgreSQL (one JSON parameter)


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


_LOADED = ("id", "hubspot_id", "removed_at", *SEQUENCE_FIELDS)


def load_existing_sequences(workspace_id: int) -> dict[str, dict]:
    """Every sequence row of the workspace as plain dicts, in one SELECT.

    The senders lists are read as their JSON text and parsed by orjson: at 100,000 sequences
    seen by 200 users they are most of what is read (the column type's own parsing is the standard
    library's, row by row).
    """
    columns = [
        cast(Sequence.sender_user_ids, Text)
        if name == "sender_user_ids"
        else Sequence.__table__.c[name]
        for name in _LOADED
    ]
    result = db.session.execute(db.select(*columns).where(Sequence.workspace_id == workspace_id))
    rows = {}
    for values in result.tuples():
        row = dict(zip(_LOADED, values, strict=True))
        senders = row["sender_user_ids"]
        row["sender_user_ids"] = None if senders is None else orjson.loads(senders)
        rows[row["hubspot_id"]] = row
    return rows


def load_existing_alongside(workspace_id: int) -> Future:
    """:func:`load_existing_sequences` in a thread of its own (own app context and session).

    Started when the fetch starts, so that reading the stored rows overlaps HubSpot's answers
    instead of following them. The snapshot is safe to plan with: only the sync writes these rows
    (under the workspace's running lock), rows are updated and removed by id, and new ones are
    upserted, so a row someone added meanwhile is never duplicated.
    """
    app = current_app._get_current_object()

    def load() -> dict[str, dict]:
        with app.app_context():
            return load_existing_sequences(workspace_id)

    pool = ThreadPoolExecutor(1, thread_name_prefix="sync-load")
    try:
        return pool.submit(load)
    finally:
        pool.shutdown(wait=False)


def insert_sequences(workspace_id: int, records: Sequence_[dict], now: datetime) -> None:
    """Insert new sequence rows in bulk, as an upsert on (workspace, HubSpot id).

    The upsert brings a row that appeared since the existing rows were read up to date instead of
    failing the whole sync on the unique constraint. PostgreSQL gets INSERT_CHUNK rows per
    statement as JSON parameters (:func:`_pg_upsert`): one round trip and one compiled statement,
    where an executemany is a round trip per row and a multi-row VALUES costs SQLAlchemy 13 bound
    parameters per row to compile. SQLite (in-process, no round trips) takes a plain executemany.
    """
    rows = [
        dict(r, workspace_id=workspace_id, last_synced_at=now, created_at=now, removed_at=None)
        for r in records
    ]
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = _pg_upsert()
        for start in range(0, len(rows), INSERT_CHUNK):
            db.session.execute(statement, _pg_parameters(rows[start : start + INSERT_CHUNK]))
        return
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        table = Sequence.__table__
        stmt = sqlite_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.workspace_id, table.c.hubspot_id],
            set_={name: stmt.excluded[name] for name in _REFRESHED},
        )
    else:
        stmt = insert(Sequence.__table__)
    for start in range(0, len(rows), CHUNK):
        db.session.execute(stmt, rows[start : start + CHUNK])


_INSERTED = (
    "workspace_id",
    "hubspot_id",
    *SEQUENCE_FIELDS,
    "last_synced_at",
    "removed_at",
    "created_at",
)
_REFRESHED = (*SEQUENCE_FIELDS, "last_synced_at", "removed_at")


def _pg_parameters(rows: Sequence_[dict]) -> dict[str, str]:
    """The ``rows`` and ``senders`` parameters of :func:`_pg_upsert`.

    Each distinct senders list is sent once: a row carries its list's position in ``senders``
    (counted from 1, as ``WITH ORDINALITY`` counts) instead of the list. The sequences of a portal
    share a handful of lists (every team sequence is seen by the same users), and the lists were
    most of the parameter: 100,000 sequences seen by 200 users each are 20 million ids, which
    PostgreSQL parsed one by one (10,000 x 50: 0.25 s of the insert's 0.57).
    """
    lists: dict[tuple[str, ...], int] = {}
    out = []
    for row in rows:
        row = dict(row)
        senders = tuple(row.pop("sender_user_ids") or ())
        row["senders"] = lists.setdefault(senders, len(lists) + 1)
        out.append(row)
    return {
        "rows": orjson.dumps(out).decode(),
        "senders": orjson.dumps(list(lists)).decode(),
    }


def _pg_upsert():
    """``INSERT INTO sequences (...) SELECT r.*, s.value FROM json_to_recordset(:rows) AS r(...)
    JOIN json_array_elements(:senders) WITH ORDINALITY AS s ON s.position = r.senders
    ON CONFLICT (workspace_id, hubspot_id) DO UPDATE SET ...`` (:func:`_pg_parameters`)."""
    from sqlalchemy.dialects.postgresql import JSON
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    table = Sequence.__table__
    own = [name for name in _INSERTED if name != "sender_user_ids"]
    rows = (
        db.func.json_to_recordset(cast(bindparam("rows", type_=Text), JSON))
        .table_valued(*(column(n, table.c[n].type) for n in own), column("senders", Integer))
        .render_derived(name="r", with_types=True)
    )
    senders = (
        db.func.json_array_elements(cast(bindparam("senders", type_=Text), JSON))
        .table_valued("value", with_ordinality="position")
        .render_derived(name="s")
    )
    chosen = {name: rows.c[name] for name in own}
    chosen["sender_user_ids"] = senders.c.value
    source = db.select(*(chosen[name] for name in _INSERTED)).join_from(
        rows, senders, senders.c.position == rows.c.senders
    )
    stmt = pg_insert(table).from_select(_INSERTED, source)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.workspace_id, table.c.hubspot_id],
        set_={name: stmt.excluded[name] for name in _REFRESHED},
    )


def write_sequences(
    workspace_id: int,
    records: Mapping[str, dict],
    now: datetime,
    keep_owners: Iterable[str] = (),
    existing: Mapping[str, Mapping] | None = None,
) -> SyncCounts:
    """Apply the merged records with bulk statements; return what changed.

    ``existing``: the stored rows as :func:`load_existing_sequences` gives them (read now when
    not given).
    """
    if existing is None:
        existing = load_existing_sequences(workspace_id)
    plan = plan_sequence_changes(existing, records, keep_owners)
    insert_sequences(workspace_id, plan.inserts, now)
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
    # Everything HubSpot listed was confirmed now: one statement, not one per row (rows just
    # inserted already say so).
    db.session.execute(
        update(Sequence)
        .where(
            Sequence.workspace_id == workspace_id,
            Sequence.removed_at.is_(None),
            db.or_(Sequence.last_synced_at.is_(None), Sequence.last_synced_at != now),
        )
        .values(last_synced_at=now)
        .execution_options(synchronize_session=False)
    )
    return SyncCounts(
        added=len(plan.inserts), updated=len(plan.updates), removed=len(plan.removals)
    )


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
