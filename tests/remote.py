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
