"""Bulk loading: a large import into a (nearly) empty SQLite database writes the big tables without their secondary
indexes and creates them again at its end, as databases' own loaders do.

Inserting rows into an index in the order of the table (a lead's id, its events' ids) appends to the end of the
B-tree; inserting them in any other order (a board's ``process, status, stage``, an event's ``kind, at``) touches a
page anywhere in the tree for every row, and once the indexes outgrow the page cache every row costs a page read.
``CREATE INDEX`` reads the table once and sorts, far faster than millions of random inserts. Both run inside the
import's one transaction: SQLite's schema changes are transactional, so an import that fails or is undone leaves
the indexes as they were, and readers (WAL) see the database as it was until the commit (a migration alone on
the database has no readers, below). It pays only when the rows to import are many against the rows present
(re-creating an index re-reads every row of its table, old ones too): ``worth_it``. PostgreSQL is left alone
(dropping an index there locks its table against every reader).

Kept while loading: unique indexes (they check the data) and the indexes led by ``lead_id`` (the import reads the
leads it already holds by them, and the new leads' rows come in the order of their ids, so they append anyway).
The import's connection also gets a larger page cache for the load, set back afterwards; nothing about durability
changes (the commit is as safe as any). Temporary storage stays on disk: the sorts of ``CREATE INDEX`` for a
million deals would otherwise hold gigabytes in memory, and changing it drops the connection's temporary tables.

**Alone on the database** (``alone``): a migration into a database that holds no lead yet, from a file large
enough to be a bulk load, runs its one transaction through a rollback journal instead of the WAL, when its
connection is the only one open on the database (SQLite refuses to leave WAL mode otherwise, and the import then
keeps WAL). In WAL mode every page of the load is written twice, to the WAL and again at the checkpoint after the
commit (a fifth of a million deals' import), and the WAL's index grows with the transaction, so every page the
load reads costs more as it goes (the rate fell from 2,600 to 1,100 deals/s over a million deals). A rollback
journal holds only the pages the database had before the load (a few: it was empty); the new ones go straight to
the database file. ``synchronous=FULL`` for the load: the journal is on disk before the file is touched and the
commit is as durable as in WAL mode. A run killed mid-way leaves the journal beside the file, and the next
connection to open the database rolls the load back from it before anything reads it (the file cut back to its
size before the load): as in WAL mode, an interrupted import leaves nothing. WAL mode comes back after the
commit or the rollback (and with the next connection the engine opens, should that fail). While the load runs,
other connections cannot open the database (they wait out their busy timeout): the migration has it for itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.schema import closures, events, lead_spans, lead_stages, lead_stays, lead_tasks, leads, ownerships

#: The tables a history import fills with many rows per deal (or one per deal, with many indexes).
BIG_TABLES = (leads, lead_tasks, lead_stages, lead_spans, lead_stays, events, closures, ownerships)
#: Fewer rows to import than this: the indexes stay (a small import gains nothing measurable).
MIN_ROWS = 20_000
#: A history file at least this large into a database without leads: a migration, run ``alone`` if it can.
ALONE_BYTES = 2_000_000
#: The page cache of the import's connection while loading, in KiB (SQLite's negative ``cache_size``).
CACHE_KIB = 512 * 1024
PRAGMAS = {"cache_size": -CACHE_KIB}
#: While the indexes are made again: SQLite's sorter keeps up to the page cache's worth of keys in memory before it
#: writes a sorted run to a temporary file, and sorts and merges the runs on ``threads`` helper threads besides the
#: connection's own. With the load's 512 MB cache an index of a million deals' events was one sort of hundreds of
#: megabytes on one core; with SQLite's default 2 MB budget it is many small runs sorted on every core
#: (docs/performance.md, "Session 10": the indexes of 100,000 deals 7.3 s -> 4.8 s on 2 cores).
INDEX_PRAGMAS = {"cache_size": -2000, "threads": max((os.cpu_count() or 1) - 1, 0)}


class BulkLoad:
    """The secondary indexes of ``BIG_TABLES`` taken away by ``begin`` and made again by ``end``."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.active = False
        self._indexes: list[tuple[str, str]] = []  # (name, its CREATE INDEX statement as the schema holds it)
        self._pragmas: dict[str, Any] = {}

    def worth_it(self, incoming: int) -> bool:
        """Whether loading ``incoming`` leads (with their rows) pays for re-creating the indexes: SQLite, at least
        ``MIN_ROWS`` of them, and at least as many as the database holds."""
        if self.conn.dialect.name != "sqlite" or incoming < MIN_ROWS:
            return False
        present = self.conn.execute(sa.select(sa.func.count()).select_from(leads)).scalar_one()
        return incoming >= present

    def begin(self) -> None:
        if self.active:
            return
        self._set(PRAGMAS)
        names = [t.name for t in BIG_TABLES]
        found = self.conn.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
            f"({', '.join(f':t{k}' for k in range(len(names)))}) ORDER BY name"),
            {f"t{k}": name for k, name in enumerate(names)}).all()
        self._indexes = [(name, sql) for name, sql in found if not kept_while_loading(sql)]
        for name, _ in self._indexes:
            self.conn.exec_driver_sql(f'DROP INDEX "{name}"')
        self.active = True

    def end(self) -> None:
        """Create the indexes again (the import's rows written) and set the connection back."""
        try:
            self._set(INDEX_PRAGMAS)
            for _, sql in self._indexes:
                self.conn.exec_driver_sql(sql)
            self._indexes = []
        finally:
            self.restore()

    def _set(self, pragmas: dict[str, int]) -> None:
        """Set ``pragmas`` on the connection, keeping each one's first value for ``restore``."""
        driver = self.conn.connection.dbapi_connection
        assert driver is not None
        for name, value in pragmas.items():
            self._pragmas.setdefault(name, driver.execute(f"PRAGMA {name}").fetchone()[0])
            driver.execute(f"PRAGMA {name}={value}")

    def restore(self) -> None:
        """Set the connection's pragmas back (an import that failed: its rollback brings the indexes back)."""
        driver = self.conn.connection.dbapi_connection
        assert driver is not None
        for name, value in self._pragmas.items():
            driver.execute(f"PRAGMA {name}={int(value)}")
        self._pragmas = {}
        self.active = False


def kept_while_loading(sql: str) -> bool:
    """Whether the index that ``sql`` creates stays while loading: unique, or led by ``lead_id``."""
    head, _, columns = sql.partition("(")
    return "UNIQUE" in head.upper() or columns.lstrip().startswith("lead_id")


@contextlib.contextmanager
def alone(conn: Connection, incoming_bytes: int) -> Iterator[bool]:
    """Around a bulk load's transaction (entered before it begins, left after its commit or rollback): on SQLite,
    when the database holds no lead, the file is at least ``ALONE_BYTES`` and ``conn`` is the only connection open
    on the database, its transactions write through a rollback journal (see the module's docstring); yields whether
    they do. Anything else: nothing changes."""
    driver = conn.connection.dbapi_connection
    if (conn.dialect.name != "sqlite" or incoming_bytes < ALONE_BYTES or driver is None
            or driver.execute("SELECT 1 FROM leads LIMIT 1").fetchone() is not None):
        yield False
        return
    timeout = driver.execute("PRAGMA busy_timeout").fetchone()[0]
    driver.execute("PRAGMA busy_timeout=0")  # another connection is open: keep WAL at once, wait for nothing
    try:
        mode = driver.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except conn.dialect.loaded_dbapi.OperationalError:  # "database is locked": not alone
        mode = "wal"
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(timeout)}")
    if mode != "delete":
        yield False
        return
    synchronous = driver.execute("PRAGMA synchronous").fetchone()[0]
    driver.execute("PRAGMA synchronous=FULL")
    try:
        yield True
    finally:
        driver.execute(f"PRAGMA synchronous={int(synchronous)}")
        with contextlib.suppress(conn.dialect.loaded_dbapi.OperationalError):  # busy: the next connection does it
            driver.execute("PRAGMA journal_mode=WAL")


@contextlib.contextmanager
def bulk_load(conn: Connection) -> Iterator[BulkLoad]:
    """A ``BulkLoad`` for the caller to ``begin`` once it knows the load is large (``worth_it``); on leaving, the
    indexes are made again, or, when the block raised, only the connection is set back (the caller's transaction
    rolls back, the indexes with it)."""
    load = BulkLoad(conn)
    try:
        yield load
    except BaseException:
        load.restore()
        raise
    if load.active:
        load.end()
