"""analytics: the sequence, workflow and mailbox indexes of enrollments INCLUDE the grouped columns

A page filtered by two entities (a sequence and a workflow, a mailbox and a rotation) is not served
by the rollups and reads its rows. With narrow entity indexes PostgreSQL scanned the whole period
in (workspace_id, created_at) instead: 3.9 s for a 30-day page at 10,000,000 enrollments. With
these covering indexes it scans only the most selective entity's rows, index-only: 287 ms.

The indexes are rebuilt CONCURRENTLY (new one built, old one dropped, new one renamed), so the
webhook's inserts never wait on the build. SQLite's indexes have no INCLUDE: nothing changes there.

Revision ID: 0014_covering
Revises: 0013_state
"""

from alembic import op

revision = "0014_covering"
down_revision = "0013_state"
branch_labels = None
depends_on = None

GROUPED = [
    "status",
    "sequence_id",
    "sequence_name",
    "workflow_id",
    "mailbox_id",
    "rotation_id",
    "failure_code",
]
ENTITIES = ("sequence", "workflow", "mailbox")


def _rebuild(include: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for entity in ENTITIES:
            name = f"ix_enrollments_ws_{entity}_created"
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_new")  # a build that failed
            op.create_index(
                f"{name}_new",
                "enrollments",
                ["workspace_id", f"{entity}_id", "created_at"],
                postgresql_include=[c for c in GROUPED if c != f"{entity}_id"] if include else [],
                postgresql_concurrently=True,
            )
            # IF EXISTS: a run that failed after this drop and before the rename is run again.
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"ALTER INDEX {name}_new RENAME TO {name}")


def upgrade():
    _rebuild(include=True)


def downgrade():
    _rebuild(include=False)
