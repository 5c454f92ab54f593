"""settings: facts about the database itself, such as whether it is a demo or a test database (whose commands
may run at the instant LEADFLOW_NOW names: docs/operations.md, "The clock")

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # an existing database gets no row: it is neither a demo nor a test database
    op.create_table(
        'settings',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_settings')),
    )


def downgrade() -> None:
    op.drop_table('settings')
