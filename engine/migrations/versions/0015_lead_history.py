"""reports as of an instant read the leads' past: lead_spans (each lead's columns over time) and lead_stays
(each stay in a stage), kept by the write path (engine/store/history.py)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:20:00

Both start empty; ``Engine.init`` fills them from the event log (``store.rebuild_stages``, the rebuild's replay)
when a database with leads is upgraded, as it fills ``lead_stages`` (migration 0002): the replay needs the process
versions' specs, which a migration does not load.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lead_spans',
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('process', sa.String(length=64), nullable=False),
    sa.Column('process_version', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('team', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('value_minor', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('stage_entered_at', sa.DateTime(), nullable=False),
    sa.Column('stage_due_at', sa.DateTime(), nullable=True),
    sa.Column('last_activity_at', sa.DateTime(), nullable=False),
    sa.Column('owner_since', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('close_reason', sa.String(length=64), nullable=True),
    sa.Column('close_note', sa.Text(), nullable=True),
    sa.Column('closed_from_stage', sa.String(length=64), nullable=True),
    sa.Column('red_at', sa.DateTime(), nullable=True),
    sa.Column('last_report', sa.Text(), nullable=True),
    sa.Column('last_report_at', sa.DateTime(), nullable=True),
    sa.Column('extended_until', sa.DateTime(), nullable=True),
    sa.Column('recalled_at', sa.DateTime(), nullable=True),
    sa.Column('rest_until', sa.DateTime(), nullable=True),
    sa.Column('next_contact_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_spans_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', 'started_at', name=op.f('pk_lead_spans'))
    )
    op.create_index('ix_lead_spans_at', 'lead_spans', ['ended_at', 'started_at'], unique=False)
    op.create_table('lead_stays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('entered_at', sa.DateTime(), nullable=False),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.Column('seconds', sa.BigInteger(), nullable=True),
    sa.Column('moved_on', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_stays_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_stays'))
    )
    op.create_index('ix_lead_stays_lead', 'lead_stays',
                    ['lead_id', 'stage', 'entered_at', 'left_at', 'seconds', 'moved_on'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_lead_stays_lead', table_name='lead_stays')
    op.drop_table('lead_stays')
    op.drop_index('ix_lead_spans_at', table_name='lead_spans')
    op.drop_table('lead_spans')
