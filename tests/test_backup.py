"""``leadflow backup`` and ``restore`` (issue 15): a backup taken while writers commit holds every write acknowledged
before it started; a restore goes into an empty database only, is verified, and leaves nothing when it fails.
On SQLite and on PostgreSQL (pg_dump and pg_restore, which CI's postgresql package installs)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.api import Engine
from engine.errors import LeadflowError
from tests.conftest import PostgresDatabases, Team, check_error, leadflow, ok, refused, snapshot


@pytest.fixture
def empty_db(team: Team, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another database of the same kind as ``team``'s, with nothing in it: where a restore goes."""
    if team.url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored.db'}"
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed")
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    request.addfinalizer(lambda: databases.drop(url))
    return url


def work(team: Team, n: int = 3) -> list[int]:
    anna, marta = team.as_("anna"), team.as_("marta")
    ids = []
    for i in range(n):
        lead = anna.leads.add(process="photovoltaics", name=f"Client {i}", phone=f"+48 600 100 20{i}")
        ids.append(int(lead["id"]))
    anna.leads.complete_task(ids[0], "record_contact")
    anna.leads.advance(ids[0])
    marta.leads.close(ids[1], "bad_timing")
    marta.leads.reopen(ids[1])
    return ids


def tables(url: str) -> set[str]:
    db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(db).get_table_names())
    finally:
        db.dispose()


def test_a_backup_restores_into_an_empty_database_as_it_was(team: Team, empty_db: str, tmp_path: Path) -> None:
    work(team)
    file = tmp_path / "team.backup"
    report = team.admin.admin.backup(file)
    assert report["bytes"] == file.stat().st_size > 0
    restored = ok(empty_db, "root", ["restore", str(file), "--json"])
    assert '"leads": 3' in restored.stdout
    assert snapshot(empty_db) == snapshot(team.url)
    assert ok(empty_db, "root", "check").stdout.endswith("everything agrees.\n")


def test_a_backup_while_writers_commit_holds_every_acknowledged_write(team: Team, empty_db: str,
                                                                      tmp_path: Path) -> None:
    """Four writers (each an engine of its own, as four programs) add leads; the backup starts once some are
    acknowledged, and the restored database has every lead whose add returned before the backup started."""
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        eng = Engine.open(team.url, user="anna")
        try:
            n = 0
            while not stop.is_set():
                lead = eng.leads.add(process="photovoltaics", name=f"Writer {i} lead {n}")
                with lock:
                    acknowledged.append(int(lead["id"]))
                n += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        with lock:
            before = set(acknowledged)
        team.admin.admin.backup(tmp_path / "live.backup")
        time.sleep(0.2)  # the writers go on after the backup
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert len(before) >= 40
    assert len(acknowledged) > len(before)
    ok(empty_db, "root", ["restore", str(tmp_path / "live.backup")])
    restored = Engine.open(empty_db, user="root")
    try:
        ids = {lead["id"] for lead in restored.leads.list()}
        assert before <= ids
        assert restored.admin.check()["ok"]
    finally:
        restored.close()


def test_restore_refuses_a_database_with_data(team: Team, tmp_path: Path) -> None:
    work(team)
    file = tmp_path / "team.backup"
    team.admin.admin.backup(file)
    assert refused(team.url, "root", ["restore", str(file)]).startswith(
        "Error: the database to restore into is not empty (it has clients, leads, events, process_versions")


def test_a_restore_that_fails_verification_leaves_the_target_empty(team: Team, empty_db: str,
                                                                   tmp_path: Path) -> None:
    ids = work(team)
    file = tmp_path / "damaged.backup"
    if team.url.startswith("sqlite"):
        team.admin.admin.backup(file)
        con = sqlite3.connect(file)
        con.execute("UPDATE leads SET stage = 'close_contract' WHERE id = ?", (ids[0],))
        con.commit()
        con.close()
    else:  # the damage is in the database backed up
        db = sa.create_engine(team.url, poolclass=sa.pool.NullPool)
        with db.begin() as conn:
            conn.execute(sa.text("UPDATE leads SET stage = 'close_contract' WHERE id = :id"), {"id": ids[0]})
        db.dispose()
        team.admin.admin.backup(file)
    line = check_error(leadflow(empty_db, "root", ["restore", str(file)]), 1)
    assert line.startswith("Error: the backup is not sound: 1 differences between leads and their event log, the "
                           f"first: lead {ids[0]}: stage is \"close_contract\"")
    assert line.endswith("; nothing was restored")
    assert tables(empty_db) <= {"alembic_version"} or not tables(empty_db)
    assert not {"leads", "events"} & tables(empty_db)


def test_restore_refuses_what_is_not_a_backup_and_a_backup_of_the_other_database(team: Team, empty_db: str,
                                                                                  tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n", encoding="utf-8")
    assert check_error(leadflow(empty_db, "root", ["restore", str(notes)]), 1) == (
        f"Error: '{notes}' is neither a SQLite backup nor a pg_dump file (custom format) that 'leadflow backup' "
        "writes")
    other = tmp_path / ("other.dump" if team.url.startswith("sqlite") else "other.db")
    if team.url.startswith("sqlite"):
        other.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 100)
        assert "is a pg_dump backup; it restores into a PostgreSQL database, and this one is sqlite" in check_error(
            leadflow(empty_db, "root", ["restore", str(other)]), 1)
    else:
        sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
        assert "is a sqlite backup; it restores into a SQLite database, and this one is postgresql" in check_error(
            leadflow(empty_db, "root", ["restore", str(other)]), 1)
    assert not {"leads", "events"} & tables(empty_db)


def test_backup_is_for_admins_and_never_replaces_a_file(team: Team, tmp_path: Path) -> None:
    file = tmp_path / "b.backup"
    assert refused(team.url, "marta", ["backup", str(file)]).startswith(
        "Error: user 'marta' (manager, team north) may not back up the database")
    assert not file.exists()
    file.write_bytes(b"an older backup")
    assert check_error(leadflow(team.url, "root", ["backup", str(file)]), 1) == (
        f"Error: FILE '{file}' exists; it is never replaced: choose another file name")
    assert file.read_bytes() == b"an older backup"
    assert not list(tmp_path.glob(".b.backup.*"))


def test_without_pg_dump_the_backup_names_the_package(team: Team, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if team.url.startswith("sqlite"):
        pytest.skip("SQLite needs no program")
    real: Callable[..., str | None] = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name.startswith("pg_") else real(name))
    with pytest.raises(LeadflowError, match=r"^pg_dump is not installed \(or not on PATH\); it comes with the "
                                            r"package postgresql-client"):
        team.admin.admin.backup(tmp_path / "x.dump")
    assert list(tmp_path.iterdir()) == []


def test_only_an_admin_of_an_initialised_target_restores_into_it(team: Team, empty_db: str, tmp_path: Path) -> None:
    """An initialised target holding only its first admin is empty enough to restore into, but only that admin
    may: anyone else is refused and the target stays as it was."""
    work(team)
    file = tmp_path / "team.backup"
    team.admin.admin.backup(file)
    target = Engine.open(empty_db, user="root")
    target.init()
    target.close()
    # refused() also proves the target unchanged (every table's rows before and after)
    assert refused(empty_db, "mallory", ["restore", str(file)]).startswith("Error: user 'mallory' is not registered")
