"""``leadflow serve``'s HTTP/1.1 protocol on httptools (llhttp, in C): uvicorn's, with the limits that h11 and
``HeaderTimeoutH11`` give the pure-Python one (cli/server/run.py), so that both answer alike.

Parsing a request in C rather than h11's Python saved leadflow 0.15-0.2 ms of CPU a request and gave the
benchmark's floor 40% more requests a second (docs/performance.md, "Team server throughput"). What uvicorn's
httptools protocol lacks, added here:

- a request head (line and headers) over ``MAX_HEAD`` bytes is refused with 400, as h11 refuses one over its
  ``h11_max_incomplete_event_size``;
- a head that does not arrive within ``HEADER_TIMEOUT`` seconds of its first bytes gets 408 (``_HeadTimer``);
- both Content-Length and Transfer-Encoding: llhttp refuses the request before the app sees it; the answer is the
  app's problem (cli/server/app.py, ``_Guard``), not uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cli.server import run

#: The app's refusal of a request with both length headers (``_Guard`` answers it where h11 reads such a request).
BOTH_LENGTHS = "the request has both Content-Length and Transfer-Encoding; send one"


class HeaderTimeoutHttpTools(run._HeadTimer, HttpToolsProtocol):
    """uvicorn's httptools protocol with a head's time and size limits (``MAX_HEAD``, ``HEADER_TIMEOUT``)."""

    _in_head = True  # waiting for (or reading) a request's head: from the previous response's end to its last header
    _head_bytes = 0

    def _waiting_for_head(self) -> bool:
        return self._in_head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._arm()
            self._head_bytes += len(data)
        # uvicorn's data_received, but a parser error of both length headers is answered as the app answers it
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            text = str(exc)
            if "Content-Length" in text and "Transfer-Encoding" in text:
                self._refuse(BOTH_LENGTHS)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._head_bytes > run.MAX_HEAD and not self.transport.is_closing():
            self.logger.warning("Invalid HTTP request received.")  # h11's words for a head over its limit
            self.send_400_response("Invalid HTTP request received.")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # the keep-alive timeout takes over until the next request's first bytes
        if self.cycle is None or self.cycle.response_complete:  # no pipelined request already read is waiting
            self._in_head, self._head_bytes = True, 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _refuse(self, detail: str) -> None:
        """Answer 400 with the app's problem for ``detail`` and close the connection."""
        from cli.server import problems

        response = problems.answer(400, detail, headers={"Connection": "close"})
        head = [f"HTTP/1.1 400 {HTTPStatus(400).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
        self.transport.write(b"".join(head) + b"\r\n" + bytes(response.body))
        self.transport.close()
