"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import migrate
from engine.store import create_db_engine, metadata
from engine.store.schema import modelled


def test_migrations_match_the_models(db_url: str) -> None:
    db = create_db_engine(db_url)
    try:
        migrate.upgrade(db)
        with db.connect() as conn:
            # the search's trigram table and index are the migrations' alone (engine/store/schema.py: modelled)
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": modelled}), metadata)
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
