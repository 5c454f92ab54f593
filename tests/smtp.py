"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the outbox tests."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = b""  # the message as it came over the wire (its headers' encoding)


@dataclass
class Inbox:
    """The aiosmtpd handler: accepts everything, except what ``refuse`` says to refuse."""

    received: list[Received] = field(default_factory=list)
    #: address -> an SMTP reply such as "550 5.1.1 no such user" given to RCPT TO
    refuse: dict[str, str] = field(default_factory=dict)
    #: called with each message before the server answers 250 (e.g. to kill the sender)
    on_data: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # as a mail client would read it: line ends as the platform's, not SMTP's CRLF
        raw = envelope.original_content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(raw, policy=policy.default)
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), message,  # type: ignore[arg-type]
                        envelope.original_content)
        with self.lock:
            self.received.append(item)
        if self.on_data is not None:
            self.on_data(item)
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        with self.lock:
            return [str(r.message["Message-ID"]) for r in self.received]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """Start and stop an SMTP server on a fixed loopback port (so a test can take it down and up)."""

    def __init__(self, inbox: Inbox, port: int, **options: Any):
        self.inbox = inbox
        self.port = port
        self.options = options
        self._controller: Controller | None = None

    def start(self) -> Server:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True,
                                      **self.options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
