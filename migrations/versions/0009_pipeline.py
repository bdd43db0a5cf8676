"""the enrollment rows are the queue: a claim (job_id), a retry time and count per row, partial
indexes for the drain's two queries; "callback refused by HubSpot" as a column (was a Redis key)

Revision ID: 0009_pipeline
Revises: 0008_sync
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_pipeline"
down_revision = "0008_sync"
branch_labels = None
depends_on = None

QUEUED = "status = 'queued'"
CALLBACKS_DUE = "finished_at IS NOT NULL AND callback_completed_at IS NULL"


def upgrade():
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("retries", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("callback_error", sa.String(length=200), nullable=True))
    # Rows queued before this migration carry their old RQ job id: free them for the drains.
    op.execute("UPDATE enrollments SET job_id = NULL WHERE status = 'queued'")
    op.create_index(
        "ix_enrollments_queued",
        "enrollments",
        ["workspace_id", "id"],
        postgresql_where=sa.text(QUEUED),
        sqlite_where=sa.text(QUEUED),
    )
    op.create_index(
        "ix_enrollments_callbacks_due",
        "enrollments",
        ["workspace_id", "finished_at"],
        postgresql_where=sa.text(CALLBACKS_DUE),
        sqlite_where=sa.text(CALLBACKS_DUE),
    )


def downgrade():
    op.drop_index("ix_enrollments_callbacks_due", table_name="enrollments")
    op.drop_index("ix_enrollments_queued", table_name="enrollments")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_column("callback_error")
        batch_op.drop_column("retries")
        batch_op.drop_column("due_at")
