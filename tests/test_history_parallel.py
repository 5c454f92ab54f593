"""A migration's history import on several cores (engine/intake/history_parallel.py): worker processes check the rows
and build their rows, the import's process writes them in the order of the file. The database, the report and the
rejects must be those of the import in one process; a worker that dies fails the import, which then writes
nothing."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from benchmarks.history_data import NOW, PROCESS, generate
from benchmarks.history_import import fresh_db
from engine import clock, intake
from engine.api import Engine
from engine.errors import LeadflowError, PermissionDenied
from engine.intake import history_parallel
from engine.store import loading
from tests.test_history_bulk_load import dump

DEALS = 600


@dataclasses.dataclass
class SmallBatches(intake.ImportOptions):
    batch_size: int = 100  # six batches over two workers: answers come back out of order


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "ImportOptions", SmallBatches)
    monkeypatch.setattr(loading, "MIN_ROWS", 0)  # the bulk load too, as a migration of a million has it
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The workers the imports start."""
    workers: list[Any] = []
    real = history_parallel._Worker.start

    def start(setup: history_parallel.Setup) -> Any:
        workers.append(real(setup))
        return workers[-1]

    monkeypatch.setattr(history_parallel._Worker, "start", start)
    return workers


def with_bad_rows(tmp_path: Path) -> Path:
    """A generated history with rows every reader must refuse, each for its own reason, spread over the batches."""
    good = tmp_path / "good.csv"
    generate(good, DEALS)
    with good.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    col = {name: k for k, name in enumerate(header)}

    def bad(k: int, **cells: str) -> None:
        for name, value in cells.items():
            rows[k][col[name]] = value

    for k in range(0, len(rows), 7):  # values as a Romanian admin writes them: 35.000 is thirty-five thousand
        value = int(rows[k][col["value"]])
        rows[k][col["value"]] = f"{value // 1000}.{value % 1000:03d}"
    rows[10] = rows[10][:-2]  # a row of the wrong width, refused by the import's own process
    bad(50, external_id="D1")  # a deal twice: the earlier row's id, in another batch
    bad(120, stage="nowhere", status="open", closed_at="", close_reason="")
    bad(230, owner="ghost")
    bad(310, team="Team 9")
    bad(401, status="lost", stage="first_contact", closed_at="2025-01-05T10:00", close_reason="")
    bad(450, created_at="2031-01-01T00:00")
    bad(520, company="", name="", email="", stage="first_contact", status="open", closed_at="", close_reason="")
    path = tmp_path / "history.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def migrate(db: Path, path: Path, monkeypatch: pytest.MonkeyPatch, *, workers: int, language: str | None = None,
            **options: Any) -> Any:
    monkeypatch.setattr(history_parallel, "MIN_ROWS", 0 if workers else 10**12)
    monkeypatch.setattr(history_parallel, "WORKERS", workers or None)
    admin = Engine.open(fresh_db(db), user="admin")
    admin.users.set_language("admin", language)
    try:
        with clock.frozen(NOW):
            return admin.intake.import_csv(path, process=PROCESS, history=True, **options)
    finally:
        admin.close()


def test_the_workers_write_the_database_one_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          started: list[Any]) -> None:
    path = with_bad_rows(tmp_path)
    one, several = tmp_path / "one.db", tmp_path / "several.db"
    told: list[tuple[int, ...]] = []
    expected = migrate(one, path, monkeypatch, workers=0, language="ro", rejects=tmp_path / "one-rejects.csv")
    assert started == []
    got = migrate(several, path, monkeypatch, workers=2, language="ro", rejects=tmp_path / "several-rejects.csv",
                  progress=lambda *told_: told.append(told_))
    assert len(started) == 2
    assert {w.process.returncode for w in started} == {0}, "the workers end when the import does"
    assert expected["rejected"] == 8 and expected["imported"] == DEALS - 8, expected["rejects"]
    assert {**got, "rejects_file": None} == {**expected, "rejects_file": None}  # the refusals, in line order
    assert (tmp_path / "several-rejects.csv").read_bytes() == (tmp_path / "one-rejects.csv").read_bytes()
    want, have = dump(one), dump(several)
    assert have["schema"] == want["schema"]
    assert sum(len(r) for r in want["rows"].values()) > 10 * DEALS
    # the clients' search index (FTS5) is stored in segments that depend on how its rows came in batches (its
    # own segments are not data): it must hold the clients, and answer alike
    segments = {"client_search_data", "client_search_idx"}
    differ = [table for table, rows in want["rows"].items() if have["rows"][table] != rows and table not in segments]
    assert differ == [], differ
    assert searched(several) == searched(one)
    assert told[-1] == (path.stat().st_size, path.stat().st_size, DEALS, 8)
    assert [t[2] for t in told] == sorted(t[2] for t in told) and len(told) > 3, "the progress after every batch"
    assert [t[3] for t in told] == sorted(t[3] for t in told) and told[0][3] < 8, "the refusals of the rows read"
    with contextlib.closing(sqlite3.connect(several)) as conn:  # the workers read numbers as the admin writes them
        assert conn.execute("SELECT min(value_minor) FROM leads").fetchone()[0] >= 1000 * 100


def searched(db: Path) -> list[list[int]]:
    """The clients' search index checked against the clients, and what it finds for a few words."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO client_search(client_search) VALUES ('integrity-check')")
        return [[r[0] for r in conn.execute("SELECT rowid FROM client_search WHERE client_search MATCH ? "
                                            "ORDER BY rowid", (word,))] for word in ("account", "person", "example")]


def test_a_bad_row_with_on_error_abort_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      started: list[Any]) -> None:
    path = with_bad_rows(tmp_path)
    db = tmp_path / "abort.db"
    fresh_db(db)
    before = dump(db)
    report = migrate(db, path, monkeypatch, workers=2, on_error="abort")
    assert len(started) == 2
    assert report["status"] == "aborted" and report["rejected"] == 8
    assert dump(db) == before


def test_a_worker_that_dies_fails_the_import_which_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  started: list[Any]) -> None:
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    db = tmp_path / "killed.db"
    fresh_db(db)
    before = dump(db)

    def kill_one(*_: int) -> None:
        if started[1].process.poll() is None:
            os.kill(started[1].process.pid, signal.SIGKILL)

    with pytest.raises(LeadflowError, match=r"a worker process of the import stopped \(exit code -9\); nothing was "
                                            r"imported"):
        migrate(db, path, monkeypatch, workers=2, progress=kill_one)
    assert dump(db) == before
    assert all(w.process.poll() is not None for w in started), "no worker is left running"


def test_a_worker_whose_code_fails_fails_the_import_with_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   started: list[Any]) -> None:
    """An exception in a worker (a bug) reaches the import with the worker's traceback instead of leaving it waiting;
    the import writes nothing and no worker is left."""
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    db = tmp_path / "failed.db"
    fresh_db(db)
    before = dump(db)
    real_run = history_parallel._run

    def run(*args: Any) -> int:
        args[-1][0].send(("write", 99, ([1], [1])))  # a batch this worker never checked: its code fails
        return real_run(*args)

    monkeypatch.setattr(history_parallel, "_run", run)
    with pytest.raises(RuntimeError, match=r"(?s)a worker process of the import failed:.*KeyError: 99"):
        migrate(db, path, monkeypatch, workers=2)
    assert dump(db) == before
    assert all(w.process.poll() is not None for w in started), "no worker is left running"


@pytest.mark.parametrize("who", ["manager1", "seller01"])
def test_who_may_not_migrate_starts_no_worker_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 started: list[Any], who: str) -> None:
    """A manager or a salesperson is refused a history import before any worker starts or any row is read."""
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    db = tmp_path / "refused.db"
    fresh_db(db)
    before = dump(db)
    monkeypatch.setattr(history_parallel, "MIN_ROWS", 0)
    engine = Engine.open(f"sqlite:///{db}", user=who)
    try:
        with pytest.raises(PermissionDenied, match=f"user '{who}' .* may not import"):
            engine.intake.import_csv(path, process=PROCESS, history=True)
    finally:
        engine.close()
    assert started == []
    assert dump(db) == before


@pytest.mark.parametrize("workers", [0, 2])
def test_a_client_of_an_earlier_batch_is_repeated_not_existing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               workers: int) -> None:
    """The report's ``existing_clients`` are the clients there were before the import; an account whose deals
    span several batches is one new client and its other deals are ``repeated_clients``."""
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    clients = {row["company"] or row["email"] for row in rows}  # the generator's persons each have an e-mail
    report = migrate(tmp_path / "clients.db", path, monkeypatch, workers=workers)
    assert report["imported"] == DEALS
    assert (report["new_clients"], report["existing_clients"], report["repeated_clients"]) == (
        len(clients), 0, DEALS - len(clients))


@pytest.mark.parametrize("program", ["#!/bin/sh\nexit 3\n", "#!/bin/sh\nexec sleep 60\n"])
def test_workers_that_cannot_start_leave_the_import_to_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  started: list[Any], program: str) -> None:
    """An interpreter that is no Python able to run the engine (it exits, or it never answers): the import runs
    in its own process, whole, and no worker is left behind."""
    fake = tmp_path / "not-python"
    fake.write_text(program, encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    monkeypatch.setattr(history_parallel, "START_SECONDS", 2.0)
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    report = migrate(tmp_path / "fallback.db", path, monkeypatch, workers=2)
    assert len(started) == 2, "the workers were tried"
    assert report["status"] == "imported" and report["imported"] == DEALS
    assert all(w.process.poll() is not None for w in started), "no worker is left running"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a migration runs workers on two cores or more")
def test_a_script_without_a_main_guard_imports_on_several_cores(tmp_path: Path) -> None:
    """An integrator's plain script (no ``if __name__ == "__main__"``) is not run again by the workers, as a
    ``multiprocessing`` start would run it; the workers run the same engine as the script, wherever it was
    imported from."""
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    runs = tmp_path / "runs.txt"
    script = tmp_path / "migrate.py"
    script.write_text(textwrap.dedent(f"""
        from pathlib import Path
        from benchmarks.history_data import PROCESS
        from benchmarks.history_import import fresh_db
        from engine.api import Engine
        from engine.intake import history_parallel

        with open({str(runs)!r}, "a") as f:
            f.write("ran\\n")
        history_parallel.MIN_ROWS = 0
        started = []
        real = history_parallel._Worker.start
        history_parallel._Worker.start = lambda setup: started.append(real(setup)) or started[-1]
        admin = Engine.open(fresh_db(Path({str(tmp_path / "script.db")!r})), user="admin")
        report = admin.intake.import_csv({str(path)!r}, process=PROCESS, history=True)
        print(report["status"], report["imported"], report["rejected"], len(started))
    """), encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root), "LEADFLOW_NOW": NOW.isoformat()})
    assert done.returncode == 0, done.stderr
    cores = len(os.sched_getaffinity(0))
    assert done.stdout.split() == ["imported", str(DEALS), "0", str(min(cores, history_parallel.MOST_WORKERS))]
    assert runs.read_text() == "ran\n"
