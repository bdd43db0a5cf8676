"""mailboxes.disconnect_reason: why HubSpot made us mark a mailbox disconnected

The reason lived in Redis under ``autoseq:senders:disconnect-reason:<mailbox id>``, with no
expiry, and was lost with Redis. It is a column now, set with the status in one commit. Reasons
still in Redis are copied over where Redis is reachable from the migration (``REDIS_URL``);
without Redis the column starts empty (the mailbox stays disconnected; only the explanation is
missing) and the Redis keys are left for a later run to copy.

Revision ID: 0007_client
Revises: 0006_pages_names
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "0007_client"
down_revision = "0006_pages_names"
branch_labels = None
depends_on = None

REASON_KEY = "autoseq:senders:disconnect-reason:{}"


def _reasons_in_redis(ids: list[int]) -> dict[int, str]:
    url = os.environ.get("REDIS_URL")
    if not url or not ids:
        return {}
    try:
        from redis import Redis
        from redis.exceptions import RedisError

        redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        values = redis.mget([REASON_KEY.format(i) for i in ids])
    except (ImportError, RedisError, OSError):
        return {}
    return {i: v.decode()[:500] for i, v in zip(ids, values, strict=True) if v}


def upgrade():
    op.add_column("mailboxes", sa.Column("disconnect_reason", sa.String(500), nullable=True))
    bind = op.get_bind()
    mailboxes = sa.table(
        "mailboxes",
        sa.column("id", sa.Integer),
        sa.column("disconnect_reason", sa.String),
    )
    ids = [row.id for row in bind.execute(sa.select(mailboxes.c.id))]
    found: dict[int, str] = {}
    for start in range(0, len(ids), 1000):
        found.update(_reasons_in_redis(ids[start : start + 1000]))
    for mailbox_id, reason in found.items():
        bind.execute(
            mailboxes.update().where(mailboxes.c.id == mailbox_id).values(disconnect_reason=reason)
        )


def downgrade():
    op.drop_column("mailboxes", "disconnect_reason")
