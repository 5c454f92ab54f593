"""Sending mail over SMTP (``smtplib``): the configuration, the message, and what a failure means.

Configuration comes from a TOML file named by ``LEADFLOW_SMTP_CONFIG`` (an ``[smtp]`` table) and from
environment variables, which win over the file:

=========================  ===========  ==================================================
variable                   file key     meaning
=========================  ===========  ==================================================
LEADFLOW_SMTP_HOST         host         the server (required)
LEADFLOW_SMTP_PORT         port         default 587 (starttls), 465 (ssl), 25 (none)
LEADFLOW_SMTP_SECURITY     security     starttls (default), ssl, or none
LEADFLOW_SMTP_USER         user         log in with this user and
LEADFLOW_SMTP_PASSWORD     password     this password (or LEADFLOW_SMTP_PASSWORD_FILE)
LEADFLOW_SMTP_FROM         from         the sender, e.g. ``Sales <sales@example.com>`` (required)
LEADFLOW_SMTP_TIMEOUT      timeout      seconds to wait for the server, default 30
LEADFLOW_SMTP_CA_FILE      ca_file      trust this CA (a private server's certificate)
=========================  ===========  ==================================================

A failure is *transient* (the server is down or says "try later": 4xx) or *permanent* (5xx: this
message will never be accepted); the outbox retries the first and gives up on the second.
"""

from __future__ import annotations

import base64
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from engine.errors import InvalidInputError
from engine.i18n import N_, Message

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
KEYS = ("host", "port", "security", "user", "password", "password_file", "from", "timeout", "ca_file")


class SendError(Exception):
    """A message that was not accepted; ``permanent`` when retrying cannot help, ``connection`` when the
    server itself could not be used (so no other message can go now either)."""

    def __init__(self, message: str, *, permanent: bool = False, connection: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.connection = connection


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    user: str | None
    password: str | None
    sender: str
    timeout: float
    ca_file: str | None = None

    @property
    def sender_name(self) -> str:
        return parseaddr(self.sender)[0] or "leadflow"

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def domain(self) -> str:
        """The right-hand side of our Message-IDs: the sender's domain."""
        return self.sender_address.rpartition("@")[2]

    @classmethod
    def from_environment(cls) -> SmtpConfig:
        """The configuration, or ``InvalidInputError`` naming what is missing or wrong."""
        values: dict[str, Any] = {}
        config_file = os.environ.get("LEADFLOW_SMTP_CONFIG", "").strip()
        if config_file:
            values.update(_read_file(Path(config_file)))
        for key in KEYS:
            env = os.environ.get(f"LEADFLOW_SMTP_{key.upper()}")
            if env is not None and env.strip():
                values[key] = env.strip()
        where = Message(N_(" (in {file} or the environment)"), file=config_file) if config_file else ""
        host = str(values.get("host", "")).strip()
        if not host:
            raise InvalidInputError(N_("SMTP is not configured: set LEADFLOW_SMTP_HOST{where}, and LEADFLOW_SMTP_FROM; "
                                       "see docs/automation.md#smtp"), where=where)
        security = str(values.get("security", "starttls")).strip().lower()
        if security not in SECURITY:
            raise InvalidInputError(N_("SMTP security {security!r} is not one of: {allowed}"), security=security,
                                    allowed=', '.join(SECURITY))
        port = _number(values.get("port", DEFAULT_PORTS[security]), "SMTP port", int, 1, 65535)
        timeout = _number(values.get("timeout", 30), "SMTP timeout", float, 1, 600)
        sender = str(values.get("from", "")).strip()
        address = parseaddr(sender)[1]
        if not sender or "@" not in address or any(c in sender for c in "\r\n"):
            raise InvalidInputError(N_("SMTP sender (LEADFLOW_SMTP_FROM) {sender!r} is not an address such as "
                                       "'Sales <sales@example.com>'"), sender=sender)
        password = values.get("password")
        if password is None and values.get("password_file"):
            try:
                password = Path(str(values["password_file"])).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInputError(N_("cannot read the SMTP password file {password_file}: "
                                           "{reason}"), password_file=values['password_file'],
                                        reason=getattr(exc, 'strerror', None) or exc) from None
        user = str(values["user"]) if values.get("user") else None
        if (user is None) != (password is None):
            raise InvalidInputError("SMTP login needs both LEADFLOW_SMTP_USER and LEADFLOW_SMTP_PASSWORD")
        ca_file = str(values["ca_file"]) if values.get("ca_file") else None
        if ca_file and not Path(ca_file).is_file():
            raise InvalidInputError(N_("SMTP CA file {ca_file} does not exist"), ca_file=ca_file)
        return cls(host=host, port=port, security=security, user=user, password=str(password) if password else None,
                   sender=sender, timeout=timeout, ca_file=ca_file)


def _read_file(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(N_("cannot read the SMTP configuration {path}: {strerror}"), path=path,
                                strerror=exc.strerror or exc) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(N_("the SMTP configuration {path} is not valid TOML: {exc}"), path=path,
                                exc=exc) from None
    table = data.get("smtp")
    if not isinstance(table, dict):
        raise InvalidInputError(N_("the SMTP configuration {path} has no [smtp] table"), path=path)
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise InvalidInputError(N_("the SMTP configuration {path} has unknown keys: {unknown}; "
                                   "allowed: {keys}"), path=path, unknown=', '.join(unknown), keys=', '.join(KEYS))
    return table


def _number(value: Any, what: str, kind: type[int] | type[float], low: float, high: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise InvalidInputError(N_("{what} {value!r} is not a number"), what=what, value=value) from None
    if isinstance(value, bool) or not low <= number <= high:
        raise InvalidInputError(N_("{what} {value!r} is not between {low:g} and {high:g}"), what=what, value=value,
                                low=low, high=high)
    return number


def build_message(config: SmtpConfig, *, to: list[tuple[str, str]], subject: str, body: str, message_id: str,
                  date: str, headers: dict[str, str]) -> EmailMessage:
    """A UTF-8 plain-text message; ``ValueError`` if an address or the subject cannot be a header."""
    msg = EmailMessage()
    msg["From"] = Address(config.sender_name, addr_spec=config.sender_address)
    msg["To"] = [Address(name, addr_spec=address) for name, address in to]
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a robot
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(body)
    return msg


class Sender:
    """One SMTP session, opened on the first message and reused for the next ones."""

    def __init__(self, config: SmtpConfig):
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        context = ssl.create_default_context(cafile=c.ca_file)
        smtp: smtplib.SMTP | None = None
        try:
            if c.security == "ssl":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=context)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
                if c.security == "starttls":
                    smtp.starttls(context=context)
            if c.user is not None and c.password is not None:
                _login(smtp, c.user, c.password)
            return smtp
        except BaseException:
            if smtp is not None:
                smtp.close()
            raise

    def _open(self) -> smtplib.SMTP:
        c = self.config
        where = f"{c.host}:{c.port}"
        try:
            return self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"the SMTP server {where} refused the login of {c.user}: {_reply(exc)}",
                            connection=True) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"the SMTP server {where} cannot be used as configured: {exc}", connection=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"cannot connect to the SMTP server {where}: {_describe(exc)}", connection=True) from None

    def send(self, msg: EmailMessage) -> list[str]:
        """Hand ``msg`` to the server; returns the refused recipients (when some were accepted)."""
        if self._smtp is None:
            self._smtp = self._open()
        try:
            refused = self._smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{addr}: {code} {_text(text)}" for addr, (code, text) in exc.recipients.items())
            raise SendError(f"the server refused every recipient ({detail})",
                            permanent=all(code >= 500 for code in codes)) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, ...
            raise SendError(f"the server refused the message: {_reply(exc)}", permanent=exc.smtp_code >= 500) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"the server cannot take this message: {exc}", permanent=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SendError(f"the connection to the SMTP server broke: {_describe(exc)}", connection=True) from None
        return sorted(refused)

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """``smtp.login``, which sends ASCII only; a non-ASCII user or password (``hasło``) goes as AUTH PLAIN,
    whose RFC 4616 encoding is UTF-8."""
    if (user + password).isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPNotSupportedError("AUTH PLAIN, needed for a login with non-ASCII characters")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip()
