"""Who sends an enrollment: the one place a sender (mailbox) is chosen.

Two modes:

* direct (``mailbox_id``): that mailbox, if its HubSpot user may send the sequence and the mailbox
  can send now;
* rotation (``rotation_id``): among the rotation's mailboxes that may send the sequence and can send
  now, the next one by smooth weighted round-robin (nginx's SWRR; "even" is equal weights).

Every worker shares the SWRR state and the daily caps through Redis, and a pick is ONE Lua script:
it drops cap reservations older than 24 hours, skips mailboxes at their cap, advances the SWRR
current weights, and reserves a cap slot for the winner, atomically. Two workers never take the same
turn and a cap is never overrun. ``release`` gives a slot back when HubSpot refuses the enrollment.

The SWRR state is keyed by rotation, by its configuration (members and weights: editing a
rotation restarts its cursor) and by its reset period (daily, weekly, monthly in the workspace's
time zone, or never), so the cursor restarts at the start of each period.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import (
    Enrollment,
    EnrollmentStatus,
    HubSpotUser,
    Mailbox,
    MailboxKind,
    MailboxStatus,
    ResetPeriod,
    Rotation,
    RotationMember,
    RotationMode,
    Sequence,
    Sharing,
    Workspace,
)
from ..models.failures import FailureCode

log = logging.getLogger(__name__)

CAP_WINDOW = timedelta(hours=24)
HUBSPOT_MAX_DAILY_CAP = 1000
# A rotation's SWRR state outlives its period by a margin; a "never" rotation idle for this long
# restarts its cursor, which is harmless.
STATE_TTL_SECONDS = 40 * 24 * 3600

# The refusals, from the one vocabulary (models/failures.py), as the strings they are stored as.
PERMISSION_DENIED = FailureCode.PERMISSION_DENIED.value
ROTATION_EMPTY = FailureCode.ROTATION_EMPTY.value
ALL_AT_CAP = FailureCode.ALL_AT_CAP.value
NO_ELIGIBLE_MAILBOX = FailureCode.NO_ELIGIBLE_MAILBOX.value
ROTATION_DELETED = FailureCode.ROTATION_DELETED.value
MAILBOX_NOT_FOUND = FailureCode.MAILBOX_NOT_FOUND.value
MAILBOX_UNAVAILABLE = FailureCode.MAILBOX_UNAVAILABLE.value


class NoSender(Exception):
    """Nobody may send this enrollment now: ``code`` for machines, ``message`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"NoSender({self.code!r}, {self.message!r})"


@dataclass
class SenderChoice:
    """The sender picked for one enrollment, holding one reserved slot of the mailbox's cap."""

    mailbox: Mailbox
    hubspot_user: HubSpotUser
    sender_email: str
    alias: str | None
    rotation: Rotation | None
    reservation: str = field(repr=False, default="")
    reserved_at_ms: int = field(repr=False, default=0)
    turn: int | None = None  # the rotation's turn number within its period (None when direct)


class SenderCache:
    """What :func:`choose_sender` reads from the database, read once for a batch of enrollments
    (a drain's claim): rotations and their members (mailboxes with their users), direct mailboxes,
    sequence owners' emails, and the mailboxes whose cap windows are known to be seeded.

    Four queries a row were a third of a drain's CPU (bench_action.py's profile); a batch spans
    about a second, and the drain takes a new cache (and re-reads) for each. A mailbox marked
    disconnected during the batch is the same object (the session's), so the next pick sees it.
    """

    def __init__(self):
        self.rotations: dict[tuple[int, int], Rotation | None] = {}
        self.members: dict[int, list[RotationMember]] = {}
        self.mailboxes: dict[tuple[int, int], Mailbox | None] = {}
        self.owners: dict[tuple[int, str], str | None] = {}
        self.seeded: set[int] = set()


# --- Redis keys and scripts -----------------------------------------------------------------------


def _redis():
    return current_app.extensions["redis"]


def cap_key(mailbox_id: int) -> str:
    """The sorted set of a mailbox's cap reservations: member = reservation id, score = ms."""
    return f"autoseq:senders:cap:{mailbox_id}"


def _seeded_key(mailbox_id: int) -> str:
    return f"autoseq:senders:cap-seeded:{mailbox_id}"


def _ensure_seeded(mailbox_ids, now: datetime, cache: SenderCache | None = None) -> None:
    """After Redis lost its data, rebuild a mailbox's cap window from its Enrollment rows, once.

    A permanent marker per mailbox says its window was seeded; Redis losing the window loses the
    marker with it. Members are ``enrollment:<id>``, so two workers seeding at once add each
    enrollment once.
    """
    ids = [int(i) for i in mailbox_ids if cache is None or int(i) not in cache.seeded]
    if not ids:
        return
    if cache is not None:
        cache.seeded.update(ids)
    redis = _redis()
    flags = redis.mget([_seeded_key(i) for i in ids])
    missing = [i for i, flag in zip(ids, flags, strict=True) if not flag]
    if not missing:
        return
    rows = db.session.execute(
        db.select(Enrollment.id, Enrollment.mailbox_id, Enrollment.created_at).where(
            Enrollment.mailbox_id.in_(missing),
            Enrollment.status == EnrollmentStatus.ENROLLED.value,
            Enrollment.created_at > now - CAP_WINDOW,
        )
    )
    pipe = redis.pipeline(transaction=False)
    for enrollment_id, mailbox_id, created_at in rows:
        pipe.zadd(cap_key(mailbox_id), {f"enrollment:{enrollment_id}": _ms(created_at)}, nx=True)
    for mailbox_id in missing:
        pipe.set(_seeded_key(mailbox_id), 1, nx=True)
    pipe.execute()


# KEYS: cap keys of the candidates.  ARGV: now_ms, window_ms, reservation, then (cap) per candidate.
# Reserves a slot in the first candidate (there is one in direct mode) unless it is at its cap.
_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cap = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used >= cap then
  return {0, used}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window + 60000)
return {1, used + 1}
"""

# KEYS[1]: the rotation's SWRR state hash (field = mailbox id -> current weight, 'turn' -> count);
# KEYS[2..]: cap keys of the candidates, in rotation order.
# ARGV: now_ms, window_ms, reservation, state_ttl_s, then (mailbox_id, weight, cap) per candidate.
# Returns {mailbox_id, turn} or {0, 0} when every candidate is at its cap.
_PICK_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = #KEYS - 1
local total = 0
local best = nil
local best_cw = nil
local ids = {}
local cws = {}
for i = 1, n do
  local base = 4 + (i - 1) * 3
  local id = ARGV[base + 1]
  local weight = tonumber(ARGV[base + 2])
  local cap = tonumber(ARGV[base + 3])
  local key = KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < cap then
    local cw = tonumber(redis.call('HGET', KEYS[1], id) or '0') + weight
    total = total + weight
    ids[#ids + 1] = i
    cws[i] = cw
    if best == nil or cw > best_cw then
      best = i
      best_cw = cw
    end
  end
end
if best == nil then
  return {0, 0}
end
for _, i in ipairs(ids) do
  local cw = cws[i]
  if i == best then cw = cw - total end
  redis.call('HSET', KEYS[1], ARGV[4 + (i - 1) * 3 + 1], cw)
end
local turn = redis.call('HINCRBY', KEYS[1], 'turn', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('ZADD', KEYS[best + 1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[best + 1], window + 60000)
return {tonumber(ARGV[4 + (best - 1) * 3 + 1]), turn}
"""


def _script(name: str, source: str):
    scripts = current_app.extensions.setdefault("autoseq_sender_scripts", {})
    if name not in scripts:
        scripts[name] = _redis().register_script(source)
    return scripts[name]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


# --- reset periods --------------------------------------------------------------------------------


def period_start(reset_period: str, now: datetime, timezone: str = "UTC") -> datetime | None:
    """When the current reset period began (UTC), or None for a rotation that never resets.

    Periods follow the workspace's time zone: a daily rotation restarts at local midnight, a weekly
    one on Monday, a monthly one on the 1st.
    """
    period = ResetPeriod(reset_period)
    if period == ResetPeriod.NEVER:
        return None
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = _now(now).astimezone(zone)
    day = local.date()
    if period == ResetPeriod.WEEKLY:
        day = day - timedelta(days=day.weekday())
    elif period == ResetPeriod.MONTHLY:
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _rotation_state_key(rotation: Rotation, members, now: datetime, timezone: str) -> str:
    signature = ",".join(f"{m.mailbox_id}:{_weight(rotation, m)}" for m in members)
    digest = hashlib.sha256(signature.encode()).hexdigest()[:12]
    start = period_start(rotation.reset_period, now, timezone)
    period = "all" if start is None else start.strftime("%Y%m%dT%H%M")
    return f"autoseq:senders:rotation:{rotation.id}:{digest}:{period}"


def _weight(rotation: Rotation, member) -> int:
    return 1 if rotation.mode == RotationMode.EVEN else max(int(member.weight or 0), 1)


# --- eligibility ----------------------------------------------------------------------------------


def permission_problem(
    sequence: Sequence, user: HubSpotUser, owner_email: str | None
) -> str | None:
    """Why ``user`` may not send ``sequence`` (a readable sentence), or None when they may."""
    if not user.active:
        return f"Permission denied: {user.email} is deactivated in HubSpot"
    if not user.has_seat:
        return (
            f"Permission denied: {user.email} has no Sales Hub or Service Hub Professional "
            "or Enterprise seat"
        )
    if sequence.may_be_sent_by(user.hubspot_user_id):
        return None
    if sequence.sharing == Sharing.PRIVATE:
        owner = owner_email or sequence.owner_hubspot_user_id or "unknown"
        return (
            f"Permission denied: {user.email} may not send the private sequence "
            f"“{sequence.name}” (owner: {owner})"
        )
    return (
        f"Permission denied: {user.email} may not send the sequence “{sequence.name}” "
        "(it is not shared with them in HubSpot)"
    )


def availability_problem(mailbox: Mailbox, today: date) -> str | None:
    """Why ``mailbox`` cannot send today, its cap aside (disconnected, paused, out of office)."""
    if mailbox.status == MailboxStatus.DISCONNECTED:
        return f"{mailbox.email} is disconnected"
    if mailbox.status == MailboxStatus.PAUSED:
        return f"{mailbox.email} is paused by an admin"
    if mailbox.out_of_office_until is not None and mailbox.out_of_office_until >= today:
        return f"{mailbox.email} is out of office until {mailbox.out_of_office_until.isoformat()}"
    return None


def _owner_email(
    workspace_id: int, sequence: Sequence, cache: SenderCache | None = None
) -> str | None:
    if not sequence.owner_hubspot_user_id:
        return None
    if cache is not None:
        key = (workspace_id, sequence.owner_hubspot_user_id)
        if key not in cache.owners:
            cache.owners[key] = _owner_email(workspace_id, sequence)
        return cache.owners[key]
    return db.session.scalar(
        db.select(HubSpotUser.email).filter_by(
            workspace_id=workspace_id, hubspot_user_id=sequence.owner_hubspot_user_id
        )
    )


def _sender_fields(mailbox: Mailbox) -> tuple[str, str | None]:
    if mailbox.kind == MailboxKind.ALIAS:
        return (mailbox.inbox_email or mailbox.hubspot_user.email), mailbox.email
    return mailbox.email, None


def _cap(mailbox: Mailbox) -> int:
    return min(max(int(mailbox.daily_cap or 0), 0), HUBSPOT_MAX_DAILY_CAP)


def _local_today(workspace: Workspace | None, now: datetime) -> date:
    try:
        zone = ZoneInfo((workspace.timezone if workspace else None) or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


# --- the service ----------------------------------------------------------------------------------


def choose_sender(
    workspace_id: int,
    sequence: Sequence,
    *,
    mailbox_id: int | None = None,
    rotation_id: int | None = None,
    exclude_mailbox_ids=(),
    now: datetime | None = None,
    cache: SenderCache | None = None,
) -> SenderChoice:
    """Pick who sends ``sequence`` for one enrollment and reserve a slot of that mailbox's cap.

    Give exactly one of ``mailbox_id`` (direct) or ``rotation_id`` (rotation). Mailboxes in
    ``exclude_mailbox_ids`` are skipped (failover after HubSpot refused one). ``now`` exists for
    tests; ``cache`` (a :class:`SenderCache`) is a batch's reads, else the database is read
    now. Raises :class:`NoSender` with a code and a readable reason when nobody may send.
    """
    if (mailbox_id is None) == (rotation_id is None):
        raise ValueError("choose_sender needs exactly one of mailbox_id or rotation_id")
    moment = _now(now)
    workspace = db.session.get(Workspace, workspace_id)
    cache = cache if cache is not None else SenderCache()
    if mailbox_id is not None:
        return _choose_direct(
            workspace, sequence, int(mailbox_id), exclude_mailbox_ids, moment, cache
        )
    return _choose_from_rotation(
        workspace, sequence, int(rotation_id), exclude_mailbox_ids, moment, cache
    )


def _load_mailbox(workspace_id: int, mailbox_id: int, cache: SenderCache) -> Mailbox | None:
    key = (workspace_id, mailbox_id)
    if key not in cache.mailboxes:
        cache.mailboxes[key] = db.session.scalar(
            db.select(Mailbox)
            .filter_by(id=mailbox_id, workspace_id=workspace_id)
            .options(joinedload(Mailbox.hubspot_user))
            .execution_options(populate_existing=True)  # current status, cap and seat
        )
    return cache.mailboxes[key]


def _load_rotation(workspace_id: int, rotation_id: int, cache: SenderCache) -> Rotation | None:
    key = (workspace_id, rotation_id)
    if key not in cache.rotations:
        cache.rotations[key] = db.session.scalar(
            db.select(Rotation)
            .filter_by(id=rotation_id, workspace_id=workspace_id)
            .execution_options(populate_existing=True)  # a long-lived session must see a deletion
        )
    return cache.rotations[key]


def _load_members(rotation_id: int, cache: SenderCache) -> list[RotationMember]:
    if rotation_id not in cache.members:
        cache.members[rotation_id] = list(
            db.session.scalars(
                db.select(RotationMember)
                .filter_by(rotation_id=rotation_id)
                .order_by(RotationMember.position, RotationMember.id)
                .options(joinedload(RotationMember.mailbox).joinedload(Mailbox.hubspot_user))
                .execution_options(populate_existing=True)  # current status, cap and seat
            )
        )
    return cache.members[rotation_id]


def _choose_direct(workspace, sequence, mailbox_id, exclude, now, cache) -> SenderChoice:
    mailbox = _load_mailbox(workspace.id if workspace else -1, mailbox_id, cache)
    if mailbox is None:
        raise NoSender(MAILBOX_NOT_FOUND, f"Mailbox #{mailbox_id} does not exist in this workspace")
    if mailbox.id in {int(x) for x in exclude}:
        raise NoSender(
            MAILBOX_UNAVAILABLE, f"{mailbox.email} was refused by HubSpot for this enrollment"
        )
    user = mailbox.hubspot_user
    problem = permission_problem(sequence, user, _owner_email(workspace.id, sequence, cache))
    if problem:
        raise NoSender(PERMISSION_DENIED, problem)
    problem = availability_problem(mailbox, _local_today(workspace, now))
    if problem:
        raise NoSender(MAILBOX_UNAVAILABLE, f"Mailbox unavailable: {problem}")
    _ensure_seeded([mailbox.id], now, cache)
    reservation = uuid.uuid4().hex
    ok, used = _script("reserve", _RESERVE_LUA)(
        keys=[cap_key(mailbox.id)],
        args=[_ms(now), _ms_window(), reservation, _cap(mailbox)],
    )
    if not ok:
        raise NoSender(
            MAILBOX_UNAVAILABLE,
            f"Mailbox unavailable: {mailbox.email} reached its cap of {_cap(mailbox)} "
            "enrollments in the last 24 hours",
        )
    sender_email, alias = _sender_fields(mailbox)
    return SenderChoice(mailbox, user, sender_email, alias, None, reservation, _ms(now))


def _ms_window() -> int:
    return int(CAP_WINDOW.total_seconds() * 1000)


def _choose_from_rotation(workspace, sequence, rotation_id, exclude, now, cache) -> SenderChoice:
    rotation = _load_rotation(workspace.id if workspace else -1, rotation_id, cache)
    if rotation is None:
        raise NoSender(ROTATION_DELETED, f"Rotation #{rotation_id} no longer exists")
    if rotation.deleted_at is not None:
        raise NoSender(
            ROTATION_DELETED,
            f"The rotation “{rotation.name}” was deleted on "
            f"{rotation.deleted_at.date().isoformat()}; pick another sender in the workflow",
        )
    members = _load_members(rotation.id, cache)
    if not members:
        raise NoSender(ROTATION_EMPTY, f"The rotation “{rotation.name}” has no mailboxes")

    excluded = {int(x) for x in exclude}
    owner_email = _owner_email(workspace.id, sequence, cache)
    today = _local_today(workspace, now)
    permitted, candidates, reasons = [], [], []
    for member in members:
        mailbox = member.mailbox
        if mailbox.id in excluded:
            reasons.append(f"{mailbox.email} was refused by HubSpot for this enrollment")
            continue
        problem = permission_problem(sequence, mailbox.hubspot_user, owner_email)
        if problem:
            continue
        permitted.append(member)
        problem = availability_problem(mailbox, today)
        if problem:
            reasons.append(problem)
            continue
        candidates.append(member)

    if not permitted and not any(m.mailbox.id in excluded for m in members):
        private = sequence.sharing == Sharing.PRIVATE
        what = "this private sequence" if private else f"the sequence “{sequence.name}”"
        extra = f" (owner: {owner_email})" if private and owner_email else ""
        raise NoSender(
            NO_ELIGIBLE_MAILBOX,
            f"None of the rotation “{rotation.name}”'s mailboxes may send {what}{extra}",
        )
    if not candidates:
        raise NoSender(
            NO_ELIGIBLE_MAILBOX,
            f"None of the rotation “{rotation.name}”'s mailboxes can send now: "
            + "; ".join(reasons),
        )

    _ensure_seeded([m.mailbox.id for m in candidates], now, cache)
    reservation = uuid.uuid4().hex
    state_key = _rotation_state_key(rotation, members, now, workspace.timezone)
    args = [_ms(now), _ms_window(), reservation, STATE_TTL_SECONDS]
    for member in candidates:
        args += [member.mailbox.id, _weight(rotation, member), _cap(member.mailbox)]
    picked, turn = _script("pick", _PICK_LUA)(
        keys=[state_key, *(cap_key(m.mailbox.id) for m in candidates)], args=args
    )
    if not picked:
        at_cap = ", ".join(f"{m.mailbox.email} ({_cap(m.mailbox)})" for m in candidates)
        others = f"; the others: {'; '.join(reasons)}" if reasons else ""
        raise NoSender(
            ALL_AT_CAP,
            f"Every available mailbox of the rotation “{rotation.name}” reached its cap over "
            f"the last 24 hours: {at_cap}{others}",
        )
    mailbox = next(m.mailbox for m in candidates if m.mailbox.id == int(picked))
    sender_email, alias = _sender_fields(mailbox)
    return SenderChoice(
        mailbox, mailbox.hubspot_user, sender_email, alias, rotation, reservation, _ms(now), turn
    )


def release(choice: SenderChoice) -> None:
    """Give back the cap slot ``choice`` reserved (HubSpot refused the enrollment)."""
    if choice.reservation:
        _redis().zrem(cap_key(choice.mailbox.id), choice.reservation)


def mark_disconnected(mailbox_id: int, reason: str) -> None:
    """Mark a mailbox disconnected (HubSpot answered NO_CONNECTED_INBOX) and keep the reason.

    Commits: a worker that fails over to the next mailbox must not pick this one again, and
    neither must any other worker.
    """
    mailbox = db.session.get(Mailbox, mailbox_id)
    if mailbox is None:
        return
    mailbox.status = MailboxStatus.DISCONNECTED.value
    mailbox.disconnect_reason = reason[:500]
    db.session.commit()
    log.warning("mailbox %s (%s) marked disconnected: %s", mailbox_id, mailbox.email, reason)


def sent_last_24h(mailbox_ids, *, now: datetime | None = None) -> dict[int, int]:
    """Enrollments each mailbox sent (reserved) over the rolling 24 hours: what its cap counts."""
    ids = [int(i) for i in mailbox_ids]
    if not ids:
        return {}
    _ensure_seeded(ids, _now(now))
    moment = _ms(_now(now))
    pipe = _redis().pipeline(transaction=False)
    for mailbox_id in ids:
        pipe.zcount(cap_key(mailbox_id), f"({moment - _ms_window()}", "+inf")
    return dict(zip(ids, (int(n) for n in pipe.execute()), strict=True))
