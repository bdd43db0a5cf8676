"""One state per enrollment and per record execution: ``status`` takes the finished outcome
(enrolled, already_enrolled or failed: the workflow's ``enrollment_status`` output) and the
``outcome`` columns go

Before, an enrollment had ``status`` (queued, enrolled, failed) beside ``outcome`` (enrolled,
already_enrolled, failed), and a record execution ``status`` (queued, expanded, finished) beside
``outcome``. The one difference for enrollments was a contact already in a sequence: status
``failed``, outcome ``already_enrolled``; it is now ``already_enrolled`` (analytics still count it
with the failed, so the rollups do not change). The column keeps its name, so its indexes (the
queue's and the analytics' partial indexes, the covering indexes' INCLUDE) stay as they are.

Revision ID: 0013_state
Revises: 0012_waiting
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_state"
down_revision = "0012_waiting"
branch_labels = None
depends_on = None

FINISHED = "('enrolled', 'already_enrolled', 'failed')"


def upgrade():
    op.execute(
        "UPDATE enrollments SET status = 'already_enrolled'"
        " WHERE status = 'failed' AND outcome = 'already_enrolled'"
    )
    op.execute(
        "UPDATE record_executions SET status = COALESCE(outcome, 'failed')"
        " WHERE status = 'finished'"
    )
    for table in ("enrollments", "record_executions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("outcome")


def downgrade():
    for table in ("enrollments", "record_executions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
    op.execute(f"UPDATE enrollments SET outcome = status WHERE status IN {FINISHED}")
    op.execute("UPDATE enrollments SET status = 'failed' WHERE status = 'already_enrolled'")
    op.execute(
        f"UPDATE record_executions SET outcome = status, status = 'finished'"
        f" WHERE status IN {FINISHED}"
    )
