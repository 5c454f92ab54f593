"""``leadflow serve``: uvicorn serving the app, with the limits of docs/server.md.

The protocol is httptools' where it is installed (cli/server/protocol.py: parsing in C), else h11's
(``HeaderTimeoutH11``): ``http_protocol``. uvicorn bounds an idle kept-alive connection by time
(``timeout_keep_alive``), and its h11 protocol a request's headers by size (``h11_max_incomplete_event_size``, 16
KiB: past it 400; the httptools one counts them itself), but neither the time a client takes to send its headers:
``_HeadTimer`` closes a connection whose request line and headers are not complete within ``HEADER_TIMEOUT``
seconds (a slow-loris client), answering 408. The body's time limit is the app's (cli/server/app.py,
``BODY_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine import clock

log = logging.getLogger("leadflow.service")

#: Seconds a client has to send a request's line and headers, from its connection or its previous response.
HEADER_TIMEOUT = 10.0
#: Seconds an idle kept-alive connection stays open.
KEEP_ALIVE = 5
#: The largest request head (line and headers), bytes.
MAX_HEAD = 16 * 1024
#: The environment the worker processes read their settings from (``--workers N`` starts them by import).
ENV_DB, ENV_MAX_BODY, ENV_TEST_MODE = "LEADFLOW_DB", "LEADFLOW_SERVER_MAX_BODY", "LEADFLOW_TEST_MODE"


class _HeadTimer:
    """Closes a connection whose next request line and headers do not arrive within ``HEADER_TIMEOUT`` seconds of
    its first bytes (a slow-loris client), answering 408. The protocol says when it waits for a head."""

    _head_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None

    def _waiting_for_head(self) -> bool:
        raise NotImplementedError

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            log.info("closed a connection from %s: no complete request head within %gs",
                     self.client[0] if self.client else "?", HEADER_TIMEOUT)
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()


class HeaderTimeoutH11(_HeadTimer, H11Protocol):
    """uvicorn's h11 protocol (pure Python), closing a connection that is too slow to send a request's headers
    (408). Used where httptools is not installed (``http_protocol``)."""

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # the keep-alive timeout takes over until the next request's first bytes

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def http_protocol() -> type[asyncio.Protocol]:
    """The HTTP/1.1 protocol of ``leadflow serve``: httptools' (llhttp, in C; the server extra installs it) where
    it is installed, else h11's. Both answer alike: a slow head 408, a head over ``MAX_HEAD`` bytes 400, both
    Content-Length and Transfer-Encoding 400 with the app's problem (tests/test_server_protocols.py)."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - the server extra installs it
        return HeaderTimeoutH11
    from cli.server.protocol import HeaderTimeoutHttpTools

    return HeaderTimeoutHttpTools


def from_environment() -> Any:
    """The app of one worker process (uvicorn's factory for ``--workers N``): settings from the environment."""
    from cli.server.app import MAX_BODY, create_app
    from engine.api import Engine

    clock.honour_environment(os.environ.get(ENV_TEST_MODE) == "1")
    engine = Engine.open(os.environ.get(ENV_DB), user="leadflow-server", create=False)  # never an empty file
    return create_app(engine, max_body=int(os.environ.get(ENV_MAX_BODY, MAX_BODY)))


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """uvicorn's settings of ``leadflow serve`` (the throughput benchmark serves its floor app with them too)."""
    return {"host": host, "port": port, "http": http_protocol(), "log_level": "info",
            "access_log": False,  # ours (cli/server/app.py) never writes the query string
            "timeout_keep_alive": KEEP_ALIVE, "h11_max_incomplete_event_size": MAX_HEAD, "server_header": False,
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app does, with --trust-proxy only
            "proxy_headers": False}


def serve(*, url: str | None, host: str, port: int, workers: int, test_clock: bool, max_body: int,
          trust_proxy: bool = False) -> None:
    """Run the server until interrupted (one process, or ``workers`` processes on one port); ``trust_proxy``:
    behind a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed (cli/server/app.py)."""
    import uvicorn

    from cli.server.app import TRUST_PROXY_ENV

    if url:
        os.environ[ENV_DB] = url
    os.environ[TRUST_PROXY_ENV] = "1" if trust_proxy else "0"
    os.environ[ENV_MAX_BODY] = str(max_body)
    if test_clock:
        os.environ[ENV_TEST_MODE] = "1"
    options = uvicorn_options(host, port)
    if workers > 1:
        uvicorn.run("cli.server.run:from_environment", factory=True, workers=workers, **options)
    else:
        uvicorn.run(from_environment(), **options)
