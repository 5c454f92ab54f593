"""The CLI as a client of a team server: where it works, logging in and out, the remote path's weight, and
errors (a refusal, a server down or failing, TLS) as one line and the local exit codes.

These run against a stub server (tests/remote.py) that answers canned JSON: they test the client, not the
server. The behaviour suite runs in remote mode against the real server (tests/remote.py's ``remote_team``).
"""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner, Result

from cli import credentials
from cli.main import LOCAL_COMMANDS, cli
from cli.operations import BY_NAME
from tests.remote import Stub, problem, stub_server

ROOT = Path(__file__).resolve().parent.parent

LEAD = {"id": 7, "name": "Zofia Kamińska", "status": "open", "stage": "first_contact"}
TASKS = [{"lead_id": 7, "name": "Zofia Kamińska", "stage": "first_contact", "task": "record_contact",
          "task_name": "Record the first contact", "owner": "anna", "mandatory": True, "due_at": "2026-03-03T23:59:59",
          "overdue": False, "process": "photovoltaics", "lead_owner": "anna"}]
ANNA = {"id": 2, "name": "anna", "role": "salesperson", "team": "north", "created_at": "2026-03-02T09:00:00"}


@pytest.fixture(autouse=True)
def _own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config directory of the test's own (never the developer's logins), no server or token in the env."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("LEADFLOW_SERVER", "LEADFLOW_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "config" / "leadflow"


@pytest.fixture
def stub() -> Iterator[Stub]:
    with stub_server() as server:
        server.answer("GET", "/v1/leads/7", body=LEAD)
        server.answer("GET", "/v1/tasks", body=TASKS)
        server.answer("GET", "/v1/whoami", body=ANNA)
        yield server


def run(args: list[str], env: dict[str, str | None] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False, prog_name="leadflow")


def remote(stub: Stub, token: str = "lfp_anna") -> dict[str, str | None]:
    return {"LEADFLOW_SERVER": stub.url, "LEADFLOW_TOKEN": token, "LEADFLOW_DB": None, "LEADFLOW_USER": None}


def one_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- a command through the server -----------------------------------------------------------------------------


def test_a_command_is_the_servers_operation_with_the_token(stub: Stub) -> None:
    result = run(["lead", "show", "7", "--json"], remote(stub))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == LEAD
    [sent] = stub.sent
    assert (sent.method, sent.path) == ("GET", "/v1/leads/7")
    assert sent.headers["authorization"] == "Bearer lfp_anna"


def test_arguments_travel_as_the_operation_table_says(stub: Stub) -> None:
    stub.answer("POST", "/v1/leads/7/close", body={**LEAD, "status": "lost", "close_reason": "no_budget"})
    stub.answer("GET", "/v1/leads", body=[])
    assert run(["lead", "close", "7", "--reason", "no_budget", "--note", "später"], remote(stub)).exit_code == 0
    assert run(["lead", "list", "--owner", "anna", "--unassigned"], remote(stub)).exit_code == 2  # usage, locally
    assert run(["lead", "list", "--owner", "anna", "--status", "open"], remote(stub)).exit_code == 0
    close, listing = stub.sent
    assert json.loads(close.body) == {"reason": "no_budget", "note": "später"}
    assert close.headers["content-type"] == "application/json"
    assert listing.path == "/v1/leads?owner=anna&status=open&unassigned=false&limit=1000"


def test_the_board_of_one_process_is_a_list_as_locally(stub: Stub) -> None:
    board = {"process": "photovoltaics", "as_of": "2026-03-02T09:00:00", "stages": []}
    stub.answer("GET", "/v1/board", body=board)
    result = run(["board", "--process", "photovoltaics", "--json"], remote(stub))
    assert json.loads(result.stdout) == board  # the CLI prints boards[0], as it does with the engine's list


def test_the_task_table_is_one_page_whose_total_comes_in_a_header(stub: Stub) -> None:
    stub.answer("GET", "/v1/tasks?limit=20&offset=20", body=TASKS, headers={"X-Total-Count": "45"})
    result = run(["task", "list", "--offset", "20"], remote(stub))
    assert result.exit_code == 0, result.output
    assert "45 open tasks (21-21 of 45)" in result.stdout
    assert "and 24 more: --offset 21 for the next page" in result.stdout
    assert [s.path for s in stub.sent] == ["/v1/tasks?limit=20&offset=20"]


def test_task_list_json_follows_the_link_to_every_page(stub: Stub) -> None:
    from cli.lead_cmds import JSON_PAGE

    second = {**TASKS[0], "lead_id": 8}
    after = "2026-03-03T23%3A59%3A59~7~0~record_contact"
    stub.answer("GET", f"/v1/tasks?limit={JSON_PAGE}&offset=0", body=TASKS, headers={
        "X-Total-Count": "2", "Link": f'</v1/tasks?limit={JSON_PAGE}&after={after}>; rel="next"'})
    stub.answer("GET", f"/v1/tasks?limit={JSON_PAGE}&offset=0&after={after}", body=[second],
                headers={"X-Total-Count": "2"})
    result = run(["task", "list", "--json"], remote(stub))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [*TASKS, second]
    assert len(stub.sent) == 2


def test_every_engine_call_of_the_commands_is_an_operation_of_the_server() -> None:
    """``app.engine.<service>.<method>`` in every command module names an operation of cli/operations.py: the
    remote client has each, the server serves each."""
    calls = set()
    for path in sorted((ROOT / "cli").glob("*_cmds.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "engine"):
                calls.add(f"{node.value.attr}.{node.attr}")
    assert {"leads.advance", "tasks.list", "users.whoami"} <= calls  # the walk found the calls
    # the operator's commands run where the database is (cli.main.LOCAL_COMMANDS), never through a server
    operators = {"admin.check", "admin.backup", "admin.restore"}
    assert {"check", "backup", "restore"} <= LOCAL_COMMANDS
    assert calls - set(BY_NAME) <= operators


# -- identity comes only from the token ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["option", "env"])
def test_acting_as_someone_else_is_refused_and_sends_nothing(stub: Stub, how: str) -> None:
    env = remote(stub)
    args = ["lead", "close", "7", "--reason", "no_budget"]
    if how == "option":
        args = ["--user", "root", *args]
    else:
        env["LEADFLOW_USER"] = "root"
    line = one_error(run(args, env), 2)
    given = "--user root" if how == "option" else "LEADFLOW_USER=root"
    assert line == (f"Error: {given} is refused through a server ({stub.url}): there you act as the user of your "
                    "login and nobody else (leadflow whoami); unset it, or give --db URL to work on a local database")
    assert stub.sent == []


def test_a_local_database_and_a_server_together_are_bad_usage(stub: Stub, tmp_path: Path) -> None:
    env = {**remote(stub), "LEADFLOW_DB": f"sqlite:///{tmp_path / 'x.db'}"}
    line = one_error(run(["lead", "show", "7"], env), 2)
    assert "LEADFLOW_DB=" in line and f"LEADFLOW_SERVER={stub.url}" in line and "not both" in line


def test_init_runs_on_a_local_database_only(stub: Stub) -> None:
    line = one_error(run(["init"], remote(stub)), 2)
    assert line == (f"Error: init creates the schema of a local database, not through a server ({stub.url}): give "
                    "--db URL, where the server runs")
    assert stub.sent == []


def test_a_token_without_a_server_is_bad_usage() -> None:
    line = one_error(run(["task", "list"], {"LEADFLOW_TOKEN": "lfp_x"}), 2)
    assert "LEADFLOW_TOKEN is set but no server is" in line


# -- errors: the server's refusal, a server down or failing ----------------------------------------------------


def test_a_refusal_is_the_engines_message_and_exit_1(stub: Stub) -> None:
    stub.routes["POST", "/v1/leads/7/advance"] = problem(
        409, "Can't advance lead 7 from 'first_contact': mandatory tasks open: record_contact")
    line = one_error(run(["lead", "advance", "7"], remote(stub)), 1)
    assert line == "Error: Can't advance lead 7 from 'first_contact': mandatory tasks open: record_contact"


def test_a_rejected_token_says_how_to_log_in(stub: Stub) -> None:
    stub.routes["GET", "/v1/tasks"] = problem(401, "the token has expired")
    line = one_error(run(["task", "list"], remote(stub)), 1)
    assert line == f"Error: the token has expired (server {stub.url}); log in with: leadflow login {stub.url}"


def test_rate_limited_says_when_to_try_again(stub: Stub) -> None:
    status, body, headers = problem(429, "too many requests with token 17")
    stub.answer("GET", "/v1/tasks", status, body, {**headers, "Retry-After": "42"})
    line = one_error(run(["task", "list"], remote(stub)), 1)
    assert line == "Error: too many requests with token 17; try again in 42 seconds"


def test_a_failing_server_is_one_line(stub: Stub) -> None:
    stub.answer("GET", "/v1/tasks", 502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})
    line = one_error(run(["task", "list"], remote(stub)), 1)
    assert line.startswith(f"Error: the server {stub.url} failed to answer GET /v1/tasks (HTTP 502)")


def test_a_server_that_is_not_there_is_one_line() -> None:
    with stub_server() as gone:
        url = gone.url
    line = one_error(run(["task", "list"], {"LEADFLOW_SERVER": url, "LEADFLOW_TOKEN": "lfp_x"}), 1)
    assert line == f"Error: cannot reach the server {url}: Connection refused"


def test_tls_failing_is_one_line(stub: Stub) -> None:
    https = stub.url.replace("http://", "https://")  # a plain HTTP server: the TLS handshake fails
    line = one_error(run(["task", "list"], {"LEADFLOW_SERVER": https, "LEADFLOW_TOKEN": "lfp_x"}), 1)
    assert line.startswith(f"Error: cannot talk to the server {https} securely: TLS failed (")


# -- login, whoami, logout -------------------------------------------------------------------------------------


def login_routes(stub: Stub) -> None:
    stub.answer("POST", "/v1/auth/login", body={"token": "lfs_session", "session": {"id": 3}, "user": ANNA})
    stub.answer("POST", "/v1/tokens/personal", 201, {"id": 17, "kind": "personal", "name": "laptop", "token": "lfp_new",
                                                     "expires_at": "2026-05-31T09:00:00"})
    stub.answer("POST", "/v1/auth/logout", body={"id": 3})
    stub.answer("DELETE", "/v1/tokens/17", body={"id": 17})


def test_login_stores_a_token_readable_by_its_owner_only(stub: Stub, _own_config: Path) -> None:
    login_routes(stub)
    result = run(["login", stub.url, "--user", "anna", "--password-stdin", "--token-name", "laptop"],
                 {"LEADFLOW_USER": "someone"}, stdin="correct horse battery\n")
    assert result.exit_code == 0, result.output
    path = _own_config / "credentials.json"
    assert result.stdout == (f"Logged in to {stub.url} as anna (salesperson); token 17 'laptop', expires 2026-05-31, "
                             f"kept in {path}\n")
    login, personal, logout = stub.sent
    assert json.loads(login.body) == {"name": "anna", "password": "correct horse battery"}
    assert "authorization" not in login.headers
    assert personal.headers["authorization"] == "Bearer lfs_session"
    assert json.loads(personal.body) == {"name": "laptop"}
    assert logout.headers["authorization"] == "Bearer lfs_session"  # the login's session ends at once
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"default": stub.url, "servers": {
        stub.url: {"user": "anna", "token": "lfp_new", "token_id": 17}}}
    assert "correct horse" not in path.read_text()

    # every command now goes to the server, with the token
    me = run(["whoami"], {"LEADFLOW_DB": None})
    assert me.stdout == f"anna (salesperson, team north) on {stub.url}\n"
    assert stub.sent[-1].headers["authorization"] == "Bearer lfp_new"

    out = run(["logout"])
    assert out.stdout == f"Logged out of {stub.url} (token 17 revoked)\n"
    assert (stub.sent[-1].method, stub.sent[-1].path) == ("DELETE", "/v1/tokens/17")
    assert json.loads(path.read_text()) == {"default": None, "servers": {}}
    assert credentials.default_server() is None


def test_a_wrong_password_stores_nothing(stub: Stub, _own_config: Path) -> None:
    stub.routes["POST", "/v1/auth/login"] = problem(401, "wrong user name or password")
    line = one_error(run(["login", stub.url, "--user", "anna", "--password-stdin"], stdin="nope nope nope\n"), 1)
    assert line.startswith("Error: wrong user name or password")
    assert not (_own_config / "credentials.json").exists()


def test_login_without_a_terminal_needs_password_stdin(stub: Stub) -> None:
    line = one_error(run(["login", stub.url, "--user", "anna"], stdin=""), 2)
    assert line == "Error: no terminal to ask for the password on: give it on standard input with --password-stdin"
    assert stub.sent == []


def test_logout_when_the_server_is_gone_forgets_the_token_and_says_so(_own_config: Path) -> None:
    with stub_server() as gone:
        url = gone.url
    credentials.save(credentials.Login(url, "lfp_x", "anna", 17))
    line = one_error(run(["logout"]), 1)
    assert line.startswith("Error: logged out here, but the server did not revoke token 17: cannot reach")
    assert credentials.stored(url) is None


@pytest.mark.parametrize(("given", "stored"), [
    ("crm.example.pl", "https://crm.example.pl"), ("HTTP://Localhost:8080/", "http://localhost:8080"),
    ("https://example.pl/leadflow/", "https://example.pl/leadflow")])
def test_server_addresses_are_stored_under_one_spelling(given: str, stored: str) -> None:
    assert credentials.normalise_server(given) == stored


@pytest.mark.parametrize("bad", ["ftp://x", "https://", "https://u:p@x", "https://x?token=1", "https://x:99999"])
def test_a_bad_server_address_is_refused(bad: str) -> None:
    with pytest.raises(credentials.CredentialsError):
        credentials.normalise_server(bad)


# -- the remote path is light ----------------------------------------------------------------------------------

#: What a command through a server must not import: the database, migrations, templates, the state machine, the
#: engine itself (and, for JSON output, the rich tables). Of the engine's package only its vocabulary may load:
#: ``engine.vocab`` is standard-library enums the CLI shares with the engine (``LeadStatus.OPEN``), and
#: ``engine/__init__`` imports nothing.
SERVER_SIDE = {"sqlalchemy", "alembic", "jinja2", "transitions", "yaml", "jsonschema", "holidays"}
SHARED_VOCABULARY = {"engine", "engine.vocab", "engine.i18n"}  # engine.i18n: the translation function (stdlib)


@pytest.mark.parametrize("argv", [["lead", "show", "7", "--json"], ["task", "list", "--json"], ["task", "list"]])
def test_a_remote_command_imports_no_engine(stub: Stub, argv: list[str]) -> None:
    code = (f"from cli.main import cli\ncli.main({argv!r}, prog_name='leadflow', standalone_mode=False)\n"
            "import sys, json; print(json.dumps(sorted(sys.modules)))")
    env = {**os.environ, "LEADFLOW_SERVER": stub.url, "LEADFLOW_TOKEN": "lfp_anna", "PYTHONPATH": str(ROOT)}
    env.pop("LEADFLOW_DB", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    loaded = {m.split(".")[0] for m in modules}
    assert [s.path.split("?")[0] for s in stub.sent] == ["/v1/leads/7" if argv[0] == "lead" else "/v1/tasks"]
    heavy = SERVER_SIDE | ({"rich"} if "--json" in argv else set())
    assert heavy & loaded == set()
    assert {m for m in modules if m.split(".")[0] == "engine"} <= SHARED_VOCABULARY


# -- files travel ------------------------------------------------------------------------------------------------


def test_process_validate_sends_the_files_content(stub: Stub, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("id: [\n", encoding="utf-8")
    stub.answer("POST", "/v1/processes/validate", body=[{"file": str(path), "valid": False, "problems": [
        {"line": 1, "column": 5, "path": "", "message": "the YAML is not well-formed"}]}])
    result = run(["process", "validate", str(path)], remote(stub))
    assert result.exit_code == 1
    assert result.stdout == f"{path}:1:5: the YAML is not well-formed\n"
    assert result.stderr == "0 files valid, 1 invalid (1 problem)\n"
    [sent] = stub.sent
    assert sent.body == b"id: [\n"
    assert sent.path == "/v1/processes/validate?" + urlencode({"filename": str(path)})


def test_export_writes_what_the_server_sends(stub: Stub, tmp_path: Path) -> None:
    csv_text = "id,name\r\n7,Zofia Kamińska\r\n8,\"Jan, Kowalski\"\r\n"
    stub.answer("GET", "/v1/export", body=csv_text.encode(), headers={"Content-Type": "text/csv; charset=utf-8"})
    out = tmp_path / "leads.csv"
    result = run(["export", "--output", str(out)], remote(stub))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Exported 2 leads to {out}\n"
    assert out.read_bytes() == csv_text.encode()
