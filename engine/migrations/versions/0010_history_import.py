"""history import: external ids of leads and clients, companies with their contact persons

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_leads_external_id', ['external_id'], unique=True)
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='person', nullable=False))
        batch_op.add_column(sa.Column('company_key', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_clients_company_key', ['company_key'], unique=False)
        batch_op.create_index('ix_clients_external_id', ['external_id'], unique=True)
    op.create_table(
        'contacts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=500), nullable=False),
        sa.Column('role', sa.String(length=200), nullable=True),
        sa.Column('email', sa.String(length=320), nullable=True),
        sa.Column('phone', sa.String(length=64), nullable=True),
        sa.Column('email_norm', sa.String(length=320), nullable=True),
        sa.Column('phone_norm', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_contacts_client_id_clients')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_email_norm'), ['email_norm'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_phone_norm'), ['phone_norm'], unique=False)


def downgrade() -> None:
    op.drop_table('contacts')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_index('ix_clients_external_id')
        batch_op.drop_index('ix_clients_company_key')
        batch_op.drop_column('external_id')
        batch_op.drop_column('company_key')
        batch_op.drop_column('kind')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_external_id')
        batch_op.drop_column('external_id')
