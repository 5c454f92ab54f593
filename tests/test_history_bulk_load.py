"""A large history import into a (nearly) empty SQLite database loads the big tables without their secondary indexes
and creates them again at its end (engine/store/loading.py): the database it leaves must be, row for row and
index for index, the one the import writes with every index in place; an import that fails leaves the indexes and
the connection as they were."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from benchmarks.history_data import NOW, PROCESS, generate
from benchmarks.history_import import fresh_db
from engine import clock, intake, store
from engine.api import Engine
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
    finally:
        admin.close()
    assert report["status"] == "imported" and report["imported"] == DEALS, report
    assert begun == ([True] if bulk else []), "the bulk load must begin exactly when it is worth it"
    return report


def dump(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
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
    pragmas: list[tuple[Any, ...]] = []
    try:
        with clock.frozen(NOW), pytest.raises(RuntimeError, match="disk on fire"):
            admin.intake.import_csv(history_csv, process=PROCESS, history=True)
        with admin.transaction() as conn:
            driver = conn.connection.dbapi_connection
            assert driver is not None
            pragmas = [driver.execute(f"PRAGMA {name}").fetchone() for name in ("cache_size",)]
    finally:
        admin.close()
    assert calls[0] == 2
    assert pragmas == [(-65536,)]
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
