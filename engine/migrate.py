"""Create or upgrade the database schema with Alembic, from code (no alembic.ini to ship)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

SCRIPT_LOCATION = str(Path(__file__).resolve().parent / "migrations")


def _config(connection: sa.Connection) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def upgrade(db: sa.Engine) -> None:
    """Bring the schema to the newest revision (creates it on an empty database)."""
    from alembic import command

    with db.begin() as conn:
        command.upgrade(_config(conn), "head")  # type: ignore[arg-type]


def current_revision(db: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    with sa.create_engine("sqlite://").connect() as conn:
        return ScriptDirectory.from_config(_config(conn)).get_current_head()  # type: ignore[arg-type]


def known_revision(revision: str) -> bool:
    """True when ``revision`` is one of this leadflow's migrations (not one of a newer leadflow)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    with sa.create_engine("sqlite://").connect() as conn:
        try:
            return ScriptDirectory.from_config(_config(conn)).get_revision(revision) is not None  # type: ignore[arg-type]
        except CommandError:
            return False
