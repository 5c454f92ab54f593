"""reports: the stages each lead reached (lead_stages) and covering indexes for the reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00

``lead_stages`` starts empty; ``Engine.init`` fills it from the event log (``store.rebuild_stages``) when a
database with leads is upgraded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lead_stages',
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('process', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('team', sa.String(length=200), nullable=True),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('entered_at', sa.DateTime(), nullable=False),
    sa.Column('stay_started_at', sa.DateTime(), nullable=True),
    sa.Column('seconds', sa.BigInteger(), nullable=False),
    sa.Column('moved_on', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_stages_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', 'stage', name=op.f('pk_lead_stages'))
    )
    with op.batch_alter_table('lead_stages', schema=None) as batch_op:
        batch_op.create_index('ix_lead_stages_report', ['process', 'stage', 'stay_started_at', 'seconds', 'created_at',
                                                       'entered_at', 'moved_on', 'status', 'closed_at', 'team',
                                                       'owner'], unique=False)
        batch_op.create_index('ix_lead_stages_outcome', ['process', 'stage', 'status', 'closed_at', 'entered_at',
                                                        'created_at', 'stay_started_at', 'moved_on', 'team', 'owner'],
                              unique=False)
    with op.batch_alter_table('closures', schema=None) as batch_op:
        batch_op.create_index('ix_closures_client_id', ['client_id', 'closed_at'], unique=False)
        batch_op.create_index('ix_closures_report', ['process', 'kind', 'closed_at', 'owner', 'team', 'reason',
                                                    'product', 'value_minor', 'lead_id'], unique=False)
        batch_op.create_index('ix_closures_owner', ['process', 'owner', 'lead_id', 'closed_at', 'team'],
                              unique=False)
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_closed', ['process', 'status', 'owner', 'closed_at', 'team', 'source',
                                                 'created_at', 'value_minor', 'client_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_closed')
    with op.batch_alter_table('closures', schema=None) as batch_op:
        batch_op.drop_index('ix_closures_owner')
        batch_op.drop_index('ix_closures_report')
        batch_op.drop_index('ix_closures_client_id')
    with op.batch_alter_table('lead_stages', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_stages_outcome')
        batch_op.drop_index('ix_lead_stages_report')
    op.drop_table('lead_stages')
