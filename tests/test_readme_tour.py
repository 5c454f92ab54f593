"""The README's five-minute tour, run as written: each command a real ``leadflow`` process, in order.

Each command must exit 0, or 1 where its comment starts with ``refused:`` (``run-due`` among them: a reader has
no mail server configured, and it says so). ``serve`` is run so that it ends: in the background until it answers
``/openapi.json`` (on a free port instead of the README's), then stopped as Ctrl-C stops it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_URL, ROOT
from tests.smtp import free_port

SCRIPTS = Path(sys.executable).parent
TOUR_HEADING = "## A five-minute tour"
SERVER_TOUR_HEADING = "### The same through a team server"


@dataclass(frozen=True)
class Step:
    line: int  # in README.md
    command: str  # as written, continuation lines joined
    comment: str

    @property
    def refused(self) -> bool:
        return self.comment.startswith("refused:")

    @property
    def words(self) -> list[str]:
        return shlex.split(self.command)


def tour(readme: str, heading: str = TOUR_HEADING) -> list[Step]:
    """The commands of the first ``sh`` block under ``heading``, continuation lines joined."""
    lines = readme.splitlines()
    start = lines.index(heading)
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```sh"))
    steps: list[Step] = []
    pending: tuple[int, str] | None = None
    for number in range(fence + 1, len(lines)):
        text = lines[number]
        if text.startswith("```"):
            assert pending is None, f"README.md:{pending[0] + 1}: the tour ends inside a continued command"
            return steps
        if pending is not None:
            text = pending[1] + " " + text.strip()
        if text.endswith("\\"):
            pending = (pending[0] if pending else number, text[:-1].rstrip())
            continue
        first = pending[0] if pending else number
        pending = None
        command, comment = split_comment(text)
        if command.strip() and not command.lstrip().startswith("#"):
            steps.append(Step(first + 1, command.strip(), comment.strip()))
    raise AssertionError("the tour's sh block is not closed")


def split_comment(text: str) -> tuple[str, str]:
    """The command and its comment: after the first ``  #`` (two spaces) outside quotes."""
    for match in re.finditer(r"\s{2,}#", text):
        try:
            shlex.split(text[: match.start()])
        except ValueError:  # inside quotes
            continue
        return text[: match.start()], text[match.end():]
    return text, ""


README = (ROOT / "README.md").read_text(encoding="utf-8")
STEPS = tour(README)
SERVER_STEPS = tour(README, SERVER_TOUR_HEADING)


def test_the_tour_is_found_and_reads_as_expected() -> None:
    assert STEPS[0].command == "export LEADFLOW_DB=sqlite:///team.db"
    assert any(s.command.startswith("leadflow lead add --process photovoltaics --name") and "--set" in s.command
               for s in STEPS), "the continued lead add line is joined"
    assert [s.command for s in STEPS if s.refused] == ["leadflow lead advance 1", "leadflow lead reopen 2",
                                                       "leadflow run-due"]
    assert all(s.command.startswith(("leadflow ", "export ")) for s in STEPS)
    assert [s.command for s in SERVER_STEPS if s.refused] == ["leadflow user add mallory --role admin"]
    assert sum(s.command.endswith("&") for s in SERVER_STEPS) == 1 and SERVER_STEPS[-1].command == "kill %1"


def test_tour_parses_continuations_and_comments() -> None:
    text = "\n".join([TOUR_HEADING, "", "```sh", "export A=1   # one", "# a remark", "",
                      "leadflow x \\", '    --name "a  #b"   # refused: no', "```"])
    assert tour(text) == [Step(4, "export A=1", "one"), Step(7, 'leadflow x --name "a  #b"', "refused: no")]


def run_step(step: Step, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # through the shell, as a reader pastes it: $(date +%Y-%m) and the quotes are the shell's
    return subprocess.run(["bash", "-c", step.command], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=300)


def start_server(step: Step, env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen[str]:
    """Start the tour's ``serve`` on ``port`` instead of its own; return once it answers its OpenAPI document."""
    command = re.sub(r"--port \d+", f"--port {port}", step.command.removesuffix("&").strip())
    assert command != step.command, "the tour's serve names its --port"
    server = subprocess.Popen(shlex.split(command), cwd=cwd, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise AssertionError(f"serve exited {server.returncode}: {server.communicate()[0]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=5) as answer:
                assert answer.status == 200
                assert b"/v1/leads" in answer.read()
                return server
        except OSError:
            if time.monotonic() > deadline:
                stop_server(server)
                raise AssertionError("serve did not answer within 60 s") from None
            time.sleep(0.2)


def stop_server(server: subprocess.Popen[str]) -> str:
    """Stop a server as Ctrl-C does; its output, once it exited 0."""
    server.send_signal(signal.SIGINT)
    output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output
    return output


def serve_step(step: Step, env: dict[str, str], cwd: Path) -> str:
    """Start ``serve`` on a free port, wait for its OpenAPI document, stop it as Ctrl-C does; its output."""
    server = start_server(step, env, cwd, free_port())
    return stop_server(server)


def check_step(step: Step, proc: subprocess.CompletedProcess[str]) -> None:
    """The step exited as its comment says: 0, or 1 with the refusal's words on stderr; never a traceback."""
    where = f"README.md:{step.line}: {step.command}"
    expected = 1 if step.refused else 0
    assert proc.returncode == expected, f"{where}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, where
    if step.refused:
        said = step.comment.removeprefix("refused:").strip().split(";")[0]
        assert said.lower() in proc.stderr.lower(), f"{where}: expected '{said}' in\n{proc.stderr}"


def reader_env(tmp_path: Path) -> dict[str, str]:
    """A reader's environment: no LEADFLOW_ variable of ours (the real clock), their own config directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(PATH=f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1", COLUMNS="200",
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    return env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tour_db(request: pytest.FixtureRequest) -> str | None:
    """None: the README's own SQLite URL; else a fresh PostgreSQL database replacing it."""
    if request.param == "sqlite":
        return None
    if not PG_URL:
        pytest.skip("no PostgreSQL server: set LEADFLOW_TEST_PG_URL to run the postgres half")
    url: str = request.getfixturevalue("postgres_databases").create()
    return url


@pytest.mark.slow  # half a minute a database: some forty processes, a server and a mail run
def test_the_readme_tour_runs_as_written(tmp_path: Path, tour_db: str | None) -> None:
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")  # "run it from the checkout"
    env = reader_env(tmp_path)
    for step in STEPS:
        if step.words[0] == "export":
            name, _, value = step.words[1].partition("=")
            env[name] = tour_db if name == "LEADFLOW_DB" and tour_db else value
            continue
        if step.words[1] == "serve":
            serve_step(step, env, tmp_path)
            continue
        check_step(step, run_step(step, env, tmp_path))
    assert (tmp_path / "board.html").is_file()
    assert (tmp_path / "funnel.png").is_file()
    assert (tmp_path / "leads.csv").is_file()
    assert (tmp_path / "team.db").is_file() == (tour_db is None)


@pytest.mark.slow  # a server and a dozen processes a database
def test_the_readme_team_server_tour_runs_as_written(tmp_path: Path, tour_db: str | None) -> None:
    """The admin sets up a server, anna logs in (changing the password the admin gave her) and works through it."""
    env = reader_env(tmp_path)
    port = free_port()
    server: subprocess.Popen[str] | None = None
    try:
        for step in SERVER_STEPS:
            words = step.words
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                env[name] = tour_db if name == "LEADFLOW_DB" and tour_db else value
            elif words[0] == "unset":
                for name in words[1:]:
                    env.pop(name, None)
            elif words[:2] == ["leadflow", "serve"]:
                assert server is None and step.command.endswith("&"), step.command
                server = start_server(step, env, tmp_path, port)
            elif step.command == "kill %1":
                assert server is not None, "the tour stops the server it started"
                stop_server(server)
                server = None
            else:
                command = step.command.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
                check_step(step, run_step(Step(step.line, command, step.comment), env, tmp_path))
    finally:
        if server is not None:
            server.kill()
            server.communicate()
    assert server is None, "the tour stopped its server"
    assert (tmp_path / "server.db").is_file() == (tour_db is None)
    assert not (tmp_path / "leadflow.db").exists(), "anna's commands ran on the server, not on a local database"
