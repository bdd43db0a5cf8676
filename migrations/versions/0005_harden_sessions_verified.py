"""users: a session token (logout and password changes end every session) and a verified email

Existing users get a fresh random session token (their current sessions end once, at deploy) and
count as unverified until they follow a verification link.

Revision ID: 0005_harden_sessions_verified
Revises: 0004_sequence_options_index
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005_harden_sessions_verified"
down_revision = "0004_sequence_options_index"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("session_token", sa.String))
    bind = op.get_bind()
    for (user_id,) in bind.execute(sa.select(users.c.id)).all():
        bind.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(session_token=secrets.token_urlsafe(32))
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column("session_token", existing_type=sa.String(64), nullable=False)


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified_at")
        batch.drop_column("session_token")
