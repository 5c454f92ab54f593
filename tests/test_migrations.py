"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import migrate
from engine.store import create_db_engine, metadata


def test_migrations_match_the_models(db_url: str) -> None:
    db = create_db_engine(db_url)
    try:
        migrate.upgrade(db)
        with db.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], f"engine/store.py and engine/migrations disagree: {diff}"
        assert migrate.current_revision(db) == migrate.head_revision()
        migrate.upgrade(db)  # upgrading an up-to-date database changes nothing
        assert sa.inspect(db).has_table("leads")
    finally:
        db.dispose()
