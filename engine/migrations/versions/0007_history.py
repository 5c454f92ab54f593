"""history: the events table refuses UPDATE and DELETE (but an audited erasure's), the erasures record

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

#: The one sentence every refusal says (tests and docs/operations.md quote it).
EVENTS_REFUSAL = ("events are append-only: the history of a lead is never changed or deleted "
                  "(only the erasure of a client, recorded in erasures, may rewrite the data of its events)")
assert "'" not in EVENTS_REFUSAL  # it is quoted in SQL
ERASURES_REFUSAL = "the record of an erasure is never changed or deleted; only its finished_at is set, once"

# SQLite: each trigger refuses with RAISE(ABORT), which rolls back the statement (the caller's transaction goes
# on, as after any failed statement). "IS NOT" compares NULLs as values.
_SQLITE = [
    f"""CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, '{EVENTS_REFUSAL}'); END""",
    f"""CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        WHEN NEW.id IS NOT OLD.id OR NEW.lead_id IS NOT OLD.lead_id OR NEW.client_id IS NOT OLD.client_id
          OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor OR NEW.kind IS NOT OLD.kind
          OR NOT EXISTS (SELECT 1 FROM erasures WHERE erasures.client_id = OLD.client_id
                                                  AND erasures.finished_at IS NULL)
        BEGIN SELECT RAISE(ABORT, '{EVENTS_REFUSAL}'); END""",
    f"""CREATE TRIGGER erasures_no_delete BEFORE DELETE ON erasures
        BEGIN SELECT RAISE(ABORT, '{ERASURES_REFUSAL}'); END""",
    f"""CREATE TRIGGER erasures_finish_once BEFORE UPDATE ON erasures
        WHEN OLD.finished_at IS NOT NULL OR NEW.finished_at IS NULL OR NEW.id IS NOT OLD.id
          OR NEW.client_id IS NOT OLD.client_id OR NEW.requested_by IS NOT OLD.requested_by
          OR NEW.started_at IS NOT OLD.started_at
        BEGIN SELECT RAISE(ABORT, '{ERASURES_REFUSAL}'); END""",
]

# PostgreSQL: one function per table, for row triggers (UPDATE, DELETE) and the statement trigger of TRUNCATE,
# which row triggers do not see; it lets through the one UPDATE ``allowed`` describes and refuses the rest.
# Disabling a trigger takes the table's owner (docs/operations.md: the server's role is not), and
# session_replication_role takes a superuser.
def _guard(name: str, allowed: str, refusal: str) -> str:
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF {allowed} THEN
                    RETURN NEW;
                END IF;
            END IF;
            RAISE EXCEPTION '{refusal}' USING ERRCODE = 'integrity_constraint_violation';
        END $$"""


_POSTGRES = [
    _guard("leadflow_events_append_only",
           """NEW.id = OLD.id AND NEW.lead_id = OLD.lead_id AND NEW.client_id = OLD.client_id
                   AND NEW.at = OLD.at AND NEW.actor = OLD.actor AND NEW.kind = OLD.kind
                   AND EXISTS (SELECT 1 FROM erasures WHERE erasures.client_id = OLD.client_id
                                                        AND erasures.finished_at IS NULL)""", EVENTS_REFUSAL),
    """CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION leadflow_events_append_only()""",
    """CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION leadflow_events_append_only()""",
    _guard("leadflow_erasures_finish_once",
           """OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NEW.id = OLD.id
                   AND NEW.client_id = OLD.client_id AND NEW.requested_by = OLD.requested_by
                   AND NEW.started_at = OLD.started_at""", ERASURES_REFUSAL),
    """CREATE TRIGGER erasures_finish_once BEFORE UPDATE OR DELETE ON erasures
        FOR EACH ROW EXECUTE FUNCTION leadflow_erasures_finish_once()""",
    """CREATE TRIGGER erasures_no_truncate BEFORE TRUNCATE ON erasures
        FOR EACH STATEMENT EXECUTE FUNCTION leadflow_erasures_finish_once()""",
]


def upgrade() -> None:
    op.create_table(
        'erasures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_erasures_client_id_clients')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures')),
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_client_id'), ['client_id'], unique=False)
    for statement in _POSTGRES if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP TRIGGER IF EXISTS events_no_truncate ON events")
        op.execute("DROP FUNCTION IF EXISTS leadflow_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_no_delete")
        op.execute("DROP TRIGGER IF EXISTS events_no_update")
    op.drop_table('erasures')  # its own triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS leadflow_erasures_finish_once()")
