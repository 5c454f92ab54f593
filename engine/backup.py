"""Backups of a leadflow database and their restore into an empty one (docs/operations.md).

SQLite: the online backup API (one read transaction: a snapshot of every commit before it, while writers carry on
in WAL mode). PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --single-transaction``, the server's own
tools, run as programs. A backup is written beside its target and renamed into place when whole; a restore is
checked before anyone may use it, and taken back when the check fails.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from engine import store
from engine.errors import InvalidInputError, LeadflowError
from engine.i18n import N_

T = TypeVar("T")

SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"
#: The tables whose rows make a database "not empty": a restore never merges into, or replaces, any of them.
DATA_TABLES = ("clients", "leads", "events", "process_versions", "api_tokens", "imports", "outbox")
CLIENT_PACKAGE = "postgresql-client (Debian/Ubuntu: apt install postgresql-client; the version must be at least " \
                 "the server's)"


def kind_of(path: Path) -> str:
    """``sqlite`` or ``pg_dump``: what a backup file is, by its first bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise InvalidInputError(N_("backup file {path!r} does not exist"), path=str(path)) from None
    except OSError as exc:
        raise InvalidInputError(N_("can't read backup file {path!r}: {strerror}"), path=str(path),
                                strerror=exc.strerror or exc) from None
    if head.startswith(SQLITE_HEADER):
        return "sqlite"
    if head.startswith(PG_DUMP_HEADER):
        return "pg_dump"
    raise InvalidInputError(N_("{path!r} is neither a SQLite backup nor a pg_dump file (custom format) that "
                               "'leadflow backup' writes"), path=str(path))


def sqlite_path(db: sa.Engine) -> Path:
    database = db.url.database
    if not database or database == ":memory:":
        raise InvalidInputError("an in-memory SQLite database has no file to back up or restore into")
    return Path(database)


@contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target``, renamed to it when the block ends well, removed otherwise."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        if target.exists():  # appeared meanwhile: never written over
            raise LeadflowError(N_("{target!r} appeared while the backup was written; nothing was replaced"),
                                target=str(target))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


# -- backup -------------------------------------------------------------------------------------------------


def backup(db: sa.Engine, target: Path) -> None:
    """Write a consistent backup of the database to ``target`` (which must not exist)."""
    if target.exists():
        raise InvalidInputError(N_("backup file {target!r} exists; a backup never replaces a file"), target=str(target))
    with _partial(target) as partial:
        if db.dialect.name == "sqlite":
            _sqlite_backup(sqlite_path(db), partial)
        else:
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}",
                  *_schema_option(db)], db)


def _sqlite_backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # all pages in one step: one read transaction, a snapshot; writers are not blocked (WAL)
        dst.execute("PRAGMA journal_mode=DELETE")  # the backup is one file, with no -wal beside it
    finally:
        dst.close()
        src.close()


def _schema_option(db: sa.Engine) -> list[str]:
    """A URL whose connections work in one schema (``store.postgres_schema``) backs up that schema only."""
    options = str(db.url.query.get("options", ""))
    prefix = "-csearch_path="
    return [f"--schema={options[len(prefix):]}"] if options.startswith(prefix) else []


def _run(command: list[str], db: sa.Engine) -> None:
    """Run a PostgreSQL client program against the database; its password goes in the environment, never on
    the command line (where other users of the machine could read it)."""
    if shutil.which(command[0]) is None:
        raise LeadflowError(N_("{command} is not installed (or not on PATH); it comes with the package "
                               "{client_package}"), command=command[0], client_package=CLIENT_PACKAGE)
    url = db.url
    env = {**os.environ, "PGHOST": url.host or "localhost", "PGPORT": str(url.port or 5432),
           "PGUSER": url.username or "", "PGDATABASE": url.database or ""}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    if url.query.get("options"):
        env["PGOPTIONS"] = str(url.query["options"])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise LeadflowError(N_("{command} failed (exit {returncode}): {text}"), command=command[0],
                            returncode=done.returncode, text=lines[-1] if lines else 'no message')


# -- restore ------------------------------------------------------------------------------------------------


def require_empty(conn: sa.Connection) -> None:
    """Refuse a database that holds any leadflow data (an initialised schema with nothing in it is empty)."""
    tables = set(sa.inspect(conn).get_table_names())
    full = [t for t in DATA_TABLES if t in tables and conn.execute(
        sa.select(sa.literal(1)).select_from(store.metadata.tables[t]).limit(1)).first()]
    users = conn.execute(sa.select(sa.func.count()).select_from(store.users)).scalar_one() if "users" in tables else 0
    if full or users > 1:
        what = ", ".join(full) or f"{users} users"
        raise LeadflowError(N_("the database to restore into is not empty (it has {what}); restore goes into an "
                               "empty database only: create a new one (a new SQLite file, or createdb) and restore "
                               "there"), what=what)


def has_schema(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table("alembic_version")


def restore_sqlite(source: Path, target: sa.Engine, verify: Callable[[str], T]) -> T:
    """Copy the SQLite backup ``source`` into the (empty) SQLite database of ``target``, once ``verify(url)``
    accepted a copy of it (upgraded to this leadflow's schema): the target is written only after that, in one
    step of the backup API, so a failure leaves it as it was. Returns what ``verify`` returned."""
    target_path = sqlite_path(target)
    folder = target_path.parent if target_path.parent.exists() else Path(".")
    with tempfile.TemporaryDirectory(prefix=".leadflow-restore-", dir=folder) as scratch:
        staged = Path(scratch) / "restoring.db"
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(staged)
        try:
            src.backup(dst)
        except sqlite3.DatabaseError as exc:
            raise LeadflowError(N_("{source!r} is not a readable SQLite database: {exc}"), source=str(source),
                                exc=exc) from None
        finally:
            dst.close()
            src.close()
        verified = verify(f"sqlite:///{staged}")
        staged_conn = sqlite3.connect(staged)
        raw = target.raw_connection()
        try:
            staged_conn.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()
            staged_conn.close()
        target.dispose()
    return verified


def restore_postgres(source: Path, target: sa.Engine, verify: Callable[[str], T]) -> T:
    """``pg_restore`` the dump into the (empty) PostgreSQL database of ``target`` in one transaction, then
    ``verify(url)``; when that fails, drop what the restore created. Returns what ``verify`` returned."""
    with target.connect() as conn:
        initialised = has_schema(conn)
    _run(["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
          *(["--clean", "--if-exists"] if initialised else []), "--dbname", _conninfo(target), str(source)], target)
    try:
        return verify(target.url.render_as_string(hide_password=False))
    except BaseException:
        drop_schema(target)
        raise


def _conninfo(db: sa.Engine) -> str:
    """The database's name for pg_restore's --dbname; host, user and password are in the environment (_run)."""
    return db.url.database or ""


def drop_schema(db: sa.Engine) -> None:
    """Remove every leadflow table, trigger function and the revision (a restore taken back)."""
    with db.begin() as conn:
        for table in reversed(store.metadata.sorted_tables):
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table.name}" CASCADE')
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS leadflow_events_append_only() CASCADE")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS leadflow_erasures_finish_once() CASCADE")
