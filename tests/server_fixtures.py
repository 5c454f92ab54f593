"""A real team server for tests: uvicorn serving ``create_app`` on a free loopback port, in a thread of the test
process (the fixtures' database, the test clock as the tests pin it).

Until personal tokens land (the auth branch), a person is named in the test header ``Authorization: Bearer
test-user:NAME``, resolved by ``test_resolver`` below, which only these tests install: the production
``Identify`` knows bearer tokens alone. Integration tokens are real ones (``tokens.add``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import Request

from cli.server import create_app
from cli.server.identity import Caller, Identify, by_token

TEST_PREFIX = "test-user:"


def test_resolver(engine: Any, request: Request, read: bool) -> Caller | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.startswith(TEST_PREFIX):
        return None
    name = value[len(TEST_PREFIX):]
    return Caller(engine.as_user(name), name, "personal", value, {"read": True})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server: ``call(user, method, path, ...)`` as a person, ``client`` for anything else."""

    url: str
    client: httpx.Client

    def call(self, user: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers.setdefault("Authorization", f"Bearer {TEST_PREFIX}{user}")
        return self.client.request(method, path, headers=headers, **kwargs)


@contextmanager
def serving(engine: Any, **options: Any) -> Iterator[Served]:
    """The app over ``engine`` served by uvicorn in a thread until the block ends, with ``leadflow serve``'s
    protocol (httptools' where installed, its head's time and size limits: ``run.http_protocol``)."""
    from cli.server.run import http_protocol

    app = create_app(engine, identify=Identify(engine, [test_resolver, by_token]), **options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", http=http_protocol(),
                                           access_log=False, lifespan="off", proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield Served(url, client)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
