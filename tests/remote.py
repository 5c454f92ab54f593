"""Running the CLI through a server in tests: a canned stub server (for the client's own tests) and, for the
behaviour suite in remote mode, the real team server on loopback with real logins.

The stub answers fixed JSON to fixed requests and records what it was sent: enough to test the client (errors,
exit codes, what it imports, logging in and out) without an engine behind it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: (method, path without the query) -> (status, JSON body or None, extra headers)
Routes = dict[tuple[str, str], tuple[int, Any, dict[str, str]]]


@dataclass
class Sent:
    method: str
    path: str  # with the query
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    url: str
    routes: Routes
    sent: list[Sent] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int = 200, body: Any = None,
               headers: dict[str, str] | None = None) -> None:
        self.routes[method, path] = (status, body, headers or {})


def problem(status: int, detail: str) -> tuple[int, Any, dict[str, str]]:
    """An RFC 9457 problem answer, as the team server refuses."""
    return status, {"type": "about:blank", "title": "refused", "status": status, "detail": detail}, {
        "Content-Type": "application/problem+json"}


@contextmanager
def stub_server(routes: Routes | None = None) -> Iterator[Stub]:
    """A server on loopback answering ``routes``; anything else is a 404 problem."""
    stub = Stub("", dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            stub.sent.append(Sent(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, data, headers = stub.routes.get(  # a route with its query string, else the path's
                (self.command, self.path), stub.routes.get((self.command, self.path.split("?")[0]),
                                                           problem(404, f"no route {self.command} {self.path}")))
            payload = b"" if data is None else (data if isinstance(data, bytes) else json.dumps(data).encode())
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the real team server on loopback, for the behaviour suite in remote mode ---------------------------------
# tests/conftest.py's ``cli_db`` fixture runs each CLI test three ways: locally, and through the team server on
# SQLite and on PostgreSQL. Its ``leadflow(url, user, command, now)`` asks ``server_for(url)`` first and, when a
# server serves that database, runs ``server.invoke(user, command, now)``. Everything else (``ok``, ``js``,
# ``refused`` and its snapshot of the database) stays as it is: the server commits before it answers, so the
# snapshot sees what the command did.
#
# One server per kind of database serves the whole session (starting one costs ~0.3 s: uvicorn, the app's
# hundred routes); each test's database is a fresh copy, which the server is switched to (``SharedServer.attach``)
# before the test's first command and away from after its last.

#: Every test user's password (the policy wants 10 characters and not the name).
PASSWORD = "correct horse battery staple"
#: Commands that work on a local database only (cli/main.py's LOCAL_COMMANDS): a test of one skips in remote mode.
LOCAL_ONLY = ("init", "demo", "serve", "check", "backup", "restore")
_SERVERS: dict[str, RemoteServer] = {}


@dataclass
class RemoteServer:
    """The team server serving the database ``db_url`` at ``url``, for one test. Each user the CLI acts as sets a
    password of their own (on the database, as ``user passwd`` does) and logs in with ``leadflow login URL --user
    NAME --password-stdin``, once, into a config directory of their own (``XDG_CONFIG_HOME``); every command then
    runs as a person at their terminal would: no ``--db``, no ``--user``, the server and token from that login.

    The server runs in test mode, so it honours ``LEADFLOW_NOW``: in this process that is the environment the
    CLI runner sets for each command, which is how a test's clock reaches the server (a real client's never
    does)."""

    url: str
    db_url: str
    home: Path
    logged_in: set[str] = field(default_factory=set)

    def config(self, user: str) -> Path:
        return self.home / user

    def login(self, user: str | None) -> bool:
        """Log ``user`` (None: the OS login) in, the first time; False if they cannot (no such user, deactivated,
        an intake source)."""
        import getpass

        user = user or getpass.getuser()
        if user in self.logged_in:
            return True
        from click.testing import CliRunner

        from cli.main import cli
        from engine.api import Engine
        from engine.errors import LeadflowError

        own = Engine.open(self.db_url, user=user, create=False)
        try:
            own.auth.set_password(user, PASSWORD)
        except LeadflowError:
            return False
        finally:
            own.close()
        env = self._env(user, os.environ.get("LEADFLOW_NOW"))  # the test's clock: the template's, or the test's
        result = CliRunner().invoke(cli, ["login", self.url, "--user", user, "--password-stdin"], input=PASSWORD + "\n",
                                    env=env, catch_exceptions=False, prog_name="leadflow")
        assert result.exit_code == 0, f"leadflow login as {user}: {result.output}"
        self._never_expires(user)
        self.logged_in.add(user)
        return True

    def _never_expires(self, user: str) -> None:
        """The login's token never expires: the tests' clocks range over 18 months, a personal token's life is at
        most one year (its expiry is tests/test_auth.py's and tests/test_server_attacks.py's to check)."""
        import sqlalchemy as sa

        db = sa.create_engine(self.db_url)
        try:
            with db.begin() as conn:
                conn.execute(sa.text("UPDATE api_tokens SET expires_at = NULL WHERE kind = 'personal' AND source = :u"),
                             {"u": user})
        finally:
            db.dispose()

    def _env(self, user: str, now: str | None) -> dict[str, str | None]:
        return {"XDG_CONFIG_HOME": str(self.config(user)), "LEADFLOW_SERVER": None, "LEADFLOW_TOKEN": None,
                "LEADFLOW_DB": None, "LEADFLOW_USER": None, "LEADFLOW_NOW": now, "COLUMNS": None, "FORCE_COLOR": None,
                "TTY_COMPATIBLE": None, "LEADFLOW_DEBUG": None}

    def invoke(self, user: str | None, command: str | list[str], now: str, input: str | None = None) -> Any:
        """``leadflow COMMAND`` through this server as ``user`` (None: the OS login, as locally). A user who
        cannot log in runs it with no login, pointed at the server (``LEADFLOW_SERVER``): refused there."""
        import getpass
        import shlex

        import pytest
        from click.testing import CliRunner

        from cli.main import cli

        args = shlex.split(command) if isinstance(command, str) else list(command)
        if args and args[0] in LOCAL_ONLY:
            pytest.skip(f"'leadflow {args[0]}' works on a local database only (cli/main.py LOCAL_COMMANDS), "
                        "not through a server")
        name = user or getpass.getuser()
        if not self.login(name):
            pytest.skip(f"'{name}' cannot log in to the server (not a user, or deactivated): through a server no "
                        "command runs as them; tests/test_cli_remote.py and tests/test_server.py check the refusal")
        return CliRunner().invoke(cli, args, env=self._env(name, now), input=input, catch_exceptions=False,
                                  prog_name="leadflow")


def server_for(db_url: str) -> RemoteServer | None:
    """The server that serves ``db_url`` in this test, if one does (remote mode)."""
    return _SERVERS.get(db_url)


class _Switch:
    """The engine a shared server serves: the current test's (``target``), everything else delegated to it."""

    def __init__(self, target: Any):
        self.target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


class SharedServer:
    """The team server (cli/server/, with ``leadflow serve``'s protocol and limits) on a free loopback port, in a
    thread of the test process, in test mode; ``attach(db_url, home)`` points it at a test's database."""

    def __init__(self, db_url: str):
        import socket

        import uvicorn

        from cli.server.app import create_app
        from cli.server.run import KEEP_ALIVE, MAX_HEAD, http_protocol
        from engine.api import Engine

        self.switch = _Switch(Engine.open(db_url, user="leadflow-server", create=False))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(self.switch), log_level="warning", lifespan="off", http=http_protocol(), access_log=False,
            timeout_keep_alive=KEEP_ALIVE, h11_max_incomplete_event_size=MAX_HEAD, proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            self.thread.join(0.01)
            if not self.thread.is_alive():
                raise RuntimeError("the team server did not start")

    def attach(self, db_url: str, home: Path, logged_in: list[str] | None = None) -> RemoteServer:
        """Serve ``db_url`` (a test's fresh database) from now on, its users ``logged_in`` already (their config
        directories in ``home``); the previous database's connections are closed."""
        from engine.api import Engine

        old, self.switch.target = self.switch.target, Engine.open(db_url, user="leadflow-server", create=False)
        old.close()
        remote = RemoteServer(self.url, db_url, home, set(logged_in or []))
        _SERVERS[db_url] = remote
        return remote

    def log_everyone_in(self, db_url: str, home: Path) -> list[str]:
        """Every active person of ``db_url`` logged in with ``leadflow login``, into ``home``; returns their names."""
        import sqlalchemy as sa

        db = sa.create_engine(db_url)
        try:
            with db.connect() as conn:
                names = conn.execute(sa.text("SELECT name FROM users WHERE active AND role <> 'intake' ORDER BY name")
                                     ).scalars().all()
        finally:
            db.dispose()
        remote = self.attach(db_url, home)
        try:
            return [name for name in names if remote.login(name)]
        finally:
            self.detach(db_url)

    def detach(self, db_url: str) -> None:
        """The test is over: close the connections to its database (PostgreSQL's is dropped next)."""
        _SERVERS.pop(db_url, None)
        self.switch.target.close()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        self.switch.target.close()
