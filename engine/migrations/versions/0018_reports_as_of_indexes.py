"""the reports as of an instant: the forecast's days to a win from a stage read in order from an index, the
leads changed after an instant from the spans' index alone, and ix_events_at dropped: it served only the count of
events that chose between two ways to an instant, gone (docs/performance.md, "At a million migrated deals,
session 12")

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from alembic import op

from engine.store import database

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


#: The index on the forecast's days to a win, as each database writes it (the expression as
#: ``engine.store.schema.seconds_between`` compiles it, written out here so that this migration makes the same index
#: whatever that code becomes; tests/test_migrations.py compares it with the schema's on SQLite).
TO_CLOSE = {
    'sqlite': "CAST(round((julianday(closed_at) - julianday(entered_at)) * 86400) AS INTEGER)",
    'postgresql': "(CAST(round(EXTRACT(epoch FROM closed_at - entered_at)) AS BIGINT))",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE INDEX ix_lead_stages_to_close ON lead_stages "
               f"(process, stage, status, {TO_CLOSE[dialect]}, created_at, closed_at)")
    op.drop_index('ix_lead_spans_at', table_name='lead_spans')
    op.create_index('ix_lead_spans_at', 'lead_spans', ['ended_at', 'started_at', 'created_at', 'lead_id'],
                    unique=False)
    op.drop_index('ix_events_at', table_name='events')
    _statistics()


def _statistics() -> None:
    """The tables' planner statistics anew where the database keeps them: else SQLite plans the new indexes as the
    most selective of all (the funnel then read ``ix_lead_stages_to_close``, not covering, ten times slower)."""
    conn = op.get_bind()
    if database.counted_leads(conn) is not None:
        database.analyse(conn, ['lead_stages', 'lead_spans'])


def downgrade() -> None:
    op.create_index('ix_events_at', 'events', ['at', 'lead_id'], unique=False)
    op.drop_index('ix_lead_spans_at', table_name='lead_spans')
    op.create_index('ix_lead_spans_at', 'lead_spans', ['ended_at', 'started_at'], unique=False)
    op.drop_index('ix_lead_stages_to_close', table_name='lead_stages')
    _statistics()
