"""The first day of an admin: no database made by mistake, the shipped processes loaded by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from engine import paths
from engine.api import Engine
from engine.errors import NotFoundError
from tests.conftest import ROOT, TEST_NOW, check_error, js, leadflow, ok, refused

SCRIPT = shutil.which("leadflow", path=str(Path(sys.executable).parent))


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real ``leadflow`` process started in ``cwd`` (relative database URLs resolve there)."""
    assert SCRIPT is not None, "the leadflow script is not installed in this virtualenv"
    full = {**os.environ, "LEADFLOW_NOW": TEST_NOW, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=full, capture_output=True, text=True, check=False,
                          timeout=120)


# -- no command but init creates a database -------------------------------------------------------------


@pytest.mark.parametrize("command", [["lead", "list"], ["task", "list"], ["board"], ["user", "list"],
                                     ["process", "list"], ["process", "load", "--shipped"], ["serve", "--port", "1"],
                                     ["user", "add", "anna", "--role", "salesperson"]])
def test_a_command_in_another_folder_creates_no_database_and_names_the_file(tmp_path: Path,
                                                                             command: list[str]) -> None:
    proc = run(command, tmp_path, {"LEADFLOW_DB": "sqlite:///team.db", "LEADFLOW_USER": "anna"})
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 + (command[0] == "serve")  # serve announces itself first
    assert proc.stderr.splitlines(keepends=True)[-1] == (
        f"Error: no leadflow database at {tmp_path / 'team.db'} (database URL sqlite:///team.db); "
        "'leadflow init' creates it there, or point --db or LEADFLOW_DB at an existing one\n")
    assert list(tmp_path.iterdir()) == []


def test_init_creates_the_database_where_the_url_says(tmp_path: Path) -> None:
    proc = run(["--db", "sqlite:///team.db", "init"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "team.db").is_file()
    assert run(["--db", "sqlite:///team.db", "user", "list"], tmp_path).returncode == 0


def test_the_default_database_is_not_created_either(tmp_path: Path) -> None:
    proc = run(["lead", "list"], tmp_path, {"LEADFLOW_USER": "anna"})
    assert proc.returncode == 1
    assert f"no leadflow database at {tmp_path / 'leadflow.db'}" in proc.stderr
    assert not (tmp_path / "leadflow.db").exists()


@pytest.mark.parametrize("command", [["whoami"], ["task", "list"]])
def test_without_a_login_the_missing_default_database_points_to_the_team_server_too(tmp_path: Path,
                                                                                   command: list[str]) -> None:
    """After 'leadflow logout' (or a failed login) a team member has neither a login nor a database: the message
    names 'leadflow login URL' as well as 'leadflow init', not only a local database."""
    env = {"LEADFLOW_USER": "anna", "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONPATH": str(ROOT)}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "cli.main", *command], cwd=work,
                          env={k: v for k, v in {**os.environ, "NO_COLOR": "1", **env}.items()
                               if k not in ("LEADFLOW_DB", "LEADFLOW_SERVER", "LEADFLOW_TOKEN")},
                          capture_output=True, text=True, check=False, timeout=120)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        f"Error: no leadflow database at {work / 'leadflow.db'} (database URL sqlite:///leadflow.db), and no team "
        "server: 'leadflow login URL' works through your team's server; 'leadflow init' creates a local database "
        "there, or point --db or LEADFLOW_DB at an existing one\n")
    assert list(work.iterdir()) == []
    # a database named on purpose keeps the message about that database (the test above)
    named = subprocess.run([sys.executable, "-m", "cli.main", "--db", "sqlite:///team.db", *command], cwd=work,
                           env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=120)
    assert "leadflow login" not in named.stderr and "no leadflow database at" in named.stderr


def test_the_python_api_refuses_a_missing_file_only_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    with pytest.raises(NotFoundError, match=r"no leadflow database at .*api\.db"):
        Engine.open(url, user="root", create=False)
    assert not (tmp_path / "api.db").exists()
    eng = Engine.open(url, user="root")  # the default, as before: init makes the file
    try:
        eng.init()
    finally:
        eng.close()
    Engine.open(url, user="root", create=False).close()


def test_a_database_without_the_schema_is_left_untouched(db_url: str) -> None:
    """An existing but empty database (a PostgreSQL one, an empty SQLite file) says to run init, and stays empty."""
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    for command in ("lead list", "task list", "process load --shipped"):
        line = check_error(leadflow(db_url, "root", command), 1)
        assert line == "Error: the database has no leadflow schema; run 'leadflow init' first"
    db = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sa.inspect(db).get_table_names() == []
    finally:
        db.dispose()


# -- the shipped processes by name ----------------------------------------------------------------------

SHIPPED = sorted(paths.shipped_processes())


def test_the_shipped_processes_are_the_files_of_the_processes_folder() -> None:
    assert sorted(f.stem for f in paths.processes_dir().glob("*.yaml")) == SHIPPED
    assert {"photovoltaics", "mortgage"} <= set(SHIPPED)


def test_init_says_to_load_the_shipped_processes(db_url: str) -> None:
    out = ok(db_url, "root", "init").stdout
    assert out.endswith("You (root) are its first admin. Next: leadflow process load --shipped\n")


def test_load_by_name_and_all_shipped(db_url: str) -> None:
    ok(db_url, "root", "init")
    loaded = js(db_url, "root", "process load photovoltaics mortgage")
    assert [(r["process"], r["version"], r["created"]) for r in loaded] == [
        ("photovoltaics", 1, True), ("mortgage", 1, True)]
    again = js(db_url, "root", "process load --shipped")
    assert [(r["process"], r["created"]) for r in again] == [
        (name, name not in ("photovoltaics", "mortgage")) for name in SHIPPED]
    assert sorted(r["process"] for r in js(db_url, "root", "process list")) == SHIPPED


def test_an_unknown_name_is_refused_with_a_suggestion_and_loads_nothing(db_url: str) -> None:
    ok(db_url, "root", "init")
    line = refused(db_url, "root", "process load mortgage photovoltaic")
    assert line == ("Error: no process file or shipped process named 'photovoltaic'; did you mean 'photovoltaics'? "
                    f"shipped: {', '.join(SHIPPED)}")
    assert js(db_url, "root", "process list") == []


def test_load_without_files_or_shipped_is_a_usage_error(db_url: str) -> None:
    ok(db_url, "root", "init")
    line = check_error(leadflow(db_url, "root", "process load"), 2)
    assert line == "Error: name process files, folders or shipped processes, or give --shipped"


def test_validate_and_show_take_the_shipped_names(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "validate", "--shipped", "mortgage"])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"{len(SHIPPED)} files valid, 0 invalid\n"  # mortgage is checked once
    result = runner.invoke(cli, ["process", "validate", "mortage"])
    assert result.exit_code == 1
    assert "named 'mortage'; did you mean 'mortgage'? shipped: " in result.stderr
    assert runner.invoke(cli, ["process", "show", "mortgage"]).exit_code == 0


def test_a_file_in_the_current_folder_wins_over_the_shipped_process(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (paths.processes_dir() / "photovoltaics.yaml").read_text(encoding="utf-8")
    (tmp_path / "photovoltaics").write_text(text.replace("title: {en: Photovoltaic installations",
                                                         "title: {en: Our own photovoltaics"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["process", "show", "photovoltaics"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Our own photovoltaics\n")
    url = f"sqlite:///{tmp_path / 'own.db'}"
    ok(url, "root", "init")
    ok(url, "root", "process load photovoltaics")
    assert js(url, "root", "process list")[0]["title"] == "Our own photovoltaics"


def test_every_python_package_is_in_the_wheel() -> None:
    """A package missing from pyproject's list is missing from a plain install (engine.services was)."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for top in ("engine", "cli")
             for init in (ROOT / top).rglob("__init__.py")}
    assert found - listed == set()


@pytest.mark.slow
def test_a_plain_pip_install_loads_the_shipped_processes(tmp_path: Path) -> None:
    """``pip install .`` (not editable) into a fresh virtualenv, run from a folder far from the checkout."""
    source = tmp_path / "src"
    for name in ("engine", "cli", "processes", "schemas"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next(venv.glob("lib/python*/site-packages"))
    # the dependencies come from this test's environment, read-only; the editable leadflow installed there
    # stays out (a folder named in a .pth file is put on the path, but its own .pth files do not run)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(source)],
                         capture_output=True, text=True, check=False, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "LEADFLOW_DB": "sqlite:///team.db", "NO_COLOR": "1", "LEADFLOW_USER": "root"}

    def installed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "leadflow"), *args], cwd=work, env=env, capture_output=True,
                              text=True, check=False, timeout=120)

    code = "from engine import paths; print(paths.processes_dir())"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=work, env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site), where
    init = installed("init")
    assert init.returncode == 0, init.stderr
    assert "Next: leadflow process load --shipped" in init.stdout
    assert installed("process", "validate", "--shipped").returncode == 0
    load = installed("process", "load", "photovoltaics", "mortgage")
    assert load.stdout == "photovoltaics: version 1 loaded\nmortgage: version 1 loaded\n", load.stderr
    load = installed("process", "load", "--shipped")
    assert load.returncode == 0, load.stderr
    assert load.stdout.count(" loaded\n") == len(SHIPPED) - 2
    assert installed("process", "show", "leasing").returncode == 0
    # the compiled catalogues are in the package (docs/i18n.md): help and refusals speak Polish
    polish = subprocess.run([str(venv / "bin" / "leadflow"), "lead", "advance", "--help"], cwd=work,
                            env={**env, "LEADFLOW_LANG": "pl"}, capture_output=True, text=True, check=False,
                            timeout=120)
    assert "Przesuń leady do następnego etapu" in " ".join(polish.stdout.split()), polish.stderr
