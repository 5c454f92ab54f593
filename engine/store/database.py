"""Connecting: the database engine for a URL (SQLite's pragmas and ``BEGIN IMMEDIATE``, PostgreSQL's driver),
a PostgreSQL schema of one's own, and the files of a SQLite database."""

from __future__ import annotations

import shutil
import threading
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError

from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.store.driver import sqlalchemy_error

DEFAULT_URL = "sqlite:///leadflow.db"

#: The execution option that marks a read-only transaction: on SQLite it begins DEFERRED, taking no write lock.
READ_ONLY = "leadflow_read_only"
#: How long a SQLite writer waits for another one's write lock, in seconds (``?timeout=`` in the URL overrides).
BUSY_TIMEOUT = 30.0


def is_busy(exc: Exception) -> bool:
    """Whether a database error is a writer that waited out the busy timeout (SQLite's "database is locked")."""
    text = str(getattr(exc, "orig", exc))
    return "database is locked" in text or "database is busy" in text


#: A SQLite database is its file plus, in WAL mode, these two beside it, and the rollback journal a bulk load
#: writes through (engine/store/loading.py: a run killed mid-way leaves it, and the next opening undoes the load).
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def remove_sqlite_files(path: Path) -> None:
    for suffix in SQLITE_SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_sqlite_files(source: Path, target: Path) -> None:
    """Copy a closed SQLite database (with its WAL files, if any) to ``target``, replacing it."""
    remove_sqlite_files(target)
    for suffix in SQLITE_SUFFIXES:
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


def postgres_schema(url: str, schema: str, *, reset: bool) -> str:
    """The URL whose connections work in ``schema`` of the PostgreSQL database at ``url`` (created, or with
    ``reset`` dropped and created empty): several leadflow databases on one server, such as each test run's
    and each benchmark's, never touching each other's tables."""
    db = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with db.connect() as conn:
            if reset:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        db.dispose()
    return str(sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
               .render_as_string(hide_password=False))


class _WriterQueue:
    """The threads of one process take SQLite's write lock one at a time, queueing on a Python lock.

    SQLite itself makes a writer that finds the lock taken sleep and retry (its busy handler: 1, 2, 5 ... up to 100
    ms a sleep), so under concurrent requests (a server's thread pool) most of the time went to sleeping while the
    lock was free: 32 clients made fewer writes a second than one. Queued here, the next writer starts the moment
    the previous one's COMMIT or ROLLBACK returns. Other processes (a CLI, a second server worker) still meet
    SQLite's own busy handling; a writer that waits here longer than the busy timeout goes on to SQLite, which
    then refuses it as before ("database is locked"). A plain lock, not a re-entrant one: the thread that commits
    or rolls back (or the pool, invalidating a connection mid-transaction) may not be the one that began."""

    def __init__(self, db: sa.Engine, dialect: sa.Dialect, timeout: float):
        self.lock = threading.Lock()
        self.timeout = timeout
        self.holding: dict[int, bool] = {}  # id of a DBAPI connection in a write transaction: whether it holds
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(dbapi_conn: Any) -> None:
            try:
                commit(dbapi_conn)
            finally:
                self.leave(dbapi_conn)

        def do_rollback(dbapi_conn: Any) -> None:
            try:
                rollback(dbapi_conn)
            finally:
                self.leave(dbapi_conn)

        # after the driver's COMMIT/ROLLBACK returns (the engine's "commit" event comes before it)
        dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]

        @sa.event.listens_for(db, "invalidate")
        def _invalidated(dbapi_conn: Any, _record: Any, _exc: Any) -> None:
            self.leave(dbapi_conn)  # an invalidated connection is closed without a ROLLBACK through the dialect

        @sa.event.listens_for(db, "close")
        def _closed(dbapi_conn: Any, _record: Any) -> None:
            self.leave(dbapi_conn)

    def enter(self, dbapi_conn: Any) -> None:
        self.holding[_driver_id(dbapi_conn)] = self.lock.acquire(timeout=self.timeout)

    def leave(self, dbapi_conn: Any) -> None:
        if self.holding.pop(_driver_id(dbapi_conn), False):
            self.lock.release()


#: Each SQLite engine's queue of writers (``writing_now``).
_QUEUES: weakref.WeakKeyDictionary[sa.Engine, _WriterQueue] = weakref.WeakKeyDictionary()


def writing_now(db: sa.Engine) -> bool:
    """Whether a thread of this process holds the SQLite database's write lock now (an import job does for its
    whole run): a write that may wait (a session's last-seen time) is better left out than waited for. Always
    False on PostgreSQL, whose writers lock rows, not the database."""
    writers = _QUEUES.get(db)
    return writers is not None and writers.lock.locked()


#: Entries of each index ``ANALYZE`` reads on SQLite (``PRAGMA analysis_limit``): statistics close enough for the
#: planner to tell a large table from a small one, in a tenth of a second at any size (a full ANALYZE reads every
#: index: a minute for a database of ten gigabytes).
ANALYSIS_LIMIT = 10_000
#: Leads a database holds before its planner statistics are kept (``keep_statistics``).
STATISTICS_AFTER = 1_000


def keep_statistics(conn: Connection) -> bool:
    """Gather the query planner's statistics of every table anew when they are missing or old: ``leads`` holds at
    least ``STATISTICS_AFTER`` rows and twice the rows the statistics counted (or has none). True when it did.

    Called after an import and by ``run-due`` (its timer). SQLite keeps no statistics until ``ANALYZE`` runs, and
    without them it plans some of the reports' joins the slow way round (the stand-up took 20 times longer at
    100,000 leads); on SQLite ``ANALYZE`` reads a bounded sample of each index (``ANALYSIS_LIMIT``). PostgreSQL's
    autovacuum keeps them too, but only some time after a large load. Two small reads when nothing is due: the
    newest lead's id and the leads' row count the statistics hold. On PostgreSQL a role that does not own the
    tables (docs/operations.md, least privilege) is skipped with the server's warning, not refused."""
    from engine.store.schema import metadata

    newest = conn.exec_driver_sql("SELECT max(id) FROM leads").scalar() or 0
    if newest < STATISTICS_AFTER:
        return False
    counted = counted_leads(conn)
    if counted is not None and newest < 2 * counted:
        return False
    analyse(conn, [table.name for table in metadata.sorted_tables])
    return True


def counted_leads(conn: Connection) -> int | None:
    """The leads the planner's statistics counted, or None where the database keeps none."""
    if conn.dialect.name == "sqlite":
        stat = None
        if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
            stat = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'leads' LIMIT 1").scalar()
        return int(str(stat).split()[0]) if stat is not None else None
    # -1 until the table is first analysed
    tuples = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = to_regclass('leads')").scalar()
    return int(tuples) if tuples is not None and tuples >= 0 else None


def analyse(conn: Connection, tables: list[str]) -> None:
    """Gather the planner's statistics of ``tables`` (on SQLite from a bounded sample of each index). A migration
    that makes an index calls it where the database keeps statistics: SQLite plans an index it has none of as
    if it were the most selective (the funnel read a new, non-covering index of ``lead_stages``: 0.8 s -> 7.5 s at
    a million deals, migration 0018)."""
    quoted = [f'"{name}"' for name in tables]
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        for table in quoted:
            conn.exec_driver_sql(f"ANALYZE {table}")
    else:
        conn.exec_driver_sql("ANALYZE " + ", ".join(quoted))


def _driver_id(conn: Any) -> int:
    """The driver's connection, whether given as it is or as the pool's proxy of it (what do_commit receives)."""
    return id(getattr(conn, "dbapi_connection", conn))


def create_db_engine(url: str | None) -> sa.Engine:
    """A SQLAlchemy engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    url = url or DEFAULT_URL
    try:
        parsed = sa.engine.make_url(url)
    except ArgumentError:
        raise InvalidInputError(N_("database URL {url!r} is not a SQLAlchemy URL such as "
                                   "sqlite:///leadflow.db or postgresql+psycopg://user:pw@host/db"), url=url) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        try:
            timeout = float(str(parsed.query.get("timeout", BUSY_TIMEOUT)))
        except ValueError:
            raise InvalidInputError(N_("timeout {timeout!r} in the database URL is not a number of "
                                       "seconds"), timeout=parsed.query['timeout']) from None
        db = sa.create_engine(parsed, connect_args={"timeout": timeout})

        @sa.event.listens_for(db, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE takes the write lock
            # at the start of every operation and two writers queue instead of failing mid-way.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            # Boards and reports scan large covering indexes: a bigger page cache and memory-mapped reads
            # save a system call per page.
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        writers = _WriterQueue(db, db.dialect, timeout)
        _QUEUES[db] = writers

        @sa.event.listens_for(db, "begin")
        def _begin_immediate(conn: Connection) -> None:
            # A read-only operation begins DEFERRED: in WAL mode it reads the last commit and never waits for a
            # writer. On the driver's cursor: through exec_driver_sql it cost a third of a one-lead operation.
            read_only = bool(conn.get_execution_options().get(READ_ONLY))
            begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
            dbapi_conn = conn.connection.dbapi_connection
            if not read_only:
                writers.enter(dbapi_conn)
            try:
                dbapi_conn.execute(begin)  # type: ignore[union-attr]
            except conn.dialect.loaded_dbapi.Error as exc:
                writers.leave(dbapi_conn)
                raise sqlalchemy_error(conn, begin, exc) from exc

        return db
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        raise InvalidInputError(N_("the driver for {drivername} is not installed ({name}); "
                                   "for PostgreSQL: pip install 'leadflow[postgres]'"), drivername=parsed.drivername,
                                name=exc.name) from None

