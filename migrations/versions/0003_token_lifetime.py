"""hubspot_connections.token_lifetime: the access token's ``expires_in``, to bound the refresh margin

The client refreshes a token ``HUBSPOT_TOKEN_REFRESH_MARGIN`` seconds before it expires, but never
earlier than half its life: a short-lived token was otherwise refreshed before nearly every call.
Rows written before this revision have no lifetime; the margin applies unbounded until their next
refresh writes one.

Revision ID: 0003_token_lifetime
Revises: 0002_analytics_include
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_token_lifetime"
down_revision = "0002_analytics_include"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("hubspot_connections", sa.Column("token_lifetime", sa.Integer(), nullable=True))


def downgrade():
    op.drop_column("hubspot_connections", "token_lifetime")
