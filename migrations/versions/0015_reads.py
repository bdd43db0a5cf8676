"""sequences: fillfactor 50, so a sync's stamp of every live row is a HOT update (PostgreSQL)

Every sync sets ``last_synced_at`` on each live sequence. With full pages each new row version
went to another page and into all five indexes, the trigram one the dearest. With room on the
page and no indexed column changed, PostgreSQL writes the version beside the old one and touches
no index (a HOT update); the next sync's read of the rows prunes the old versions, so the room
comes back. The stamp of 100,000 rows (load 10-13): 6.0-7.3 s at fillfactor 100, 3.1-4.2 s at 70
(40-80 % of the updates HOT), 1.9-2.2 s at 50 (all HOT). The table takes twice the pages.
Existing pages gain the room as they are rewritten (the setting applies to new writes).

Revision ID: 0015_reads
Revises: 0014_covering
"""

from alembic import op

revision = "0015_reads"
down_revision = "0014_covering"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sequences SET (fillfactor = 50)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sequences RESET (fillfactor)")
