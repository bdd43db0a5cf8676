"""In-memory state of the sandbox: the app, portals and everything in them.

All mutation goes through :class:`SandboxState` methods or happens while holding
``state.lock`` (a re-entrant lock). Critical sections are kept short: no network I/O
is ever done while holding it.

Visibility rules (documented choices):

* a *team* (``shared=True``) sequence is visible to every user of the portal; a
  *private* one only to its owner (``userId``);
* deactivated users are not listed by ``/settings/v3/users``; their owner is
  ``archived`` and only listed by ``/crm/v3/owners?archived=true``; they cannot enroll
  (403 PERMISSION_DENIED) but the sequence list still answers for them.
"""

from __future__ import annotations

import bisect
import functools
import json
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .crm import CrmData, CrmRecord, object_type

SEQUENCE_STATES = ("active", "paused", "draft", "archived")
DEFAULT_RATE_LIMIT = (110, 10.0)


@functools.lru_cache(maxsize=1 << 18)
def iso(ts: float) -> str:
    """Format a Unix timestamp as ISO 8601 UTC with millisecond precision and Z.

    Cached: a listing formats the same few timestamps again on every page (half of a sequence
    page's CPU in the sandbox, bench/bench_sync.py); the text is the same either way.
    """
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_rate_limit(value) -> tuple[int, float] | None:
    """Parse ``"110/10s"`` (also ``"110/10"``, ``"5/500ms"``) or ``off``/None into a tuple.

    Raises ValueError on anything else.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        count, secs = int(value[0]), float(value[1])
    else:
        text = str(value).strip().lower()
        if text in ("off", "none", "0", ""):
            return None
        count_text, _, interval = text.partition("/")
        count = int(count_text)
        if interval.endswith("ms"):
            secs = float(interval[:-2]) / 1000.0
        elif interval.endswith("s"):
            secs = float(interval[:-1])
        elif interval:
            secs = float(interval)
        else:
            secs = 10.0
    if count < 1 or secs <= 0:
        raise ValueError("rate limit must be a positive count per positive interval")
    return count, secs


SEAT_NAMES_MODES = ("listed", "empty", "omitted")


@dataclass
class App:
    """The developer app registered with the sandbox."""

    client_id: str
    client_secret: str
    app_id: int
    developer_api_key: str  # the legacy v4 definitions path (``?hapikey=``)
    # A developer OAuth token (scope developers-write): the dated definitions path (Bearer).
    developer_token: str = field(default_factory=lambda: f"devtoken-{secrets.token_hex(8)}")

    def to_dict(self) -> dict:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "app_id": self.app_id,
            "developer_api_key": self.developer_api_key,
            "developer_token": self.developer_token,
        }


@dataclass
class User:
    id: int
    email: str
    first_name: str
    last_name: str
    owner_id: int
    active: bool = True
    seat: bool = True
    super_admin: bool = False
    inboxes: dict[str, bool] = field(default_factory=dict)  # email -> connected

    def to_admin(self) -> dict:
        return {
            "id": self.id,
            "ownerId": self.owner_id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "active": self.active,
            "seat": self.seat,
            "superAdmin": self.super_admin,
            "inboxes": [{"email": e, "connected": c} for e, c in self.inboxes.items()],
        }


@dataclass
class Contact:
    id: str
    email: str
    first_name: str = ""
    last_name: str = ""
    unsubscribed: bool = False
    bounced: bool = False

    def properties(self) -> dict:
        return {"email": self.email, "firstname": self.first_name, "lastname": self.last_name}

    def to_admin(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "unsubscribed": self.unsubscribed,
            "bounced": self.bounced,
        }


@dataclass
class Sequence:
    id: str
    name: str
    user_id: int
    shared: bool
    created_at: float
    updated_at: float
    folder_id: str | None = None
    state: str | None = None

    def to_api(self, include_state: bool) -> dict:
        out = {
            "id": self.id,
            "name": self.name,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "userId": str(self.user_id),
        }
        if self.folder_id is not None:
            out["folderId"] = self.folder_id
        if include_state and self.state:
            out["state"] = self.state
        return out

    def to_admin(self) -> dict:
        out = self.to_api(True)
        out["shared"] = self.shared
        out["state"] = self.state
        return out


@dataclass
class Enrollment:
    id: str
    contact_id: str
    sequence_id: str
    sequence_name: str
    user_id: int
    sender_email: str
    to_email: str
    enrolled_at: float
    sender_alias: str | None = None
    ends_at: float | None = None  # when the sequence finishes with the contact (None: not yet)

    def to_api(self) -> dict:
        return {
            "id": self.id,
            "toEmail": self.to_email,
            "enrolledAt": iso(self.enrolled_at),
            "updatedAt": iso(self.enrolled_at),
        }

    def to_contact_api(self, enrolled_by_email: str) -> dict:
        out = self.to_api()
        out.update(
            {
                "sequenceId": self.sequence_id,
                "sequenceName": self.sequence_name,
                "enrolledBy": str(self.user_id),
                "enrolledByEmail": enrolled_by_email,
            }
        )
        return out

    def to_admin(self) -> dict:
        out = self.to_contact_api(self.sender_email)
        out["contactId"] = self.contact_id
        out["userId"] = self.user_id
        out["senderEmail"] = self.sender_email
        out["senderAliasAddress"] = self.sender_alias
        out["endsAt"] = iso(self.ends_at) if self.ends_at else None
        return out


@dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    storm_until: float = 0.0

    def to_dict(self) -> dict:
        remaining = max(0.0, self.storm_until - time.time())
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "drop_rate": self.drop_rate,
            "rate_limit_storm_seconds": round(remaining, 3),
        }


@dataclass
class Portal:
    id: int
    domain: str
    users: dict[int, User] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    # contact id -> the contact's current enrollment (read through current_enrollment(), which
    # forgets one whose sequence has ended: HubSpot allows one sequence at a time per contact)
    enrollments: dict[str, Enrollment] = field(default_factory=dict)
    # seconds a sequence runs for a contact; None: until ended from the admin API or page
    enrollment_length: float | None = None
    crm: CrmData = field(default_factory=CrmData)  # companies, deals, tickets, labels
    flows: dict[str, dict] = field(default_factory=dict)  # workflow id -> /automation/v4/flows item
    token_ttl: float | None = None  # None: sandbox default
    rate_limit: object = "default"  # "default", None (off) or (count, seconds)
    daily_cap: int = 1000
    include_state: bool = False
    # /settings/v3/users ``seatNames``: "listed", "empty" ([] for everyone) or "omitted" (no key)
    seat_names: str = "listed"
    faults: Faults = field(default_factory=Faults)
    # sorted int ids: team sequences, and private sequences per owner user id
    team_ids: list[int] = field(default_factory=list)
    private_ids: dict[int, list[int]] = field(default_factory=dict)
    sends: dict[str, deque] = field(default_factory=dict)  # inbox email -> send times
    stats_requests: int = 0
    stats_rate_limited: int = 0
    stats_by_path: dict[str, int] = field(default_factory=dict)
    stats_by_status: dict[str, int] = field(default_factory=dict)

    def current_enrollment(self, contact_id: str) -> Enrollment | None:
        """The contact's enrollment if its sequence has not ended (an ended one is dropped)."""
        enrollment = self.enrollments.get(contact_id)
        if enrollment is not None and enrollment.ends_at and enrollment.ends_at <= time.time():
            del self.enrollments[contact_id]
            return None
        return enrollment

    def current_enrollments(self) -> list[Enrollment]:
        """Every enrollment still running, oldest first."""
        ids = list(self.enrollments)
        return sorted(
            (e for e in map(self.current_enrollment, ids) if e is not None), key=lambda e: int(e.id)
        )

    def add_flow(self, flow_id, name: str | None = None, object_type_id: str = "0-1") -> dict:
        """A workflow (kept if it exists): what ``/automation/v4/flows`` lists."""
        key = str(int(flow_id))
        if key not in self.flows:
            stamp = datetime.fromtimestamp(time.time(), UTC).isoformat().replace("+00:00", "Z")
            self.flows[key] = {
                "id": key,
                "name": name or f"Workflow {key}",
                "isEnabled": True,
                "objectTypeId": object_type_id,
                "flowType": "WORKFLOW",
                "revisionId": "1",
                "createdAt": stamp,
                "updatedAt": stamp,
            }
        return self.flows[key]

    # -- sequence index -------------------------------------------------
    def index_add(self, seq: Sequence) -> None:
        """Add a sequence to the visibility index."""
        target = self.team_ids if seq.shared else self.private_ids.setdefault(seq.user_id, [])
        key = int(seq.id)
        if not target or target[-1] < key:
            target.append(key)
        else:
            bisect.insort(target, key)

    def index_remove(self, seq: Sequence) -> None:
        """Remove a sequence from the visibility index."""
        target = self.team_ids if seq.shared else self.private_ids.get(seq.user_id, [])
        key = int(seq.id)
        pos = bisect.bisect_left(target, key)
        if pos < len(target) and target[pos] == key:
            del target[pos]

    def visible(self, seq: Sequence, user_id: int) -> bool:
        """True when the user sees this sequence."""
        return seq.shared or seq.user_id == user_id

    def visible_count(self, user_id: int) -> int:
        return len(self.team_ids) + len(self.private_ids.get(user_id, []))

    def visible_page(self, user_id: int, after_id: int | None, limit: int) -> list[int]:
        """Return up to ``limit`` visible sequence ids greater than ``after_id``, ascending."""
        a = self.team_ids
        b = self.private_ids.get(user_id, [])
        start = -1 if after_id is None else after_id
        i = bisect.bisect_right(a, start)
        j = bisect.bisect_right(b, start)
        # The next ``limit`` of each list, merged by a sort (two sorted runs: one merge, in C):
        # the same ids as merging item by item.
        return sorted(a[i : i + limit] + b[j : j + limit])[:limit]

    def owners_by_id(self) -> dict[int, User]:
        return {u.owner_id: u for u in self.users.values()}

    def summary(self) -> dict:
        return {
            "id": self.id,
            "domain": self.domain,
            "users": len(self.users),
            "sequences": len(self.sequences),
            "contacts": len(self.contacts),
            "enrollments": len(self.current_enrollments()),
            "records": {k: len(v) for k, v in self.crm.records.items()},
        }

    def settings_dict(self, default_ttl: float, default_rate) -> dict:
        rate = default_rate if self.rate_limit == "default" else self.rate_limit
        return {
            "token_ttl": self.token_ttl if self.token_ttl is not None else default_ttl,
            "rate_limit": None if rate is None else f"{rate[0]}/{rate[1]:g}s",
            "daily_cap": self.daily_cap,
            "include_state": self.include_state,
            "seat_names": self.seat_names,
            "enrollment_length": self.enrollment_length,
        }


@dataclass
class AuthCode:
    code: str
    portal_id: int
    user_id: int
    scopes: list[str]
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    portal_id: int
    user_id: int
    scopes: list[str]
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    portal_id: int
    user_id: int
    scopes: list[str]
    expires_at: float
    refresh_token: str
    revoked: bool = False


@dataclass
class Callback:
    """One workflow action execution (one contact), as HubSpot tracks it."""

    id: str
    portal_id: int
    definition_id: str
    definition_version: int
    workflow_id: int
    contact_id: str  # the enrolled object's id (a contact, or the deal/company/ticket)
    input_fields: dict
    created_at: float
    object_type: str = "CONTACT"  # CONTACT, DEAL, COMPANY or TICKET
    status: str = "pending"  # pending, delivering, retrying, blocked, succeeded,
    # fail_continue, failed, completed, expired
    attempts: list[dict] = field(default_factory=list)
    output_fields: dict | None = None  # from the synchronous answer
    completion: dict | None = None  # {"outputFields", "completedAt"}
    expires_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def refresh(self) -> None:
        """Expire a blocked callback whose expiration passed."""
        if self.status == "blocked" and self.expires_at and time.time() > self.expires_at:
            self.status = "expired"

    def to_dict(self) -> dict:
        self.refresh()
        return {
            "callbackId": self.id,
            "portalId": self.portal_id,
            "definitionId": self.definition_id,
            "workflowId": self.workflow_id,
            "contactId": self.contact_id,
            "objectType": self.object_type,
            "inputFields": self.input_fields,
            "status": self.status,
            "attempts": list(self.attempts),
            "outputFields": self.output_fields,
            "completion": self.completion,
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.expires_at) if self.expires_at else None,
        }


FIRST_NAMES = [
    "Alice",
    "Bruno",
    "Chloe",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kara",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
]
LAST_NAMES = [
    "Martin",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Rossi",
    "Haddad",
    "Kim",
    "Silva",
    "Dubois",
    "Novak",
    "Larsen",
    "Costa",
    "Ivanova",
    "Brown",
    "Tanaka",
    "Moreau",
]
DEMO_SEQUENCES = [
    ("[INBOUND] Demo Request - 3 Day", True, "inbound"),
    ("Inbound Demo Request - 5 Day Nurture", True, "inbound"),
    ("[INBOUND] Pricing Page Visitor", True, "inbound"),
    ("[INBOUND] Free Trial Signup - Week 1", True, "inbound"),
    ("Inbound Webinar Registrant", False, "inbound"),
    ("Cold Outbound - SaaS Companies", True, "outbound"),
    ("Cold Outbound - Fintech VP Sales", False, "outbound"),
    ("Cold Outbound - Healthcare IT", True, "outbound"),
    ("[OUTBOUND] Competitor Displacement", False, "outbound"),
    ("[OUTBOUND] Series A Founders", True, "outbound"),
    ("Event Follow-up - Q4 2025", True, "events"),
    ("[EVENT] SaaStr 2026 Booth Visitors", True, "events"),
    ("[EVENT] Dreamforce Meetings Booked", False, "events"),
    ("[EVENT] Webinar No-Show", True, "events"),
    ("[NURTURE] Closed Lost - 90 Day Re-engage", True, "nurture"),
    ("[NURTURE] Stalled Opportunity", False, "nurture"),
    ("[NURTURE] Newsletter Engaged Leads", True, "nurture"),
    ("[NURTURE] Product Update Q1", True, "nurture"),
    ("Customer Onboarding - Kickoff", True, None),
    ("Renewal Reminder - 60 Days", True, None),
    ("Upsell - Enterprise Tier", False, None),
    ("Referral Ask - Happy Customers", True, None),
    ("Personal Follow-up (Alice)", False, None),
    ("Re-engage Cold Leads 2024", True, None),
    ("Partner Intro Sequence", False, None),
]
DEMO_FOLDERS = {"inbound": "1001", "outbound": "1002", "events": "1003", "nurture": "1004"}
# The demo portal's workflows (42 is the sandbox workflow page's default id).
DEMO_FLOWS = [
    (42, "New MQL: start SDR outreach"),
    (25529510, "Webinar attendees: follow-up sequence"),
    (25529511, "Trial signup: onboarding nudge"),
]


class SandboxState:
    """Everything the sandbox knows, guarded by ``self.lock``."""

    def __init__(
        self,
        app: App | None = None,
        token_ttl: float = 1800.0,
        rate_limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
        refuse_legacy: bool = False,
    ):
        self.lock = threading.RLock()
        self.app = app or App(
            client_id=f"sandbox-client-{secrets.token_hex(4)}",
            client_secret=secrets.token_hex(16),
            app_id=int(secrets.randbelow(900000) + 100000),
            developer_api_key=f"devkey-{secrets.token_hex(8)}",
        )
        self.token_ttl = float(token_ttl)
        # Refuse HubSpot's retired/legacy paths (api.LEGACY_PREFIXES) with a 410; count them.
        self.refuse_legacy = refuse_legacy
        self.legacy_calls: dict[str, int] = {}
        self.rate_limit = rate_limit
        self.code_ttl = 300.0
        self.portals: dict[int, Portal] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.definitions: dict[str, dict] = {}
        self.callbacks: dict[str, Callback] = {}
        self.seed_spec: tuple = ("empty", {})
        self._next_portal = 100001
        self._next_user = 7000001
        self._next_owner = 81000001
        self._next_sequence = 2000001
        self._next_enrollment = 500000001
        self._next_definition = 1001
        self._next_callback = 1
        self._next_record = 9000001

    # -- ids --------------------------------------------------------------
    def new_callback_id(self, portal_id: int) -> str:
        with self.lock:
            n = self._next_callback
            self._next_callback += 1
        return f"ap-{portal_id}-{int(time.time() * 1000)}-{n}-{secrets.randbelow(10**6)}"

    def new_definition_id(self) -> str:
        with self.lock:
            n = self._next_definition
            self._next_definition += 1
        return str(n)

    def new_record_id(self) -> str:
        with self.lock:
            n = self._next_record
            self._next_record += 1
        return str(n)

    def new_enrollment_id(self) -> str:
        with self.lock:
            n = self._next_enrollment
            self._next_enrollment += 1
        return str(n)

    # -- lookup helpers ---------------------------------------------------
    def effective_ttl(self, portal: Portal) -> float:
        return portal.token_ttl if portal.token_ttl is not None else self.token_ttl

    def effective_rate_limit(self, portal: Portal):
        return self.rate_limit if portal.rate_limit == "default" else portal.rate_limit

    # -- building ---------------------------------------------------------
    def add_portal(self, portal_id: int | None = None, domain: str | None = None) -> Portal:
        """Create an empty portal and return it."""
        with self.lock:
            if portal_id is None:
                portal_id = self._next_portal
            if portal_id in self.portals:
                raise ValueError(f"portal {portal_id} already exists")
            self._next_portal = max(self._next_portal, portal_id + 1)
            portal = Portal(id=portal_id, domain=domain or f"sandbox-{portal_id}.hubspot.com")
            self.portals[portal_id] = portal
            return portal

    def add_user(
        self,
        portal: Portal,
        email: str,
        first_name: str = "",
        last_name: str = "",
        seat: bool = True,
        active: bool = True,
        super_admin: bool = False,
        user_id: int | None = None,
        inboxes: list[str] | None = None,
    ) -> User:
        """Add a user (with its owner and its login email as a connected inbox)."""
        with self.lock:
            if user_id is None:
                user_id = self._next_user
            self._next_user = max(self._next_user, user_id + 1)
            owner_id = self._next_owner
            self._next_owner += 1
            if user_id in portal.users:
                raise ValueError(f"user {user_id} already exists")
            if any(u.email.lower() == email.lower() for u in portal.users.values()):
                raise ValueError(f"a user with email {email} already exists")
            user = User(
                id=user_id,
                email=email,
                first_name=first_name,
                last_name=last_name,
                owner_id=owner_id,
                active=active,
                seat=seat,
                super_admin=super_admin,
            )
            for box in inboxes if inboxes is not None else [email]:
                user.inboxes[box] = True
            portal.users[user_id] = user
            return user

    def add_sequence(
        self,
        portal: Portal,
        name: str,
        user_id: int,
        shared: bool = True,
        folder_id: str | None = None,
        state: str | None = "active",
        created_at: float | None = None,
        sequence_id: str | None = None,
    ) -> Sequence:
        """Create a sequence owned by ``user_id``."""
        with self.lock:
            if user_id not in portal.users:
                raise ValueError(f"unknown user {user_id}")
            if sequence_id is None:
                sequence_id = str(self._next_sequence)
            self._next_sequence = max(self._next_sequence, int(sequence_id) + 1)
            if sequence_id in portal.sequences:
                raise ValueError(f"sequence {sequence_id} already exists")
            now = created_at if created_at is not None else time.time()
            seq = Sequence(
                id=sequence_id,
                name=name,
                user_id=user_id,
                shared=shared,
                created_at=now,
                updated_at=now,
                folder_id=folder_id,
                state=state,
            )
            portal.sequences[sequence_id] = seq
            portal.index_add(seq)
            return seq

    def update_sequence(self, portal: Portal, seq: Sequence, **changes) -> Sequence:
        """Apply changes (name, shared, state, folder_id, user_id) to a sequence."""
        with self.lock:
            portal.index_remove(seq)
            for key, value in changes.items():
                setattr(seq, key, value)
            seq.updated_at = time.time()
            portal.index_add(seq)
            return seq

    def delete_sequence(self, portal: Portal, seq: Sequence) -> None:
        with self.lock:
            portal.index_remove(seq)
            portal.sequences.pop(seq.id, None)

    def add_record(
        self, portal: Portal, kind: str, name: str | None, contacts: list[tuple[str, list[str]]]
    ) -> CrmRecord:
        """A company, deal or ticket associated with ``contacts`` ([(id, [label, ...])])."""
        kind = object_type(kind)
        if kind == "contacts":
            raise ValueError("a record is a company, deal or ticket")
        with self.lock:
            rid = self.new_record_id()
            return portal.crm.add_record(rid, kind, name or f"{kind[:-1].title()} {rid}", contacts)

    def add_contacts(self, portal: Portal, count: int, rng: random.Random | None = None) -> list:
        """Add ``count`` contacts with fresh ids; return them."""
        rng = rng or random.Random()
        with self.lock:
            start = max((int(c) for c in portal.contacts), default=1000) + 1
            out = []
            for i in range(start, start + count):
                first = rng.choice(FIRST_NAMES)
                last = rng.choice(LAST_NAMES)
                contact = Contact(
                    id=str(i),
                    email=f"{first.lower()}.{last.lower()}.{i}@example.com",
                    first_name=first,
                    last_name=last,
                )
                portal.contacts[contact.id] = contact
                out.append(contact)
            return out

    # -- tokens -----------------------------------------------------------
    def revoke_portal(self, portal_id: int) -> int:
        """Revoke every token of a portal (uninstall). Return how many died."""
        n = 0
        with self.lock:
            for tok in self.refresh_tokens.values():
                if tok.portal_id == portal_id and not tok.revoked:
                    tok.revoked = True
                    n += 1
            for tok in self.access_tokens.values():
                if tok.portal_id == portal_id and not tok.revoked:
                    tok.revoked = True
                    n += 1
            for code in self.codes.values():
                if code.portal_id == portal_id:
                    code.used = True
        return n

    # -- seeding ----------------------------------------------------------
    def clear(self) -> None:
        """Forget all portals, tokens, definitions and callbacks (the app stays)."""
        with self.lock:
            self.portals.clear()
            self.codes.clear()
            self.refresh_tokens.clear()
            self.access_tokens.clear()
            self.definitions.clear()
            self.callbacks.clear()

    def reseed(self) -> None:
        """Clear and seed again the way this state was first seeded."""
        kind, kwargs = self.seed_spec
        self.clear()
        if kind == "demo":
            self.seed_demo(**kwargs)
        elif kind == "generated":
            self.seed_generated(**kwargs)
        elif kind == "json":
            self.load_seed(kwargs["data"])

    def seed_demo(self, contacts: int = 500) -> Portal:
        """One demo portal: 8 users (one without a seat, one deactivated), 25 sequences."""
        with self.lock:
            self.seed_spec = ("demo", {"contacts": contacts})
            rng = random.Random(42)
            portal = self.add_portal(domain="demo-company.hubspot.com")
            people = [
                ("alice.martin", "Alice", "Martin", True, True),
                ("bruno.okafor", "Bruno", "Okafor", True, True),
                ("chloe.nguyen", "Chloe", "Nguyen", True, True),
                ("dmitri.schmidt", "Dmitri", "Schmidt", True, True),
                ("elena.rossi", "Elena", "Rossi", True, True),
                ("farid.haddad", "Farid", "Haddad", True, True),
                ("grace.kim", "Grace", "Kim", False, True),  # no Sales seat
                ("hiro.tanaka", "Hiro", "Tanaka", True, False),  # deactivated
            ]
            users = []
            for i, (login, first, last, seat, active) in enumerate(people):
                users.append(
                    self.add_user(
                        portal,
                        f"{login}@demo-company.com",
                        first,
                        last,
                        seat=seat,
                        active=active,
                        super_admin=(i == 0),
                    )
                )
            base = time.time() - 200 * 86400
            states = ["active"] * 6 + ["paused", "draft", "archived"]
            for i, (name, shared, folder) in enumerate(DEMO_SEQUENCES):
                owner = users[i % 6] if not name.endswith("(Alice)") else users[0]
                if i == 24:
                    owner = users[7]  # a private sequence of the deactivated user
                self.add_sequence(
                    portal,
                    name,
                    owner.id,
                    shared=shared,
                    folder_id=DEMO_FOLDERS.get(folder) if folder else None,
                    state=states[i % len(states)],
                    created_at=base + i * 86400 * 5,
                )
            for flow_id, flow_name in DEMO_FLOWS:
                portal.add_flow(flow_id, flow_name)
            created = self.add_contacts(portal, contacts, rng)
            for contact in created[:: max(1, contacts // 8)][1:]:
                contact.unsubscribed = True
            for contact in created[5 :: max(1, contacts // 6)]:
                if not contact.unsubscribed:
                    contact.bounced = True
            return portal

    def seed_generated(
        self,
        sequences: int = 100,
        users: int = 10,
        contacts: int = 100,
        portals: int = 1,
        seed: int = 7,
    ) -> list[Portal]:
        """Deterministic generated portals (each with the given counts)."""
        with self.lock:
            self.seed_spec = (
                "generated",
                {
                    "sequences": sequences,
                    "users": users,
                    "contacts": contacts,
                    "portals": portals,
                    "seed": seed,
                },
            )
            rng = random.Random(seed)
            out = []
            base = 1735689600.0  # 2025-01-01
            words = [
                "Inbound",
                "Outbound",
                "Demo",
                "Nurture",
                "Event",
                "Renewal",
                "Upsell",
                "Webinar",
                "Trial",
                "Pricing",
                "Re-engage",
                "Onboarding",
            ]
            tags = ["[INBOUND] ", "[OUTBOUND] ", "[NURTURE] ", "[EVENT] ", ""]
            for _p in range(portals):
                portal = self.add_portal()
                domain = f"company{portal.id}.com"
                plist = []
                for u in range(max(1, users)):
                    first = FIRST_NAMES[u % len(FIRST_NAMES)]
                    last = LAST_NAMES[(u // len(FIRST_NAMES) + u) % len(LAST_NAMES)]
                    plist.append(
                        self.add_user(
                            portal,
                            f"{first.lower()}.{last.lower()}.{u}@{domain}",
                            first,
                            last,
                            super_admin=(u == 0),
                        )
                    )
                for s in range(sequences):
                    owner = plist[rng.randrange(len(plist))]
                    name = f"{rng.choice(tags)}{rng.choice(words)} {rng.choice(words)} #{s + 1}"
                    self.add_sequence(
                        portal,
                        name,
                        owner.id,
                        shared=rng.random() < 0.7,
                        folder_id=str(1000 + rng.randrange(8)) if rng.random() < 0.6 else None,
                        state="active",
                        created_at=base + s * 60,
                    )
                self.add_contacts(portal, contacts, rng)
                out.append(portal)
            return out

    def load_seed(self, data: dict) -> list[Portal]:
        """Load portals from a dict (the ``--seed file.json`` format; see README in __main__)."""
        with self.lock:
            self.seed_spec = ("json", {"data": data})
            out = []
            for pdata in data.get("portals", []):
                portal = self.add_portal(pdata.get("id"), pdata.get("domain"))
                by_email = {}
                for udata in pdata.get("users", []):
                    user = self.add_user(
                        portal,
                        udata["email"],
                        udata.get("firstName", ""),
                        udata.get("lastName", ""),
                        seat=bool(udata.get("seat", True)),
                        active=bool(udata.get("active", True)),
                        super_admin=bool(udata.get("superAdmin", False)),
                        user_id=udata.get("id"),
                        inboxes=udata.get("inboxes"),
                    )
                    by_email[user.email.lower()] = user
                for sdata in pdata.get("sequences", []):
                    uid = sdata.get("userId")
                    if uid is None:
                        uid = by_email[sdata["userEmail"].lower()].id
                    self.add_sequence(
                        portal,
                        sdata["name"],
                        int(uid),
                        shared=bool(sdata.get("shared", True)),
                        folder_id=sdata.get("folderId"),
                        state=sdata.get("state", "active"),
                        sequence_id=str(sdata["id"]) if sdata.get("id") else None,
                    )
                cdata = pdata.get("contacts", 0)
                if isinstance(cdata, int):
                    self.add_contacts(portal, cdata, random.Random(1))
                else:
                    for c in cdata:
                        contact = Contact(
                            id=str(c["id"]),
                            email=c["email"],
                            first_name=c.get("firstName", ""),
                            last_name=c.get("lastName", ""),
                            unsubscribed=bool(c.get("unsubscribed", False)),
                            bounced=bool(c.get("bounced", False)),
                        )
                        portal.contacts[contact.id] = contact
                settings = pdata.get("settings", {})
                if "token_ttl" in settings:
                    portal.token_ttl = float(settings["token_ttl"])
                if "daily_cap" in settings:
                    portal.daily_cap = int(settings["daily_cap"])
                if "include_state" in settings:
                    portal.include_state = bool(settings["include_state"])
                if settings.get("seat_names") in SEAT_NAMES_MODES:
                    portal.seat_names = settings["seat_names"]
                if "rate_limit" in settings:
                    portal.rate_limit = parse_rate_limit(settings["rate_limit"])
                out.append(portal)
            return out

    def load_seed_file(self, path: str) -> list[Portal]:
        """Load a JSON seed file."""
        with open(path, encoding="utf-8") as fh:
            return self.load_seed(json.load(fh))


def parse_duration(text: str | None, default: float = 7 * 86400.0) -> float:
    """Parse a small ISO 8601 duration (``P1D``, ``PT2H``, ``P1W``, ``PT0.5S``) to seconds."""
    if not text or not isinstance(text, str) or not text.startswith("P"):
        return default
    units_date = {"Y": 365 * 86400, "M": 30 * 86400, "W": 7 * 86400, "D": 86400}
    units_time = {"H": 3600, "M": 60, "S": 1}
    total = 0.0
    in_time = False
    num = ""
    for ch in text[1:]:
        if ch == "T":
            in_time = True
        elif ch.isdigit() or ch == ".":
            num += ch
        else:
            table = units_time if in_time else units_date
            if ch not in table or not num:
                return default
            total += float(num) * table[ch]
            num = ""
    return total if total > 0 else default


def seconds_from_now(seconds: float) -> str:
    """ISO timestamp ``seconds`` from now (helper for admin views)."""
    return iso((datetime.now(UTC) + timedelta(seconds=seconds)).timestamp())
