"""sequences: fillfactor 70, so a sync's stamp of every live row is a HOT update (PostgreSQL)

Every sync sets ``last_synced_at`` on each live sequence. With full pages each new row version
went to another page and into all five indexes, the trigram one the dearest: 1.3-1.8 s for
10,000 rows, a tenth of a re-sync (bench/bench_sync.py). With room on the page and no indexed
column changed, PostgreSQL writes the version beside the old one and touches no index: 58 ms.
Existing pages gain the room as they are rewritten (the setting applies to new writes).

Revision ID: 0013_reads
Revises: 0012_waiting
"""

from alembic import op

revision = "0013_reads"
down_revision = "0012_waiting"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sequences SET (fillfactor = 70)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sequences RESET (fillfactor)")
