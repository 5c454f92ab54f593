"""search: clients get a tax id, a folded search name and key with their indexes, merged_into; phones in E.164

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00

Partial matches read a trigram index where the database has one (engine/search.py): on SQLite the FTS5 table
``client_search`` (tokenizer ``trigram``, an external-content table over ``clients.search_key``, kept by the
triggers below); on PostgreSQL the GIN index ``ix_clients_search_key_trgm`` of ``pg_trgm``, the extension
created when the role may (else the index is left out and partial matches scan: docs/performance.md).
Existing phones are rewritten in E.164 where ``phonenumbers`` reads them (national ones in the installation's
region, ``LEADFLOW_PHONE_REGION``, else PL); the others stay as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_SQLITE_FTS = [
    """CREATE VIRTUAL TABLE client_search USING fts5(search_key, content='clients', content_rowid='id',
                                                     tokenize='trigram')""",
    """CREATE TRIGGER client_search_insert AFTER INSERT ON clients BEGIN
        INSERT INTO client_search(rowid, search_key) VALUES (new.id, new.search_key); END""",
    """CREATE TRIGGER client_search_delete AFTER DELETE ON clients BEGIN
        INSERT INTO client_search(client_search, rowid, search_key) VALUES ('delete', old.id, old.search_key); END""",
    """CREATE TRIGGER client_search_update AFTER UPDATE OF search_key ON clients BEGIN
        INSERT INTO client_search(client_search, rowid, search_key) VALUES ('delete', old.id, old.search_key);
        INSERT INTO client_search(rowid, search_key) VALUES (new.id, new.search_key); END""",
    "INSERT INTO client_search(client_search) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('search_name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('search_key', sa.Text(), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_clients_tax_id'), ['tax_id'], unique=False)
        batch_op.create_index('ix_clients_search_name', ['search_name'], unique=False,
                              postgresql_ops={'search_name': 'varchar_pattern_ops'})
    _fill(op.get_bind())
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = _trigram_schema(bind)
        if schema is not None:  # the operator class named with its schema: the search path may not hold it
            op.execute(f"CREATE INDEX ix_clients_search_key_trgm ON clients USING gin (search_key {schema}.gin_trgm_ops)")
    elif _sqlite_has_trigram(bind):
        for statement in _SQLITE_FTS:
            op.execute(statement)


def _fill(bind: sa.Connection) -> None:
    """Every client's phone in E.164 where it parses, and its search columns."""
    from engine.rules import PhoneError, check_phone
    from engine.search import client_search_columns

    clients = sa.table('clients', sa.column('id', sa.Integer), sa.column('name', sa.String),
                       sa.column('company', sa.String), sa.column('email', sa.String), sa.column('phone', sa.String),
                       sa.column('phone_norm', sa.String), sa.column('search_name', sa.String),
                       sa.column('search_key', sa.Text))
    update = sa.update(clients).where(clients.c.id == sa.bindparam('_id')).values(
        phone=sa.bindparam('_phone'), phone_norm=sa.bindparam('_phone_norm'),
        search_name=sa.bindparam('_search_name'), search_key=sa.bindparam('_search_key'))
    last = 0
    while True:
        rows = bind.execute(sa.select(clients.c.id, clients.c.name, clients.c.company, clients.c.email,
                                      clients.c.phone, clients.c.phone_norm)
                            .where(clients.c.id > last).order_by(clients.c.id).limit(5000)).all()
        if not rows:
            return
        changes = []
        for client_id, name, company, email, phone, phone_norm in rows:
            try:
                e164 = check_phone(phone)
            except PhoneError:
                e164 = None
            if e164 is not None:
                phone, phone_norm = e164, e164
            search_name, search_key = client_search_columns(name, company, email, phone, None)
            changes.append({"_id": client_id, "_phone": phone, "_phone_norm": phone_norm,
                            "_search_name": search_name, "_search_key": search_key})
        bind.execute(update, changes)
        last = rows[-1][0]


def _trigram_schema(bind: sa.Connection) -> str | None:
    """The schema of pg_trgm, created in ``public`` if the role may (in a savepoint: a refusal, or another
    migration creating it at the same moment, leaves this transaction whole), else None."""
    find = sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
    schema = bind.execute(find).scalar()
    if schema is None and bind.execute(sa.text(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        public = bind.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).first()
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if public else "")))
        except sa.exc.DBAPIError:
            pass
        schema = bind.execute(find).scalar()
    return str(schema) if schema is not None else None


def _sqlite_has_trigram(bind: sa.Connection) -> bool:
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE VIRTUAL TABLE temp.leadflow_probe USING fts5(x, tokenize='trigram')"))
            bind.execute(sa.text("DROP TABLE temp.leadflow_probe"))
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_clients_search_key_trgm")
    else:
        for trigger in ("client_search_insert", "client_search_delete", "client_search_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS client_search")
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_index('ix_clients_search_name')
        batch_op.drop_index(batch_op.f('ix_clients_tax_id'))
        batch_op.drop_column('search_key')
        batch_op.drop_column('search_name')
        batch_op.drop_column('merged_into')
        batch_op.drop_column('tax_id')
