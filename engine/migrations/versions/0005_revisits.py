"""revisits: a partial index of lost leads by closing, for the revisit list

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

LOST = sa.text("status = 'lost'")


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_lost_closed', ['process', 'closed_at'], unique=False,
                              sqlite_where=LOST, postgresql_where=LOST)


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_lost_closed', sqlite_where=LOST, postgresql_where=LOST)
