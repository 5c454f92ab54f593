"""What a database is for: real work (the default), a demo or tests. Only a demo or test database honours
``LEADFLOW_NOW`` in local mode, so that a variable left set in a shell never writes the history of a real
database at a made-up time (docs/operations.md, "The clock"; the team server ignores the variable anyway).

A database is marked when it is made: ``leadflow init --test`` (or ``init`` with ``LEADFLOW_TEST_DATABASE=1`` in
the environment, as the test suite sets it) and ``leadflow demo``. Nothing unmarks one, and nothing marks an
existing database: a database made for real work stays one.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock
from engine.errors import LeadflowError
from engine.i18n import N_
from engine.store import READ_ONLY, settings

DEMO, TEST = "demo", "test"
#: The environment variable that makes ``init`` mark the databases it creates as test databases.
ENV_TEST_DATABASE = "LEADFLOW_TEST_DATABASE"


def requested(purpose: str | None) -> str | None:
    """The purpose ``init`` marks a new database with: the one asked for, else ``test`` under the test suite's
    variable, else none (real work)."""
    return purpose or (TEST if os.environ.get(ENV_TEST_DATABASE) == "1" else None)


def mark(conn: Connection, purpose: str) -> None:
    conn.execute(sa.insert(settings).values(key="purpose", value=purpose))


def of(conn: Connection) -> str | None:
    """The database's purpose (``demo``, ``test``), None for a database for real work."""
    return conn.execute(sa.select(settings.c.value).where(settings.c.key == "purpose")).scalar()


def existing(db: sa.Engine) -> str | None:
    """The purpose of a database that may predate the ``settings`` table (then: real work)."""
    with db.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})  # never waits for a writer (an import holding SQLite's lock)
        return _purpose(conn)


def _purpose(conn: Connection) -> str | None:
    return of(conn) if sa.inspect(conn).has_table("settings") else None


def require_clock(db: sa.Engine) -> None:
    """Refuse a pinned clock (``LEADFLOW_NOW``, where this process honours it) on a database for real work. A
    database without leadflow's schema yet passes: ``init`` is about to make it."""
    pinned = clock.pinned()
    if pinned is None:
        return
    with db.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})  # never waits for a writer (an import holding SQLite's lock)
        if not sa.inspect(conn).has_table("alembic_version") or _purpose(conn) in (DEMO, TEST):
            return
    raise LeadflowError(N_("LEADFLOW_NOW is set ({pinned}), but this database is for real work, not a demo or a "
                           "test database: its history is written at the real time; unset LEADFLOW_NOW (a test "
                           "database is made with 'leadflow init --test')"), pinned=pinned)
