"""A large history import into a (nearly) empty SQLite database loads the big tables without their secondary indexes
and creates them again at its end (engine/store/loading.py): the database it leaves must be, row for row and
index for index, the one the import writes with every index in place; an import that fails leaves the indexes and
the connection as they were."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.history_data import NOW, PROCESS, generate
from benchmarks.history_import import fresh_db
from engine import clock, intake, store
from engine.api import Engine
from engine.errors import DatabaseBusy, PermissionDenied
from engine.store import loading as bulk_load

DEALS = 400


@dataclasses.dataclass
class SmallBatches(intake.ImportOptions):
    batch_size: int = 100  # several batches: the load begins at the first and the rest are written without indexes


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "ImportOptions", SmallBatches)


def imported(db: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch, *, bulk: bool) -> dict[str, Any]:
    monkeypatch.setattr(bulk_load, "MIN_ROWS", 0 if bulk else 10**12)
    admin = Engine.open(fresh_db(db), user="admin")
    begun: list[bool] = []
    real_begin = bulk_load.BulkLoad.begin

    def begin(self: bulk_load.BulkLoad) -> None:
        begun.append(True)
        real_begin(self)

    monkeypatch.setattr(bulk_load.BulkLoad, "begin", begin)
    try:
        with clock.frozen(NOW):
            report = admin.intake.import_csv(csv_path, process=PROCESS, history=True)
        after = connection_pragmas(admin)
    finally:
        admin.close()
    assert report["status"] == "imported" and report["imported"] == DEALS, report
    assert after == CONNECTION_PRAGMAS, "the load's page cache and the index builds' sort threads are set back"
    assert begun == ([True] if bulk else []), "the bulk load must begin exactly when it is worth it"
    return report


#: A pooled connection's own settings (engine/store/database.py), which a bulk load changes while it runs.
CONNECTION_PRAGMAS = {"cache_size": -65536, "threads": 0}


def connection_pragmas(engine: Engine) -> dict[str, Any]:
    with engine.transaction() as conn:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        return {name: driver.execute(f"PRAGMA {name}").fetchone()[0] for name in CONNECTION_PRAGMAS}


def dump(db: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(db)) as conn:  # closed: a migration has the database alone
        schema = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        tables = [name for kind, name, _, _ in schema if kind == "table" and not name.startswith("sqlite_")]
        rows = {t: sorted(conn.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}
        # a mail's idempotency key begins with the database's own id: the rest must agree
        rows["outbox"] = [(i, key.partition("-")[2], *rest) for i, key, *rest in rows["outbox"]]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return {"schema": schema, "rows": rows}


@pytest.fixture
def history_csv(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    return path


def test_the_bulk_load_writes_the_same_database_as_the_import_with_its_indexes(
        tmp_path: Path, history_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())
    plain, bulk = tmp_path / "plain.db", tmp_path / "bulk.db"
    plain_report = imported(plain, history_csv, monkeypatch, bulk=False)
    bulk_report = imported(bulk, history_csv, monkeypatch, bulk=True)
    assert plain_report == bulk_report
    expected, got = dump(plain), dump(bulk)
    assert got["schema"] == expected["schema"]  # every index back, as it was defined
    assert sum(len(r) for r in expected["rows"].values()) > 10 * DEALS
    differ = [table for table, rows in expected["rows"].items() if got["rows"][table] != rows]
    assert differ == [], differ


def test_a_failed_bulk_load_leaves_the_indexes_and_the_connection_as_they_were(
        tmp_path: Path, history_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())
    monkeypatch.setattr(bulk_load, "MIN_ROWS", 0)
    db = tmp_path / "failed.db"
    admin = Engine.open(fresh_db(db), user="admin")
    before = dump(db)
    calls = [0]
    real_flush = store.write_leads

    def failing(*args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:  # the indexes are gone by now
            raise RuntimeError("disk on fire")
        real_flush(*args, **kwargs)

    monkeypatch.setattr(store, "write_leads", failing)
    try:
        with clock.frozen(NOW), pytest.raises(RuntimeError, match="disk on fire"):
            admin.intake.import_csv(history_csv, process=PROCESS, history=True)
        pragmas = connection_pragmas(admin)
    finally:
        admin.close()
    assert calls[0] == 2
    assert pragmas == CONNECTION_PRAGMAS
    assert dump(db) == before


def test_a_small_import_or_one_into_a_larger_database_keeps_the_indexes(tmp_path: Path) -> None:
    admin = Engine.open(fresh_db(tmp_path / "small.db"), user="admin")
    try:
        with admin.transaction() as conn:
            load = bulk_load.BulkLoad(conn)
            assert not load.worth_it(bulk_load.MIN_ROWS - 1)
            assert load.worth_it(bulk_load.MIN_ROWS)
    finally:
        admin.close()


def import_history(url: str, csv_path: Path) -> dict[str, Any]:
    admin = Engine.open(url, user="admin")
    try:
        with clock.frozen(NOW):
            return dict(admin.intake.import_csv(csv_path, process=PROCESS, history=True))
    finally:
        admin.close()


def journal_mode(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.fixture
def journals(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The journal mode of each import's transaction: "delete" when it had the database for itself, else "kept"."""
    modes: list[str] = []
    real_alone = bulk_load.alone

    @contextlib.contextmanager
    def alone(conn: Any, incoming_bytes: int) -> Iterator[bool]:
        with real_alone(conn, incoming_bytes) as took:
            driver = conn.connection.dbapi_connection
            modes.append(driver.execute("PRAGMA journal_mode").fetchone()[0] if took else "kept")
            yield took

    monkeypatch.setattr(store, "alone", alone)
    return modes


def test_a_migration_alone_on_the_database_writes_through_a_rollback_journal_the_same_database(
        tmp_path: Path, history_csv: Path, monkeypatch: pytest.MonkeyPatch, journals: list[str]) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())
    plain, journal = tmp_path / "plain.db", tmp_path / "journal.db"
    monkeypatch.setattr(bulk_load, "ALONE_BYTES", 10**12)
    plain_report = imported(plain, history_csv, monkeypatch, bulk=True)
    monkeypatch.setattr(bulk_load, "ALONE_BYTES", 0)
    journal_report = imported(journal, history_csv, monkeypatch, bulk=True)
    assert journals == ["kept", "delete"]
    assert plain_report == journal_report
    assert journal_mode(journal) == "wal", "WAL mode comes back after the load"
    assert not Path(f"{journal}-journal").exists()
    expected, got = dump(plain), dump(journal)
    assert got["schema"] == expected["schema"]
    differ = [table for table, rows in expected["rows"].items() if got["rows"][table] != rows]
    assert differ == [], differ
    # the database holds leads now: another import keeps WAL
    again = import_history(f"sqlite:///{journal}", history_csv)
    assert again["imported"] == 0 and journals == ["kept", "delete", "kept"]


def test_a_migration_keeps_wal_when_another_connection_is_open(
        tmp_path: Path, history_csv: Path, monkeypatch: pytest.MonkeyPatch, journals: list[str]) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())
    monkeypatch.setattr(bulk_load, "ALONE_BYTES", 0)
    db = tmp_path / "shared.db"
    url = fresh_db(db)
    reader = sqlite3.connect(db)  # say, the web app's
    try:
        assert reader.execute("SELECT count(*) FROM leads").fetchone() == (0,)
        report = import_history(url, history_csv)
        assert report["imported"] == DEALS and journals == ["kept"]
        assert reader.execute("SELECT count(*) FROM leads").fetchone() == (DEALS,)
    finally:
        reader.close()
    assert journal_mode(db) == "wal"


def test_who_may_not_migrate_is_refused_before_the_import_has_the_database_for_itself(
        tmp_path: Path, history_csv: Path, monkeypatch: pytest.MonkeyPatch, journals: list[str]) -> None:
    """A salesperson's history import into an empty database is refused (403 through the server) without the
    journal switch a migration makes: nobody but an admin ever has the database to themselves, not for a moment."""
    monkeypatch.setattr(bulk_load, "ALONE_BYTES", 0)
    db = tmp_path / "refused.db"
    url = fresh_db(db)
    before = dump(db)
    seller = Engine.open(url, user="seller01")
    try:
        with clock.frozen(NOW), pytest.raises(PermissionDenied):
            seller.intake.import_csv(history_csv, process=PROCESS, history=True)
    finally:
        seller.close()
    assert journals == [], "the refused import never entered the migration's journal switch"
    assert journal_mode(db) == "wal"
    assert dump(db) == before


KILLED_IMPORT = """
import os, sys, time
from benchmarks.history_data import NOW, PROCESS
from engine import clock
from engine.api import Engine
from engine.store import loading
loading.MIN_ROWS, loading.ALONE_BYTES = 0, 0
loading.PRAGMAS = {"cache_size": -64}  # a tiny page cache: the load's pages reach the database file at once
import engine.intake as intake
import dataclasses
@dataclasses.dataclass
class Small(intake.ImportOptions):
    batch_size: int = 100
intake.ImportOptions = Small
def progress(done, total, rows, rejected):
    if rows >= 200:
        print("written", flush=True)
        time.sleep(600)
admin = Engine.open(sys.argv[1], user="admin")
with clock.frozen(NOW):
    admin.intake.import_csv(sys.argv[2], process=PROCESS, history=True, progress=progress)
"""


def test_a_migration_killed_mid_way_leaves_the_database_as_it_was_and_usable(
        tmp_path: Path, history_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())
    db = tmp_path / "killed.db"
    url = fresh_db(db)
    before, size = dump(db), db.stat().st_size
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, url, str(history_csv)], cwd=root,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "written\n"
        assert Path(f"{db}-journal").exists() and db.stat().st_size > size, "the load is in the file, not a WAL"
        other = Engine.open(f"{url}?timeout=0.2", user="admin")  # the migration has the database for itself
        try:
            with pytest.raises(DatabaseBusy), other.transaction():
                pass
        finally:
            other.close()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert dump(db) == before  # the next opening rolled the load back from the journal
    assert db.stat().st_size == size and not Path(f"{db}-journal").exists()
    report = import_history(url, history_csv)
    assert report["imported"] == DEALS
    assert journal_mode(db) == "wal"
