""""Already in a sequence: wait": a queued enrollment's wait deadline and how often it was checked

Revision ID: 0012_waiting
Revises: 0011_deals
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_waiting"
down_revision = "0011_deals"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("wait_checks", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("wait_checks")
        batch.drop_column("wait_until")
