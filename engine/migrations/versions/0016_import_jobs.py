"""import_jobs: an import running as a job of the server (the web app's /import, POST /v1/import-jobs), its
progress and, once it ended, its report or why it failed (docs/intake.md, "Imports as jobs")

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'import_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('process', sa.String(length=64), nullable=False),
        sa.Column('file_name', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=True),
        sa.Column('rows_read', sa.Integer(), nullable=False),
        sa.Column('rejected', sa.Integer(), nullable=False),
        sa.Column('bytes_read', sa.BigInteger(), nullable=False),
        sa.Column('bytes_total', sa.BigInteger(), nullable=False),
        sa.Column('report_json', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs')),
    )


def downgrade() -> None:
    op.drop_table('import_jobs')
