"""Shared pytest fixtures."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from engine.store import copy_sqlite_files, remove_sqlite_files
from tests.remote import server_for

ROOT = Path(__file__).resolve().parent.parent
PROCESSES_DIR = ROOT / "processes"


@pytest.fixture
def processes_dir() -> Path:
    """The shipped process files of this checkout."""
    return PROCESSES_DIR


# -- databases ----------------------------------------------------------------------------------
# Every engine test runs on SQLite and on a real PostgreSQL server (LEADFLOW_TEST_PG_URL, started by
# .ci/run). Locally without PostgreSQL the postgres half is skipped; in CI it must be there.
#
# A database that many tests start from (the ``team`` fixture's, the CLI tests' own) is built once per
# session and copied for each test: a SQLite file by copying the file, a PostgreSQL database by
# ``CREATE DATABASE ... TEMPLATE`` (a server-side file copy, ~20 ms; the role needs CREATEDB). Each test
# gets a database of its own that nothing else touches, so tests that open their own connections, run
# threads (``at_once``) or real processes, or change the schema, see a fresh database as before.
PG_URL = os.environ.get("LEADFLOW_TEST_PG_URL")
TEST_NOW = "2026-03-02T09:00:00"  # a Monday morning
T = TypeVar("T")


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own database, user or clock."""
    # ... nor the developer's language: English unless a test asks for another (engine/i18n.py)
    for name in ("LEADFLOW_DB", "LEADFLOW_USER", "LEADFLOW_TEMPLATES", "LEADFLOW_SMTP_CONFIG", "LEADFLOW_LANG",
                 "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("LEADFLOW_SMTP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADFLOW_TZ", "Europe/Warsaw")
    monkeypatch.setenv("LEADFLOW_NOW", TEST_NOW)
    monkeypatch.setenv("LEADFLOW_TEST_DATABASE", "1")  # init makes test databases: they honour LEADFLOW_NOW


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from engine import i18n

    clean_env(monkeypatch)
    yield
    i18n.reset()  # the last acting user's language does not outlive the test


class PostgresDatabases:
    """The session's databases on the server of LEADFLOW_TEST_PG_URL, named ``leadflow_t<pid>_...`` so that
    two test runs on one server never touch each other's; every one is dropped when the session ends."""

    def __init__(self, url: str):
        self.url = url
        self.prefix = f"leadflow_t{os.getpid()}_"
        self.count = 0
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with self.admin.connect() as conn:
            if not conn.execute(sa.text("SELECT rolcreatedb OR rolsuper FROM pg_roles "
                                        "WHERE rolname = current_user")).scalar_one():
                pytest.fail(f"the role of LEADFLOW_TEST_PG_URL ({sa.engine.make_url(url).username}) needs CREATEDB: "
                            "the tests copy a template database for each test")
        self.drop_all()  # left by an earlier run whose process had this id

    def url_of(self, name: str) -> str:
        return sa.engine.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None, name: str | None = None) -> str:
        """A new database (empty, or a copy of ``template``); returns its URL."""
        if name is None:
            self.count += 1
            name = f"{self.prefix}{self.count}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url_of(name)

    def drop(self, url: str) -> None:
        name = sa.engine.make_url(url).database
        for attempt in range(3):
            try:
                with self.admin.connect() as conn:  # FORCE: a connection a test left open does not keep it alive
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except sa.exc.ProgrammingError:
                # an autovacuum worker in the database is a superuser's process, which FORCE may not end without
                # pg_signal_backend (.ci/run grants it); it finishes in a moment on a test's small database
                if attempt == 2:
                    raise
                time.sleep(1)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"),
                                 {"prefix": self.prefix}).scalars().all()
        for name in names:
            self.drop(self.url_of(name))


class Templates:
    """Databases built once per session, copied for every test that asks.

    ``copy(name, build, url)`` fills the database at ``url`` (a SQLite file, or a PostgreSQL database of
    ``PostgresDatabases``) with a copy of the template called ``name``, which ``build(template_url)`` made
    on the same kind of database the first time it was asked for (under the tests' clean environment), and
    returns what ``build`` returned then (such as the ids of the leads it wrote)."""

    def __init__(self, folder: Path, postgres: PostgresDatabases | None):
        self.folder = folder
        self.postgres = postgres
        self.built: dict[tuple[str, str], tuple[str, Any]] = {}

    def _template(self, name: str, build: Callable[[str], T], dialect: str) -> tuple[str, T]:
        if (name, dialect) not in self.built:
            if dialect == "sqlite":
                url = f"sqlite:///{self.folder / f'{name}.db'}"
                remove_sqlite_files(self.folder / f"{name}.db")  # a build that failed half way
            else:
                assert self.postgres is not None
                url = self.postgres.url_of(f"{self.postgres.prefix}template_{name}")
                self.postgres.drop(url)
                self.postgres.create(name=sa.engine.make_url(url).database)
            with pytest.MonkeyPatch.context() as monkeypatch:
                clean_env(monkeypatch)
                value = build(url)
            self.built[name, dialect] = (url, value)
        return self.built[name, dialect]  # type: ignore[return-value]

    def copy(self, name: str, build: Callable[[str], T], url: str) -> T:
        target = sa.engine.make_url(url)
        template, value = self._template(name, build, target.get_backend_name())
        if target.get_backend_name() == "sqlite":
            assert target.database is not None
            copy_sqlite_files(Path(sa.engine.make_url(template).database or ""), Path(target.database))
        else:
            assert self.postgres is not None
            self.postgres.drop(url)
            self.postgres.create(template=sa.engine.make_url(template).database, name=target.database)
        return value

    def sqlite(self, name: str, build: Callable[[str], object], folder: Path) -> str:
        """A copy of the template ``name`` as the SQLite file ``folder``/leadflow.db; returns its URL."""
        url = f"sqlite:///{folder / 'leadflow.db'}"
        self.copy(name, build, url)
        return url


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if not PG_URL:
        yield None
        return
    databases = PostgresDatabases(PG_URL)
    yield databases
    databases.drop_all()
    databases.admin.dispose()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory, postgres_databases: PostgresDatabases | None) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"), postgres_databases)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the test's own: a SQLite file, or a database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leadflow.db'}"
        return
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: LEADFLOW_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server: set LEADFLOW_TEST_PG_URL to run the postgres half")
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'leadflow.db'}"


USERS = [
    ("marta", "manager", "north"),
    ("anna", "salesperson", "north"),
    ("piotr", "salesperson", "north"),
    ("radu", "manager", "south"),
    ("ioana", "salesperson", "south"),
    ("olga", "analyst", "north"),
    ("tomasz", "technician", None),
]


@dataclass
class Team:
    """An initialised database with the shipped processes loaded and a two-team sales floor."""

    url: str
    admin: Any

    def as_(self, name: str) -> Any:
        return self.admin.as_user(name)


EXTRAS = ("  - {id: extras, label: {en: Extras wanted, pl: Dodatki do instalacji, ro: Extra dorite}, type: choices,\n"
          "     options: [battery, heat_pump, charger],\n"
          "     option_labels: {battery: {en: Battery storage, pl: Magazyn energii, ro: Baterie de stocare},\n"
          "                     heat_pump: {en: Heat pump, pl: Pompa ciepła, ro: Pompă de căldură},\n"
          "                     charger: {en: EV charger, pl: Ładowarka do auta, ro: Încărcător auto}}}\n")


def processes_with_extras(folder: Path) -> Path:
    """A copy of the shipped processes (and their mail templates), photovoltaics with the ``extras`` field, a
    ``choices`` one (no shipped process has one: docs/process-format.md says why)."""
    shutil.copytree(PROCESSES_DIR, folder)
    pv = folder / "photovoltaics.yaml"
    text = pv.read_text(encoding="utf-8")
    assert "\nfields:\n" in text
    pv.write_text(text.replace("\nfields:\n", f"\nfields:\n{EXTRAS}", 1), encoding="utf-8")
    return folder


def build_team(url: str, processes_dir: Path = PROCESSES_DIR) -> None:
    """``team``'s database: the schema, every process file of ``processes_dir`` and the USERS."""
    from engine.api import Engine

    admin = Engine.open(url, user="root")
    try:
        admin.init()
        for path in sorted(processes_dir.glob("*.yaml")):
            admin.load_process(path)
        for name, role, team_name in USERS:
            admin.add_user(name, role, team_name)
    finally:
        admin.close()


@pytest.fixture
def team(db_url: str, processes_dir: Path, templates: Templates) -> Iterator[Team]:
    """A copy of the session's team database (``build_team``), on each database of ``db_url``."""
    from engine.api import Engine

    name = "team" if processes_dir == PROCESSES_DIR else f"team_{zlib.crc32(bytes(processes_dir)):08x}"
    templates.copy(name, lambda url: build_team(url, processes_dir), db_url)
    admin = Engine.open(db_url, user="root")
    yield Team(db_url, admin)
    admin.close()


def refill(team: Team, templates: Templates, name: str, build: Callable[[Team], T]) -> T:
    """Replace ``team``'s database with a copy of the template ``name``: the team database after
    ``build(team)`` wrote a history into it, once per session; returns what ``build`` returned."""
    from engine.api import Engine

    def make(url: str) -> T:
        build_team(url)
        built = Team(url, Engine.open(url, user="root"))
        try:
            return build(built)
        finally:
            built.admin.close()

    team.admin.close()  # its connections; the next call opens new ones, to the copy
    return templates.copy(name, make, team.url)


# -- the CLI ----------------------------------------------------------------------------------------
# Every CLI test runs commands through these (docs/cli.md's contract): errors on stderr as one
# ``Error: ...`` line, exit 1 for a refused or invalid action, 2 for bad usage, 0 on success, never a
# traceback, and a refused command changes nothing. Commands are written as a shell would see them
# (``"lead set 1 roof_type=flat"``, split with shlex), or as a list of arguments when an argument holds
# what a shell line cannot (control characters).

Command = str | list[str]
# Rich reads these; unset them so tables are plain and unfolded whatever the developer's shell sets.
PLAIN_OUTPUT = {"COLUMNS": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "LEADFLOW_DEBUG": None}


@pytest.fixture
def runner() -> CliRunner:
    """click's test runner, for tests that invoke ``cli`` with arguments of their own."""
    return CliRunner()


def argv(command: Command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def leadflow(url: str | None, user: str | None, command: Command, now: str = TEST_NOW,
             input: str | None = None) -> Result:
    """``leadflow COMMAND`` with LEADFLOW_DB=url and LEADFLOW_USER=user (None: unset) at the instant ``now``, with
    ``input`` on standard input; in remote mode (``cli_db``) through the team server that serves ``url``, as
    ``user`` logged in there."""
    from cli.main import cli

    server = server_for(url) if url is not None else None
    if server is not None:
        return server.invoke(user, command, now, input)  # type: ignore[no-any-return]
    env = {"LEADFLOW_DB": url, "LEADFLOW_USER": user, "LEADFLOW_NOW": now, **PLAIN_OUTPUT}
    # catch_exceptions=False: an exception escaping the CLI (a traceback for the user) fails the test.
    return CliRunner().invoke(cli, argv(command), env=env, input=input, catch_exceptions=False,
                              prog_name="leadflow")


def ok(url: str | None, user: str | None, command: Command, now: str = TEST_NOW) -> Result:
    """A command that must succeed: exit 0 and nothing on stderr."""
    result = leadflow(url, user, command, now)
    assert result.exit_code == 0, f"leadflow {command}: exit {result.exit_code}\n{result.output}"
    assert result.stderr == "", result.stderr
    return result


def printed(url: str | None, user: str | None, command: Command, now: str = TEST_NOW) -> str:
    """What a command that must succeed prints on stdout."""
    return ok(url, user, command, now).stdout


def js(url: str | None, user: str | None, command: Command, now: str = TEST_NOW) -> Any:
    """The JSON a command prints with --json (nothing else is on stdout)."""
    return json.loads(printed(url, user, [*argv(command), "--json"], now))


def _click_words(message: str) -> tuple[str, ...]:
    """click's word ``message`` (up to its placeholder) in every language: an error's line starts with one."""
    from engine import i18n

    return tuple(i18n.translations(code).gettext(message).split("{")[0] for code in i18n.LANGUAGES)


_CLICK_WORDS = {"Error: {message}": _click_words("Error: {message}"), "Usage:": _click_words("Usage:")}


def check_error(result: Result, code: int, *, usage: bool = True) -> str:
    """Exit ``code``, stdout empty, one ``Error: ...`` line (``Błąd: ...`` in Polish...) on stderr, no traceback;
    returns that line.
    A usage error (exit 2) shows the usage first, unless ``usage`` is False: click has none to show when
    parsing fails before it knows the command."""
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{result.output}"
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith(_CLICK_WORDS["Error: {message}"])]
    assert len(errors) == 1, result.stderr
    if code == 1:
        assert result.stderr == errors[0] + "\n", result.stderr  # the whole of stderr is that one line
    else:  # click's usage errors: the usage and a hint, then the error
        assert (result.stderr.startswith(tuple(f"{usage_} leadflow " for usage_ in _CLICK_WORDS["Usage:"])) if usage
                else result.stderr == errors[0] + "\n")
        assert result.stderr.endswith(errors[0] + "\n")
    return errors[0]


def refused(url: str, user: str | None, command: Command, now: str = TEST_NOW, code: int = 1, *,
            usage: bool = True) -> str:
    """A command that must be refused: the error contract holds and the database is unchanged."""
    server = server_for(url)
    if server is not None:
        server.login(user)  # before the snapshot: a first login writes a password and a token
    before = snapshot(url)
    line = check_error(leadflow(url, user, command, now), code, usage=usage)
    assert snapshot(url) == before, f"leadflow {command} was refused but changed the database"
    return line


def user_add(name: str, role: str, team: str | None) -> str:
    """The ``user add`` command line for one member of a team such as USERS."""
    return f"user add {name} --role {role}" + (f" --team {team}" if team else "")


def cli_floor(users: list[tuple[str, str, str | None]], *, emails: bool = False) -> Callable[[str], None]:
    """A template's ``build``: the schema, the shipped processes and ``users`` (each with the e-mail address
    name@example.pl if ``emails``), set up through the CLI as an admin would."""

    def build(url: str) -> None:
        ok(url, "root", "init")
        ok(url, "root", ["process", "load", str(PROCESSES_DIR)])
        for name, role, team in users:
            ok(url, "root", user_add(name, role, team) + (f" --email {name}@example.pl" if emails else ""))

    return build


# -- the CLI in both modes ----------------------------------------------------------------------------------------
# The CLI suites (tests/test_cli_*.py) take their database from ``cli_db``, which runs each test three ways: on a
# local SQLite file (``leadflow --db``), and through the team server (tests/remote.py) on SQLite and on PostgreSQL,
# each user logged in with ``leadflow login``. The test bodies are the same; ``leadflow`` above chooses the path.
# A test of a command that works on a local database only (init, demo, serve, check, backup, restore) skips in
# remote mode, saying so; so does a test marked ``local_only(reason)``.
CLI_MODES = ["local", "remote", pytest.param("remote-pg", marks=pytest.mark.postgres)]
#: Why ``import --rejects`` is a local case: the rejects file would be written where the import runs, the server;
#: through a server the CLI refuses it as bad usage and the report (--json) lists the rejected rows.
REJECTS_FILE = "import --rejects writes its file where the import runs; through a server that is refused (usage)"
#: Why listing tokens is a local case: through a server each person holds the personal token of their login, so
#: token ids and lists differ.
LOGIN_TOKENS = "through a server each logged-in person holds their login's personal token: token ids and lists differ"


class CliDatabase:
    """A CLI test's database in its mode: ``template(name, build)`` makes it (a copy of a session template, as
    ``Templates.copy``) and, in remote mode, has the session's server of that kind of database serve it."""

    def __init__(self, mode: str, request: pytest.FixtureRequest, templates: Templates, folder: Path):
        self.mode, self.request, self.templates, self.folder = mode, request, templates, folder

    @property
    def remote(self) -> bool:
        return self.mode != "local"

    def template(self, name: str, build: Callable[[str], object]) -> str:
        if self.mode == "local":
            return self.templates.sqlite(name, build, self.folder)
        from tests.remote import SharedServer

        servers: dict[str, SharedServer] = self.request.getfixturevalue("team_servers")
        kind = "sqlite" if self.mode == "remote" else "postgresql"
        logins = self.templates.folder / f"{name}-logins-{kind}"

        def build_and_log_in(url: str) -> list[str]:
            """The template, and every user of it logged in (their config directories in ``logins``), once: each
            test starts from a copy of both, so a test's snapshot never sees a first login."""
            build(url)
            if kind not in servers:
                servers[kind] = SharedServer(url)
            return servers[kind].log_everyone_in(url, logins)

        if self.mode == "remote":
            url = f"sqlite:///{self.folder / 'leadflow.db'}"
        else:
            databases: PostgresDatabases = self.request.getfixturevalue("postgres_databases")
            url = databases.create()
            self.request.addfinalizer(lambda: databases.drop(url))
        users = self.templates.copy(f"{name}+logins", build_and_log_in, url)
        shutil.copytree(logins, self.folder / "logins")
        servers[kind].attach(url, self.folder / "logins", users)
        self.request.addfinalizer(lambda: servers[kind].detach(url))
        return url


@pytest.fixture(scope="session")
def team_servers() -> Iterator[dict[str, Any]]:
    """The session's team servers, one per kind of database (tests/remote.py's ``SharedServer``)."""
    servers: dict[str, Any] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(params=CLI_MODES)
def cli_db(request: pytest.FixtureRequest, templates: Templates, tmp_path: Path) -> Iterator[CliDatabase]:
    """Where a CLI test's commands work: ``local``, ``remote`` (SQLite) or ``remote-pg`` (PostgreSQL)."""
    mode = request.param
    if mode == "remote-pg" and not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: LEADFLOW_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server: set LEADFLOW_TEST_PG_URL to run the postgres half")
    marker = request.node.get_closest_marker("local_only")
    if mode != "local" and marker is not None:
        pytest.skip(f"local mode only: {marker.args[0]}")
    if mode == "local":
        yield CliDatabase(mode, request, templates, tmp_path)
        return
    from engine import passwords

    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)  # the logins' Argon2id at its smallest cost
    try:
        yield CliDatabase(mode, request, templates, tmp_path)
    finally:
        passwords.configure()


# -- checking the database --------------------------------------------------------------------------


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every leadflow table, to prove that a refused command changed nothing."""
    from engine.store import metadata

    # Through a server every request counts against the caller's token (``rate_limits``, ``api_tokens.last_used_at``,
    # a login's session): a refused command writes that and nothing else, which the snapshot leaves out.
    bookkeeping = {"rate_limits": None, "api_tokens": "last_used_at", "sessions": "last_seen_at"}
    remote = server_for(url) is not None
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return {
                t.name: sorted(tuple(map(repr, r)) for r in conn.execute(
                    sa.select(*[c for c in t.columns if c.name != bookkeeping[t.name]])
                    if remote and bookkeeping.get(t.name) else sa.select(t)))
                for t in metadata.sorted_tables if not (remote and t.name in bookkeeping and not bookkeeping[t.name])
            }
    finally:
        db.dispose()


def at_once(url: str, user: str, work: Callable[[Any, int], Any], n: int) -> list[Any]:
    """Run ``work(engine, i)`` in ``n`` threads, each with an Engine of its own (another program on the same
    database), started together at a barrier; returns their results, and fails the test if any raised."""
    from engine.api import Engine

    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        eng = Engine.open(url, user=user)
        try:
            barrier.wait(timeout=60)
            results.append(work(eng, i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    return results
