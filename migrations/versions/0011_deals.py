"""deal, company and ticket workflows: a record execution per callback id, its enrollment rows
pointing at it and naming the record they came from

Revision ID: 0011_deals
Revises: 0010_analytics
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_deals"
down_revision = "0010_analytics"
branch_labels = None
depends_on = None

CALLBACKS_DUE = "finished_at IS NOT NULL AND callback_completed_at IS NULL"


def upgrade():
    op.create_table(
        "record_executions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.String(length=128), nullable=False),
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_id", sa.String(length=32), nullable=True),
        sa.Column("action_definition_id", sa.String(length=64), nullable=True),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("record_name", sa.String(length=200), nullable=True),
        sa.Column("choose", sa.String(length=16), nullable=False),
        sa.Column("max_contacts", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("sequence_hubspot_id", sa.String(length=32), nullable=False),
        sa.Column("sequence_name", sa.Text(), nullable=False),
        sa.Column("send_mode", sa.String(length=16), nullable=False),
        sa.Column("mailbox_ref", sa.Integer(), nullable=True),
        sa.Column("rotation_ref", sa.Integer(), nullable=True),
        sa.Column("input_fields", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("enrolled_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("sender_email", sa.String(length=254), nullable=True),
        sa.Column("callback_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("callback_id"),
    )
    op.create_index(
        "ix_record_executions_ws_status", "record_executions", ["workspace_id", "status"]
    )
    op.create_index(
        "ix_record_executions_callbacks_due",
        "record_executions",
        ["workspace_id", "finished_at"],
        postgresql_where=sa.text(CALLBACKS_DUE),
        sqlite_where=sa.text(CALLBACKS_DUE),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("execution_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("record_type", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("record_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("record_name", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_enrollments_execution_id", ["execution_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_enrollments_execution_id",
            "record_executions",
            ["execution_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade():
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_enrollments_execution_id", type_="foreignkey")
        batch_op.drop_index("ix_enrollments_execution_id")
        batch_op.drop_column("record_name")
        batch_op.drop_column("record_id")
        batch_op.drop_column("record_type")
        batch_op.drop_column("execution_id")
    op.drop_index("ix_record_executions_callbacks_due", table_name="record_executions")
    op.drop_index("ix_record_executions_ws_status", table_name="record_executions")
    op.drop_table("record_executions")
