"""``flask demo-data``: realistic enrollments to look at (and to benchmark), in a demo workspace.

The command never writes into a real workspace: ``--workspace N`` names the workspace whose members
get a separate *demo workspace* ("Demo: <name>", ``is_demo``), made once and reused, never connected
to HubSpot. There, sequences, HubSpot users, mailboxes and rotations are created when it has too
few, and enrollments are written with bulk INSERTs in chunks, fast enough for a million rows. Every
generated enrollment is finished (enrolled or failed): nothing is left for a worker to pick up.
A workspace connected to a HubSpot portal that is not the sandbox is refused outright.
"""

from __future__ import annotations

import itertools
import random
import time as clock
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
from flask import Flask
from sqlalchemy import func, insert, select

from ..extensions import db
from ..models import (
    Enrollment,
    EnrollmentStatus,
    FailureCode,
    HubSpotConnection,
    HubSpotUser,
    Mailbox,
    Membership,
    Rotation,
    RotationMember,
    Sequence,
    SequenceState,
    Sharing,
    Workspace,
)
from ..services.analytics import rollups

SEQUENCE_NAMES = (
    "[INBOUND] Demo Request - 3 Day",
    "Inbound Demo Request - 5 Day Nurture",
    "Cold Outbound - SaaS Companies",
    "Event Follow-up - Q4 2025",
    "Product Demo Follow-up",
    "[OUTBOUND] Fintech CFOs",
    "[NURTURE] Quarterly Check-in",
    "[EVENT] SaaStr Booth Leads",
    "SaaS Outreach Sequence",
    "E-commerce Outreach Sequence",
    "[INBOUND] Pricing Page Visitors",
    "[OUTBOUND] Series B Founders",
)
PREFIXES = ("[INBOUND]", "[OUTBOUND]", "[NURTURE]", "[EVENT]")
TOPICS = (
    "Demo Request",
    "Trial Signup",
    "Webinar Attendees",
    "Pricing Page Visitors",
    "Healthcare IT",
    "Retail Ops",
    "Churned Customers",
    "Partner Referrals",
    "Conference Leads",
    "Enterprise Upsell",
)
FIRST_NAMES = ("alex", "sam", "jordan", "maria", "li", "priya", "tom", "nina", "omar", "eva")
# (code, readable reason, weight): HubSpot's refusals and ours, roughly as often as seen.
FAILURES = (
    ("ALREADY_ENROLLED", "The contact is already enrolled in a sequence.", 30),
    ("UNSUBSCRIBED", "The contact unsubscribed from sales email.", 18),
    ("BOUNCED", "A previous email to this contact bounced.", 12),
    ("PERMISSION_DENIED", "The sender may not use this sequence (it is private to its owner).", 14),
    ("NO_CONNECTED_INBOX", "The sender has no connected inbox in HubSpot.", 8),
    ("SEND_LIMIT_EXCEEDED", "The sender reached HubSpot's daily sequence enrollment limit.", 10),
    ("SEQUENCE_NOT_FOUND", "The sequence was deleted in HubSpot.", 8),
)


@dataclass
class DemoResult:
    workspace_id: int
    inserted: int
    seconds: float


def _ensure_sequences(workspace: Workspace, wanted: int, removed: int, rng: random.Random):
    have = db.session.scalars(select(Sequence).where(Sequence.workspace_id == workspace.id)).all()
    now = datetime.now(UTC)
    names = list(SEQUENCE_NAMES)
    n = len(have)
    while len(have) < wanted:
        name = (
            names[n]
            if n < len(names)
            else f"{rng.choice(PREFIXES)} {rng.choice(TOPICS)} - {rng.choice((3, 5, 7, 10))} Day"
            + (f" #{n}" if n >= 40 else "")
        )
        seq = Sequence(
            workspace_id=workspace.id,
            hubspot_id=str(90_000_000 + workspace.id * 10_000 + n),
            name=name,
            state=rng.choice(
                [SequenceState.ACTIVE.value] * 6
                + [SequenceState.PAUSED.value, SequenceState.DRAFT.value]
            ),
            sharing=rng.choice([Sharing.TEAM.value] * 3 + [Sharing.PRIVATE.value]),
            hs_created_at=now - timedelta(days=rng.randint(100, 700)),
            last_synced_at=now,
        )
        db.session.add(seq)
        have.append(seq)
        n += 1
    to_remove = removed - sum(1 for s in have if s.removed_at)
    if to_remove > 0:
        for seq in [s for s in have if not s.removed_at][-to_remove:]:
            seq.removed_at = now - timedelta(days=rng.randint(1, 20))
    db.session.flush()
    return have


def _ensure_mailboxes(workspace: Workspace, wanted: int, rng: random.Random):
    have = db.session.scalars(select(Mailbox).where(Mailbox.workspace_id == workspace.id)).all()
    n = len(have)
    while len(have) < wanted:
        first = FIRST_NAMES[n % len(FIRST_NAMES)]
        email = f"{first}{'' if n < len(FIRST_NAMES) else n}@demo-sales.example"
        user = HubSpotUser(
            workspace_id=workspace.id,
            hubspot_user_id=str(7_000_000 + workspace.id * 1000 + n),
            owner_id=str(8_000_000 + workspace.id * 1000 + n),
            email=email,
            first_name=first.capitalize(),
            last_name="Demo",
            has_seat=True,
        )
        db.session.add(user)
        db.session.flush()
        box = Mailbox(
            workspace_id=workspace.id, hubspot_user_id=user.id, email=email, is_default=True
        )
        db.session.add(box)
        have.append(box)
        n += 1
    db.session.flush()
    return have


def _ensure_rotations(workspace: Workspace, mailboxes, rng: random.Random):
    have = db.session.scalars(select(Rotation).where(Rotation.workspace_id == workspace.id)).all()
    for name in ("SDR team round robin", "AE pod West", "Weekend coverage")[len(have) :]:
        rotation = Rotation(workspace_id=workspace.id, name=name)
        members = rng.sample(mailboxes, k=min(len(mailboxes), rng.randint(2, 5)))
        rotation.members = [
            RotationMember(mailbox_id=m.id, weight=rng.randint(1, 3), position=i)
            for i, m in enumerate(members)
        ]
        db.session.add(rotation)
        have.append(rotation)
    db.session.flush()
    return have


def _copy(rows: list[dict]) -> None:
    """PostgreSQL: write a chunk with COPY on the session's connection (same transaction)."""
    columns = list(rows[0])
    raw = db.session.connection().connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY enrollments ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(["{}" if c == "input_fields" else row[c] for c in columns])


def generate(
    workspace_id: int,
    *,
    days: int = 90,
    count: int = 20_000,
    sequences: int = 12,
    removed_sequences: int = 2,
    workflows: int = 10,
    mailboxes: int = 8,
    chunk: int = 10_000,
    seed: int | None = None,
    now: datetime | None = None,
    progress=None,
    with_queued: bool = False,
) -> DemoResult:
    """Insert ``count`` enrollments spread over the last ``days`` days into the workspace.

    Busier on weekdays and office hours; about 85% succeed, 12% fail with HubSpot's reasons; with
    ``with_queued`` (benchmarks only) the most recent few are still queued. Commits each chunk.
    """
    started = clock.perf_counter()
    rng = random.Random(seed)
    workspace = db.session.get(Workspace, workspace_id)
    if workspace is None:
        raise LookupError(f"no workspace {workspace_id}")
    connection = db.session.scalar(
        select(HubSpotConnection).where(HubSpotConnection.workspace_id == workspace_id)
    )
    portal_id = connection.portal_id if connection else 40_000_000 + workspace_id
    seqs = _ensure_sequences(workspace, sequences, removed_sequences, rng)
    boxes = _ensure_mailboxes(workspace, mailboxes, rng)
    rotations = _ensure_rotations(workspace, boxes, rng)
    rotation_members = {r.id: [m.mailbox_id for m in r.members] for r in rotations}
    box_email = {b.id: b.email for b in boxes}
    db.session.commit()

    workflow_ids = [str(rng.randint(10_000_000, 99_999_999)) for _ in range(workflows)]
    # A few popular sequences and workflows, a long tail of others.
    seq_weights = [1 / (i + 1) ** 0.8 for i in range(len(seqs))]
    wf_weights = [1 / (i + 1) ** 0.7 for i in range(len(workflow_ids))]
    seq_cum = list(itertools.accumulate(seq_weights))
    wf_cum = list(itertools.accumulate(wf_weights))
    seq_info = [(s.id, s.hubspot_id, s.name, s.removed_at) for s in seqs]
    fail_codes = [f[:2] for f in FAILURES]
    fail_weights = [f[2] for f in FAILURES]
    now = now or datetime.now(UTC)
    begin = now - timedelta(days=days)
    span = (now - begin).total_seconds()
    batch_tag = uuid.uuid4().hex[:10]
    rotation_ids = [r.id for r in rotations]
    box_ids = [b.id for b in boxes]

    postgres = db.engine.dialect.name == "postgresql"
    inserted = 0
    while inserted < count:
        rows = []
        size = min(chunk, count - inserted)
        picked_seqs = rng.choices(seq_info, cum_weights=seq_cum, k=size)
        picked_wfs = rng.choices(workflow_ids, cum_weights=wf_cum, k=size)
        for n, i in enumerate(range(inserted, inserted + size)):
            # Rejection-sample timestamps: fewer at night and on weekends.
            while True:
                created = begin + timedelta(seconds=rng.random() * span)
                weight = (0.35 if created.weekday() >= 5 else 1.0) * (
                    1.0 if 13 <= created.hour <= 22 else 0.3
                )
                if rng.random() < weight:
                    break
            seq_id, seq_hs_id, seq_name, seq_removed = picked_seqs[n]
            if rng.random() < 0.3 and rotation_ids:
                rotation_id = rng.choice(rotation_ids)
                mailbox_id = rng.choice(rotation_members[rotation_id] or box_ids)
                mode = "rotation"
            else:
                rotation_id, mailbox_id, mode = None, rng.choice(box_ids), "mailbox"
            roll = rng.random()
            code = reason = None
            status = EnrollmentStatus.ENROLLED
            finished = created + timedelta(seconds=rng.uniform(0.5, 40))
            attempts = 1
            if seq_removed is not None and created > seq_removed:
                status = EnrollmentStatus.FAILED
                code, reason = FAILURES[-1][:2]
            elif with_queued and (now - created) < timedelta(minutes=20) and roll < 0.5:
                status, finished, attempts = EnrollmentStatus.QUEUED, None, 0
            elif roll < 0.12:
                code, reason = rng.choices(fail_codes, fail_weights)[0]
                status = (
                    EnrollmentStatus.ALREADY_ENROLLED
                    if code == FailureCode.ALREADY_ENROLLED
                    else EnrollmentStatus.FAILED
                )
                attempts = rng.choice((1, 1, 1, 2, 3))
            rows.append(
                {
                    "workspace_id": workspace_id,
                    "callback_id": f"demo-{batch_tag}-{i}",
                    "portal_id": portal_id,
                    "workflow_id": picked_wfs[n],
                    "contact_id": str(rng.randint(1_000, 99_999_999)),
                    "sequence_id": seq_id,
                    "sequence_hubspot_id": seq_hs_id,
                    "sequence_name": seq_name,
                    "send_mode": mode,
                    "rotation_id": rotation_id,
                    "mailbox_id": mailbox_id,
                    "sender_email": box_email.get(mailbox_id),
                    "input_fields": {},
                    "status": status.value,
                    "failure_code": code,
                    "failure_reason": reason,
                    "attempts": attempts,
                    "created_at": created,
                    "updated_at": finished or created,
                    "finished_at": finished,
                }
            )
        if postgres:
            _copy(rows)
        else:
            # Core insert on the table: one executemany per chunk (the ORM bulk path would
            # split the chunk into many small batches by which columns are NULL).
            db.session.execute(insert(Enrollment.__table__), rows)
        db.session.commit()
        inserted += len(rows)
        if progress:
            progress(inserted)
    # The rows went in by COPY / Core inserts, past the ORM hook that keeps the rollups.
    rollups.rebuild(workspace_id)
    return DemoResult(workspace_id, inserted, clock.perf_counter() - started)


def real_portal_refusal(workspace: Workspace) -> str | None:
    """Why demo data is refused for ``workspace`` (connected to a real HubSpot portal), or None."""
    from flask import current_app

    connection = db.session.scalar(
        select(HubSpotConnection).where(HubSpotConnection.workspace_id == workspace.id)
    )
    api = current_app.config.get("HUBSPOT_API_BASE", "https://api.hubapi.com")
    if connection is not None and "api.hubapi.com" in api:
        return (
            f"workspace {workspace.id} is connected to HubSpot portal {connection.portal_id}, "
            "not the sandbox: demo data is refused there"
        )
    return None


def demo_workspace_for(source: Workspace) -> Workspace:
    """The demo workspace of ``source``'s members (``source`` itself when it is one), made once."""
    if source.is_demo:
        return source
    name = f"Demo: {source.name}"[:120]
    demo = db.session.scalar(select(Workspace).where(Workspace.is_demo, Workspace.name == name))
    if demo is None:
        demo = Workspace(name=name, timezone=source.timezone, is_demo=True)
        db.session.add(demo)
        db.session.flush()
    have = {m.user_id for m in demo.memberships}
    for member in source.memberships:
        if member.user_id not in have:
            demo.memberships.append(Membership(user_id=member.user_id, role=member.role))
    return demo


def register_cli(app: Flask) -> None:
    @app.cli.command("demo-data")
    @click.option("--workspace", "workspace_id", type=int, default=None, help="Workspace id.")
    @click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True)
    @click.option("--count", type=click.IntRange(1, 50_000_000), default=20_000, show_default=True)
    @click.option("--sequences", type=click.IntRange(1, 10_000), default=12, show_default=True)
    @click.option("--workflows", type=click.IntRange(1, 10_000), default=10, show_default=True)
    @click.option("--mailboxes", type=click.IntRange(1, 1_000), default=8, show_default=True)
    @click.option("--seed", type=int, default=None, help="Repeatable data.")
    def demo_data(workspace_id, days, count, sequences, workflows, mailboxes, seed):
        """Fill a demo workspace (for the members of WORKSPACE) with enrollments over DAYS days."""
        if workspace_id is None:
            workspace_id = db.session.scalar(
                select(func.min(Workspace.id)).where(Workspace.is_demo.is_(False))
            )
            if workspace_id is None:
                raise click.ClickException(
                    "no workspace yet: sign up and create one first (make run, then open the app)"
                )
        source = db.session.get(Workspace, workspace_id)
        if source is None:
            raise click.ClickException(f"no workspace with id {workspace_id}")
        refusal = real_portal_refusal(source)
        if refusal:
            raise click.ClickException(refusal)
        demo = demo_workspace_for(source)
        db.session.commit()
        workspace_id = demo.id
        result = generate(
            workspace_id,
            days=days,
            count=count,
            sequences=sequences,
            removed_sequences=max(1, sequences // 6),
            workflows=workflows,
            mailboxes=mailboxes,
            seed=seed,
            progress=lambda n: (
                click.echo(f"  {n:,} / {count:,}", err=True) if n % 100_000 == 0 else None
            ),
        )
        click.echo(
            f"Inserted {result.inserted:,} enrollments into the demo workspace "
            f"“{demo.name}” (id {workspace_id}) over {days} days in {result.seconds:.1f} s; "
            f"switch to it from the workspace menu."
        )
