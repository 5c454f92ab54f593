"""Both HTTP/1.1 protocols ``leadflow serve`` may run (httptools' where installed, else h11's:
``run.http_protocol``) answer alike at the edges that matter: a slow head is cut off (408), a head over
``MAX_HEAD`` bytes is refused (400), both length headers are refused with the app's problem, and kept-alive and
pipelined requests are each answered. The other server tests run on the protocol that ``leadflow serve`` picks."""

from __future__ import annotations

import socket

import pytest

from cli.server import run
from tests.conftest import Team, snapshot
from tests.server_fixtures import Served, serving

PROTOCOLS = ["h11", "httptools"]


def _protocol(name: str) -> type:
    if name == "h11":
        return run.HeaderTimeoutH11
    from cli.server.protocol import HeaderTimeoutHttpTools

    return HeaderTimeoutHttpTools


def _exchange(served: Served, request: bytes) -> bytes:
    """Send ``request`` and read until the server closes the connection."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        received = b""
        while data := s.recv(65536):
            received += data
    return received


def _tasks(extra: bytes = b"", *, last: bool = True) -> bytes:
    """A request for anna's tasks; the ``last`` one on its connection asks the server to close it after."""
    close = b"Connection: close\r\n" if last else b""
    return b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-user:anna\r\n" + extra + close + b"\r\n"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_both_protocols_keep_the_limits_of_a_request_head(team: Team, protocol: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "http_protocol", lambda: _protocol(protocol))
    monkeypatch.setattr(run, "HEADER_TIMEOUT", 0.5)
    before = snapshot(team.url)
    with serving(team.admin, body_timeout=0.5) as served:
        slow = _exchange(served, b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthoriz")
        assert slow.startswith(b"HTTP/1.1 408 "), slow[:200]
        padding = b"X-Padding: " + b"p" * (run.MAX_HEAD - 200) + b"\r\n"
        assert _exchange(served, _tasks(padding)).startswith(b"HTTP/1.1 200 ")
        # a head still growing past the limit (h11 bounds the bytes it buffers of an incomplete head)
        too_big = _exchange(served, _tasks(padding)[:-2] + b"X-More: " + b"m" * 400)
        assert too_big.startswith(b"HTTP/1.1 400 "), too_big[:200]
        smuggled = _exchange(served, b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-user:anna\r\n"
                                     b"Content-Type: application/json\r\nContent-Length: 4\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert smuggled.startswith(b"HTTP/1.1 400 "), smuggled[:200]
        assert b"both Content-Length and Transfer-Encoding" in smuggled
        assert b"application/problem+json" in smuggled.lower()
        pipelined = _exchange(served, _tasks(last=False) + _tasks())
        assert pipelined.count(b"HTTP/1.1 200 ") == 2, pipelined[:400]
        assert served.call("anna", "GET", "/v1/tasks").status_code == 200  # the server is still serving
    assert snapshot(team.url) == before


def test_leadflow_serve_runs_on_httptools_when_installed() -> None:
    from cli.server.protocol import HeaderTimeoutHttpTools

    assert run.uvicorn_options("127.0.0.1", 8080)["http"] is HeaderTimeoutHttpTools
