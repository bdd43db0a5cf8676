"""sequences: statistics on the dropdown's sort key, so the planner knows how many names a search
matches (PostgreSQL)

The dropdown's search is ``lower(substr(name, 1, 200)) LIKE '%q%'``. PostgreSQL keeps no
statistics for that expression (those of an expression index are used only when the index is not
partial, and both of 0004's indexes are), so it guessed a handful of matches for any word of four
letters or more, chose the trigram index and sorted every match: 74 ms for a word found in 12,700
of 100,000 names, where reading the ordered index until a page is full takes 1.5 ms. With
statistics on the expression it estimates the matches from the names themselves and picks the
trigram index only for searches that match few (bench/bench_options.py, 100,000 sequences).

Revision ID: 0008_sync
Revises: 0007_client
"""

from alembic import op

revision = "0008_sync"
down_revision = "0007_client"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS IF NOT EXISTS sequences_sort_key_stats "
            "ON (lower(substr(name, 1, 200))) FROM sequences"
        )
        op.execute("ANALYZE sequences")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS sequences_sort_key_stats")
