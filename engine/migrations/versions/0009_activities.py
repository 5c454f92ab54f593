"""activities: a lead's booked next contact and its unanswered calls, indexed for the owner's day; the person an
outbox notice is for

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on both databases: no copy of the leads table
    op.add_column('leads', sa.Column('next_contact_at', sa.DateTime(), nullable=True))
    op.add_column('leads', sa.Column('unanswered_calls', sa.Integer(), nullable=False, server_default='0'))
    op.create_index('ix_leads_owner_next_contact', 'leads', ['owner', 'status', 'next_contact_at'], unique=False)
    op.add_column('outbox', sa.Column('for_user', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('for_user')
    op.drop_index('ix_leads_owner_next_contact', table_name='leads')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('unanswered_calls')
        batch_op.drop_column('next_contact_at')
