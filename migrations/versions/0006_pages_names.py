"""names, not ids: a workflows table (names from HubSpot's flows API) and the contact's name and
email on each enrollment (sent by HubSpot with the execution); workspaces.is_demo (demo data lives
in its own workspace)

Revision ID: 0006_pages_names
Revises: 0005_harden_sessions_verified
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_pages_names"
down_revision = "0005_harden_sessions_verified"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("hubspot_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=True),
        sa.Column("object_type_id", sa.String(length=16), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workflows_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint(
            "workspace_id", "hubspot_id", name=op.f("uq_workflows_workspace_id_hubspot_id")
        ),
    )
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_demo", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("contact_email", sa.String(length=254), nullable=True))


def downgrade():
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_column("contact_email")
        batch_op.drop_column("contact_name")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("is_demo")
    op.drop_table("workflows")
