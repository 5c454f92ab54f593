"""board contacts: an index of the leads with a booked next contact, so that the board's light counts are index
ranges (docs/performance.md, the web pages)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'  # re-chained at the merge of this round's branches
branch_labels = None
depends_on = None

COLUMNS = ["process", "status", "stage", "next_contact_at", "red_at", "value_minor", "team", "owner"]
BOOKED = "next_contact_at IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_leads_contact_board", "leads", COLUMNS, unique=False, sqlite_where=sa.text(BOOKED),
                    postgresql_where=sa.text(BOOKED))


def downgrade() -> None:
    op.drop_index("ix_leads_contact_board", table_name="leads")
