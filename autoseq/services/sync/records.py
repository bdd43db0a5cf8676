"""The sync's pure part: HubSpot payloads merged into plain records, and the plan of what to
write (no database, no HubSpot: tested alone, tests/sync/test_merge.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from collections.abc import Sequence as Sequence_
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ...models import (
    SequenceState,
    Sharing,
)

log = logging.getLogger(__name__)

ID_MAX = 32  # String(32) columns: longer ids are not HubSpot ids


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

    ``add_page(user_id, items)`` (or ``add(user_id, item)``) is called for every page of every
    user's listing; ``records()`` gives the merged result. A sequence seen by a user other than its
    owner is a team sequence; the users who see it (and may send: ``sender_ids``) are its senders.

    Who saw a sequence is kept as a bit mask over the users (one int per sequence, not a set of
    user ids): 100,000 sequences seen by 200 users would otherwise hold 14 million set entries.
    Team sequences all share one mask, so turning masks back into user ids is done once per mask.
    """

    def __init__(self, sender_ids: Iterable[str] = ()):
        self.sender_ids = set(sender_ids)
        self.items: dict[str, Mapping] = {}
        self.viewers: dict[str, int] = {}  # hubspot id -> mask of the users who listed it
        self._bits: dict[str, int] = {}
        self._users: list[str] = []
        self.skipped = 0
        self.seen = 0

    def _bit(self, user_id: str) -> int:
        bit = self._bits.get(user_id)
        if bit is None:
            bit = self._bits[user_id] = 1 << len(self._users)
            self._users.append(user_id)
        return bit

    def add(self, user_id: str, item) -> None:
        self.add_page(user_id, (item,))

    def add_page(self, user_id: str, items: Sequence_) -> None:
        """Every item of one page of ``user_id``'s listing."""
        bit = self._bit(user_id)
        viewers = self.viewers
        self.seen += len(items)
        for item in items:
            # Fast path: an id seen before, exactly as it is stored (so already clean).
            if type(item) is dict:
                raw = item.get("id")
                if type(raw) is str:
                    mask = viewers.get(raw)
                    if mask is not None:
                        viewers[raw] = mask | bit
                        continue
            sid = _clean_id(item.get("id")) if isinstance(item, Mapping) else None
            if sid is None:
                self.skipped += 1
                log.warning("sync: skipped a sequence without a usable id: %.200r", item)
                continue
            mask = viewers.get(sid)
            if mask is None:
                # The fields no other listing changes are read now, while the other users'
                # listings are still being fetched, not after the last one (records()).
                self.items[sid] = self._fields(sid, item)
                viewers[sid] = bit
            else:
                viewers[sid] = mask | bit

    def _users_of(self, mask: int) -> tuple[frozenset[str], tuple[str, ...]]:
        """(every user in ``mask``, the senders among them in order)."""
        users = frozenset(u for i, u in enumerate(self._users) if mask >> i & 1)
        return users, tuple(sorted(u for u in users if u in self.sender_ids))

    def records(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        by_mask: dict[int, tuple[frozenset[str], tuple[str, ...]]] = {}
        for sid, fields in self.items.items():
            if fields is None:  # unreadable fields (logged when first seen)
                continue
            mask = self.viewers[sid]
            users = by_mask.get(mask)
            if users is None:
                users = by_mask[mask] = self._users_of(mask)
            viewers, senders = users
            owner = fields["owner_hubspot_user_id"]
            others = viewers - {owner} if owner else viewers
            # With no owner given, being seen by two users still proves it is shared.
            shared = bool(others) if owner else len(viewers) > 1
            out[sid] = dict(
                fields,
                sharing=(Sharing.TEAM if shared else Sharing.PRIVATE).value,
                sender_user_ids=list(senders),
            )
        return out

    def _fields(self, sid: str, item: Mapping) -> dict | None:
        """A sequence's own fields (all but sharing and senders); None when unreadable (one odd
        record never fails the sync)."""
        try:
            return {
                "hubspot_id": sid,
                "name": clean_name(item.get("name")),
                "owner_hubspot_user_id": _clean_id(item.get("userId")),
                "folder_id": _clean_id(item.get("folderId")),
                "hs_created_at": parse_timestamp(item.get("createdAt")),
                "hs_updated_at": parse_timestamp(item.get("updatedAt")),
                "state": map_state(item),
            }
        except Exception:
            self.skipped += 1
            log.warning("sync: skipped sequence %s with unreadable fields", sid, exc_info=True)
            return None


def merge_sequences(
    listings: Mapping[str, Iterable], sender_ids: Iterable[str] | None = None
) -> tuple[dict[str, dict], int]:
    """Merge ``{user_id: [sequence items]}`` into ``({hubspot_id: record}, skipped)``."""
    merger = SequenceMerger(listings.keys() if sender_ids is None else sender_ids)
    for user_id, items in listings.items():
        merger.add_page(str(user_id), list(items))
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
    if old == new:  # most fields of a re-sync: no type checks
        return False
    if isinstance(old, datetime) and isinstance(new, datetime):
        return abs((old - new).total_seconds()) >= 0.001
    if isinstance(old, list) or isinstance(new, list):
        # Both sides are stored sorted: equal lists need no sort (200 senders x 100,000 rows).
        return sorted(old or []) != sorted(new or [])
    return True
