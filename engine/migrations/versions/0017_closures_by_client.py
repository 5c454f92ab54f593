"""the salespeople report: a won client's earlier closings read from the index alone (docs/performance.md,
"Session 11")

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_closures_client_id', table_name='closures')
    op.create_index('ix_closures_client_id', 'closures', ['client_id', 'closed_at', 'owner', 'process', 'lead_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_closures_client_id', table_name='closures')
    op.create_index('ix_closures_client_id', 'closures', ['client_id', 'closed_at'], unique=False)
