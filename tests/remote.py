"""Running the CLI through a server in tests: a canned stub server (for the client's own tests) and, for the
behaviour suite in remote mode, the real team server on loopback with real logins.

The stub answers fixed JSON to fixed requests and records what it was sent: enough to test the client (errors,
exit codes, what it imports, logging in and out) without an engine behind it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
            status, data, headers = stub.routes.get((self.command, self.path.split("?")[0]),
                                                    problem(404, f"no route {self.command} {self.path}"))
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
# Wiring (tests/conftest.py, by whoever owns it): conftest's ``leadflow(url, user, command, now)`` asks
# ``server_for(url)`` first and, when a server serves that database, returns ``server.invoke(user, command, now)``;
# a CLI test module's database fixture takes ``params=["local", "remote"]`` and, for "remote", yields its URL
# inside ``with serve(url):``. Everything else (``ok``, ``js``, ``refused`` and its snapshot of the database)
# stays as it is: the server commits before it answers, so the snapshot sees what the command did.

#: Every test user's password (the policy wants 10 characters and not the name).
PASSWORD = "correct horse battery staple"
_SERVERS: dict[str, RemoteServer] = {}


@dataclass
class RemoteServer:
    """The team server over the database ``db_url``, in a thread of the test process on loopback. Each user
    the CLI acts as gets a password (set by an admin on the database) and logs in through the server, as
    ``leadflow login`` does, once; the CLI then presents that user's personal token and never names a user.

    The server runs in test mode, so it honours ``LEADFLOW_NOW``: in this process that is the environment the
    CLI runner sets for each command, which is how a test's clock reaches the server (a real client's never
    does)."""

    url: str
    db_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            from cli.remote import RemoteEngine, Server
            from engine.api import Engine

            admin = Engine.open(self.db_url, user="root")
            try:
                admin.auth.set_password(user, PASSWORD)
            finally:
                admin.close()
            session = RemoteEngine(Server(self.url)).auth.login(user, PASSWORD)
            person = RemoteEngine(Server(self.url, session["token"]))
            self.tokens[user] = person.tokens.add_personal(name="tests")["token"]
            person.auth.logout()
        return self.tokens[user]

    def invoke(self, user: str | None, command: str | list[str], now: str) -> Any:
        """``leadflow COMMAND`` through this server as ``user`` (None: the OS login, as locally)."""
        import getpass
        import shlex

        from click.testing import CliRunner

        from cli.main import cli

        name = user or getpass.getuser()
        env = {"LEADFLOW_SERVER": self.url, "LEADFLOW_TOKEN": self.token(name), "LEADFLOW_DB": None,
               "LEADFLOW_USER": None, "LEADFLOW_NOW": now, "COLUMNS": None, "FORCE_COLOR": None,
               "TTY_COMPATIBLE": None, "LEADFLOW_DEBUG": None}
        args = shlex.split(command) if isinstance(command, str) else list(command)
        return CliRunner().invoke(cli, args, env=env, catch_exceptions=False, prog_name="leadflow")


def server_for(db_url: str) -> RemoteServer | None:
    """The server that serves ``db_url`` in this test, if one does (remote mode)."""
    return _SERVERS.get(db_url)


@contextmanager
def serve(db_url: str) -> Iterator[RemoteServer]:
    """The team server (cli/server/) over ``db_url`` on a free loopback port, in test mode, for the block."""
    import importlib
    import os
    import socket

    import uvicorn

    from engine.api import Engine

    # by name: cli/server/ is the api branch's (docs/server.md), not in this tree until it is merged
    create_app = importlib.import_module("cli.server.app").create_app
    engine = Engine.open(db_url, user="root")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    before = os.environ.get("LEADFLOW_TEST_MODE")
    os.environ["LEADFLOW_TEST_MODE"] = "1"
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
            if not thread.is_alive():
                raise RuntimeError("the team server did not start")
        remote = RemoteServer(f"http://127.0.0.1:{sock.getsockname()[1]}", db_url)
        _SERVERS[db_url] = remote
        yield remote
    finally:
        _SERVERS.pop(db_url, None)
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        engine.close()
        if before is None:
            os.environ.pop("LEADFLOW_TEST_MODE", None)
        else:
            os.environ["LEADFLOW_TEST_MODE"] = before
