"""The sync's fetch phase: read users, owners, workflows and every user's sequences from HubSpot
into plain records (nothing written)."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Sequence as Sequence_
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .records import (
    SequenceMerger,
    UserListing,
    _clean_id,
    _short,
    clean_name,
    merge_users,
)

log = logging.getLogger(__name__)


class SyncAborted(Exception):
    """The sync cannot go on; ``reason`` is shown to the user. Not retried."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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
    from ...hubspot.errors import HubSpotClientError

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
        else itertools.chain.from_iterable(_list_one(client, uid) for uid in senders)
    )
    done = 0
    for uid, page, error in listings:
        if page is not None:
            merger.add_page(uid, page)
            continue
        done += 1
        if error is not None:
            if not isinstance(error, HubSpotClientError):
                raise error
            # One user HubSpot will not list (removed meanwhile, lost the seat): keep going, and
            # keep their private sequences rather than calling them removed. The pages already
            # read stay merged: each says who sees what, as HubSpot listed it.
            unreadable.add(uid)
            log.warning("sync: sequences of user %s unreadable: %s", uid, error)
            continue
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
    from ...hubspot.errors import HubSpotClientError

    try:
        return merge_workflows(client.iter_flows())
    except HubSpotClientError as exc:
        log.warning("sync: workflows unreadable, names kept as they were: %s", exc)
        return None


# One step of a user's listing: (user, a page of items, None); at its end (user, None, None), or
# (user, None, the exception that ended it).
Listing = tuple[str, list | None, BaseException | None]


def _list_one(client, uid: str) -> Iterator[Listing]:
    """A user's listing, page by page, then how it ended (the caller decides about an error)."""
    try:
        for page in client.sequence_pages(uid):
            yield uid, page, None
    except Exception as exc:  # handed to the caller, which decides
        yield uid, None, exc
        return
    yield uid, None, None


def _list_concurrently(senders: list[str], clients: list) -> Iterator[Listing]:
    """:func:`_list_one` of every sender, one thread per client (clients not shared), the pages
    yielded as they come.

    Each page is merged (by the caller) as soon as it arrives and then dropped: a user's whole
    listing is never held, so the garbage collector is not woken by thousands of live items,
    and the merge runs in short steps between pages rather than in one long hold of the GIL per
    user while the fetch threads wait for it. The threads need no app context: a client refreshes
    its token through its token store, which writes the connection row on a connection of its own
    (services/tokens.py).
    """
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for c in clients:
        idle.put(c)
    steps: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()  # the caller stopped reading: no more pages

    def task(uid: str) -> None:
        client = idle.get()
        try:
            for step in _list_one(client, uid):
                steps.put(step)
                if stop.is_set():
                    return
        except BaseException as exc:  # the listing's end is always told
            steps.put((uid, None, exc))
        finally:
            idle.put(client)

    with ThreadPoolExecutor(len(clients), thread_name_prefix="sync-fetch") as pool:
        futures = [pool.submit(task, uid) for uid in senders]
        try:
            ended = 0
            while ended < len(senders):
                step = steps.get()
                ended += step[1] is None
                yield step
        finally:
            stop.set()
            for future in futures:
                future.cancel()
