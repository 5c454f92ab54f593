"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import migrate
from engine.store import create_db_engine, metadata
from engine.store.schema import modelled


def _indexes(conn: sa.Connection) -> dict[str, str]:
    """The database's indexes by name: their definitions as it gives them back (SQLite: as they were written)."""
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    else:
        found = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
    return {name: " ".join(sql.split()) for name, sql in found}


def test_migrations_match_the_models(db_url: str) -> None:
    db = create_db_engine(db_url)
    try:
        migrate.upgrade(db)
        with db.connect() as conn, warnings.catch_warnings():
            # Alembic cannot compare an index on an expression on SQLite (it warns and skips it): compared below
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
            # the search's trigram table and index are the migrations' alone (engine/store/schema.py: modelled)
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": modelled}), metadata)
            indexes = _indexes(conn)
            declared = {index.name: index for table in metadata.sorted_tables for index in table.indexes
                        if any(not isinstance(e, sa.Column) for e in index.expressions)}
            assert declared, "the schema declares an index on an expression (ix_lead_stages_to_close)"
            for name, index in declared.items():
                assert name in indexes, f"the migrations do not make {name}"
                if conn.dialect.name == "sqlite":  # as written: the statement the schema makes (PostgreSQL rewrites it)
                    made = " ".join(str(sa.schema.CreateIndex(index).compile(dialect=conn.dialect)).split())
                    assert indexes[name] == made, f"{name}: the migrations made {indexes[name]}, the schema {made}"
        assert diff == [], f"engine/store/schema.py and engine/migrations disagree: {diff}"
        assert migrate.current_revision(db) == migrate.head_revision()
        migrate.upgrade(db)  # upgrading an up-to-date database changes nothing
        assert sa.inspect(db).has_table("leads")
    finally:
        db.dispose()


def test_a_database_without_the_schema_or_behind_it_says_what_to_run(db_url: str) -> None:
    """Before `leadflow init`, and after installing a newer leadflow over an older database, every command
    says what to do instead of a database error about a missing table or column."""
    import pytest
    from alembic import command

    from engine.api import Engine
    from engine.errors import LeadflowError

    root = Engine.open(db_url, user="root")
    try:
        with pytest.raises(LeadflowError, match=r"^the database has no leadflow schema; run 'leadflow init' first$"):
            root.list_leads()
        root.init()
        with root.db.begin() as conn:
            command.downgrade(migrate._config(conn), "0003")  # type: ignore[arg-type]
        head = migrate.head_revision()
        for call in (root.list_leads, root.board, lambda: root.add_user("ewa", "salesperson", "north")):
            with pytest.raises(LeadflowError, match=f"^the database's schema is at revision 0003, this leadflow "
                                                    f"needs {head}; an admin runs 'leadflow init' to upgrade it$"):
                call()
        assert root.init()["revision"] == head
        assert root.list_leads() == []
    finally:
        root.close()
