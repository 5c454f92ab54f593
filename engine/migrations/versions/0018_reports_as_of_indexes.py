"""the reports as of an instant: the forecast's days to a win from a stage read in order from an index, and the
leads changed after an instant from the spans' index alone (docs/performance.md, "At a million migrated deals,
session 12")

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store import database
from engine.store.schema import seconds_between

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_lead_stages_to_close', 'lead_stages',
                    ['process', 'stage', 'status', seconds_between(sa.column('entered_at'), sa.column('closed_at')),
                     'created_at'], unique=False)
    op.drop_index('ix_lead_spans_at', table_name='lead_spans')
    op.create_index('ix_lead_spans_at', 'lead_spans', ['ended_at', 'started_at', 'created_at', 'lead_id'],
                    unique=False)
    _statistics()


def _statistics() -> None:
    """The tables' planner statistics anew where the database keeps them: else SQLite plans the new indexes as the
    most selective of all (the funnel then read ``ix_lead_stages_to_close``, not covering, ten times slower)."""
    conn = op.get_bind()
    if database.counted_leads(conn) is not None:
        database.analyse(conn, ['lead_stages', 'lead_spans'])


def downgrade() -> None:
    op.drop_index('ix_lead_spans_at', table_name='lead_spans')
    op.create_index('ix_lead_spans_at', 'lead_spans', ['ended_at', 'started_at'], unique=False)
    op.drop_index('ix_lead_stages_to_close', table_name='lead_stages')
    _statistics()
