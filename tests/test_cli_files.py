"""Commands that write files never destroy one: ``demo`` only creates a new database or rebuilds an earlier
demo; ``export --output``, ``board --html``, ``report ... --chart`` and ``import --rejects`` replace an existing
file only with ``--force``, and a SQLite database never, not even with it (issue 15)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.files import is_demo_database, is_sqlite_database
from tests.conftest import REJECTS_FILE, CliDatabase, check_error, cli_floor, leadflow, ok, snapshot

FLOOR = [("marta", "manager", "north"), ("anna", "salesperson", "north")]


@pytest.fixture
def url(cli_db: CliDatabase) -> str:
    url = cli_db.template("cli_files", cli_floor(FLOOR))
    ok(url, "anna", "lead add --process photovoltaics --name 'Jan Kowalski' --phone '+48 600 100 200' --value 1000")
    return url


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def a_database(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE precious (x)")
    con.execute("INSERT INTO precious VALUES ('the team''s data')")
    con.commit()
    con.close()
    return path


def untouched(path: Path, url: str, run: Callable[[], object]) -> None:
    """``run`` leaves the file's bytes and the database's rows as they were."""
    before, rows = digest(path), snapshot(url)
    run()
    assert digest(path) == before, f"{path} was changed"
    assert snapshot(url) == rows


#: Every command that writes a file: its name and its arguments up to the file, the option that names it last.
WRITERS = [
    ("export", ["export", "--output"]),
    ("board", ["board", "--html"]),
    pytest.param("import", ["import", "{csv}", "--process", "photovoltaics", "--rejects"],
                 marks=pytest.mark.local_only(REJECTS_FILE)),
    ("chart", ["report", "funnel", "--chart"]),
]


def command(args: list[str], target: Path, tmp_path: Path) -> list[str]:
    csv_file = tmp_path / "in.csv"
    csv_file.write_text("name,email\nBad Row,not-an-address\n", encoding="utf-8")
    return [a.replace("{csv}", str(csv_file)) for a in args] + [str(target)]


@pytest.mark.parametrize(("name", "args"), WRITERS, ids=["export", "board", "import", "chart"])
def test_an_existing_file_is_replaced_only_with_force(url: str, tmp_path: Path, name: str,
                                                     args: list[str]) -> None:
    target = tmp_path / ("out.png" if name == "chart" else "out.txt")
    target.write_bytes(b"my own notes\n")
    untouched(target, url, lambda: check_error(leadflow(url, "marta", command(args, target, tmp_path)), 1))
    line = check_error(leadflow(url, "marta", command(args, target, tmp_path)), 1)
    assert line == f"Error: {args[-1]} '{target}' exists; add --force to replace it, or choose another file name"
    result = leadflow(url, "marta", [*command(args, target, tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() != b"my own notes\n"


@pytest.mark.parametrize(("name", "args"), WRITERS, ids=["export", "board", "import", "chart"])
def test_a_database_is_never_written_over_even_with_force(url: str, tmp_path: Path, name: str,
                                                          args: list[str]) -> None:
    other = a_database(tmp_path / ("team.png" if name == "chart" else "team.db"))
    live = Path(url.removeprefix("sqlite:///"))
    for target in (other, live) if url.startswith("sqlite:") else (other,):  # PostgreSQL's database is no file
        for force in ([], ["--force"]):
            untouched(target, url, lambda t=target, f=force: check_error(  # type: ignore[misc]
                leadflow(url, "marta", [*command(args, t, tmp_path), *f]), 1))
        line = check_error(leadflow(url, "marta", [*command(args, target, tmp_path), "--force"]), 1)
        assert "is a SQLite database; leadflow never writes over a database, not even with --force" in line
    assert sqlite3.connect(other).execute("SELECT x FROM precious").fetchall() == [("the team's data",)]


def test_a_file_with_a_write_ahead_log_beside_it_is_a_database(tmp_path: Path) -> None:
    target = tmp_path / "live.db"
    target.write_bytes(b"")  # a database whose pages are all still in its -wal file
    (tmp_path / "live.db-wal").write_bytes(b"\x37\x7f\x06\x82")
    assert is_sqlite_database(target)


@pytest.mark.local_only("demo works on a local database only (LOCAL_COMMANDS): it makes a SQLite file")
def test_demo_refuses_a_database_and_any_other_file(url: str, tmp_path: Path) -> None:
    live = Path(url.removeprefix("sqlite:///"))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n", encoding="utf-8")
    other = a_database(tmp_path / "other.db")
    for target, kind in ((live, "a leadflow or other SQLite database"), (other, "a leadflow or other SQLite database"),
                         (notes, "a file")):
        untouched(target, url, lambda t=target: check_error(leadflow(None, None, ["demo", "--db", str(t)]), 1))
        line = check_error(leadflow(None, None, ["demo", "--db", str(target)]), 1)
        assert line == (f"Error: --db '{target}' exists and is {kind}, not a demo database; the demo only creates "
                        "a new file or rebuilds an earlier demo: choose another file name")
    assert not is_demo_database(live)


@pytest.mark.slow  # builds the demo twice
def test_demo_marks_its_database_and_rebuilds_only_that(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    ok(None, None, ["demo", "--db", str(path)])
    assert is_demo_database(path)
    url = f"sqlite:///{path}"
    first = ok(url, "anna", "lead list --json").stdout
    ok(url, "anna", "lead add --process photovoltaics --name 'Added Later'")
    ok(None, None, ["demo", "--db", str(path)])  # an earlier demo is rebuilt, as it was
    assert is_demo_database(path)
    assert ok(url, "anna", "lead list --json").stdout == first
