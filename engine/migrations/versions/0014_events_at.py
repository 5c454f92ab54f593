"""reports as of an instant: the events after it, found by time (docs/reports.md, "As of a past instant")

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 15:50:00
"""

from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'  # re-chained at the merge of this round's branches
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_events_at', 'events', ['at', 'lead_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_at', table_name='events')
