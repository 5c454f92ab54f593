"""The CLI as a client of a team server: ``app.engine`` when a server is configured.

``RemoteEngine`` has the engine's grouped surface (``eng.leads.advance(7, "send_offer")``), generated from the
one table of operations (cli/operations.py): each call becomes that operation's HTTP request, and its answer is
the dict or list the engine would have returned, so the commands print the same whether they run here or there.
A refusal comes back as ``RemoteError`` with the engine's own message, which cli/main.py turns into the same
``Error: ...`` line and exit code as a local refusal; so does a server that cannot be reached or fails.

Languages (docs/i18n.md): every request says the local choice (``LEADFLOW_LANG``, the OS locale) in
``Accept-Language``; the server refuses in the user's own language, else that one, and names it in
``Content-Language``, which the CLI then speaks too, as it does locally once the engine knows who acts. A command
printing for a person (not ``--json``) asks for the labels in that language too (``X-Leadflow-Labels``).

The remote path stays light: the standard library (``http.client``, ``json``) and the operation table only; no
engine module, no SQLAlchemy (tests/test_imports.py checks it).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    import http.client

    from cli.operations import Operation

#: Seconds to wait for the server to connect and then for each answer; a long import or rotation answers
#: within it on any server we support (LEADFLOW_TIMEOUT changes it).
DEFAULT_TIMEOUT = 300.0
USER_AGENT = "leadflow-cli"


class RemoteError(Exception):
    """The server refused a request (``status`` 4xx, its message as the engine wrote it), failed (5xx), or could
    not be reached (``status`` None). ``message`` is the one line the user sees; the exit code is 1."""

    def __init__(self, message: str, *, status: int | None = None, problem: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem = dict(problem or {})


def _timeout() -> float:
    try:
        return float(os.environ.get("LEADFLOW_TIMEOUT", "") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Server:
    """One team server at ``url`` (``https://crm.example.pl``), reached with ``token`` (a personal access token,
    sent as ``Authorization: Bearer``; None for logging in)."""

    url: str
    token: str | None = None
    timeout: float = field(default_factory=_timeout)
    _connection: http.client.HTTPConnection | None = field(default=None, repr=False)

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: bytes | None = None,
                content_type: str | None = None, headers: Mapping[str, str] | None = None,
                token: str | None = None) -> Answer:
        """``method path?query`` with ``body``; a 2xx answer, else ``RemoteError`` (never a traceback)."""
        from cli.operations import LABELS_HEADER, READER_LABELS
        from engine import i18n

        target = urlsplit(self.url).path + path + (f"?{urlencode(query)}" if query else "")
        sent = {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Language": i18n.language(),
                **({LABELS_HEADER: READER_LABELS} if _for_a_person() else {}), **(headers or {})}
        bearer = token or self.token
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        if content_type:
            sent["Content-Type"] = content_type
        answer = self._exchange(method, target, body, sent)
        spoken = i18n.normalize(answer.headers.get("content-language"))
        if spoken:  # the user's own language, as the server knows it: the rest of the command speaks it too
            i18n.set_user_language(spoken)
        if answer.status >= 400:
            raise self._refusal(answer, method, path)
        return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _exchange(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        import http.client
        import ssl

        from engine.i18n import _

        try:
            conn = self._connect()
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except ssl.SSLError as exc:  # before OSError: it is one
            self.close()
            reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
            raise RemoteError(_("cannot talk to the server {url} securely: TLS failed ({reason}); check the "
                                "address, or the CA certificates (SSL_CERT_FILE)", url=self.url,
                                reason=reason)) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RemoteError(_("cannot reach the server {url}: {reason}", url=self.url,
                                reason=_reason(exc))) from None
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def _connect(self) -> http.client.HTTPConnection:
        import http.client

        if self._connection is None:
            parts = urlsplit(self.url)
            if parts.scheme == "https":
                self._connection = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                                               timeout=self.timeout)
            else:
                self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        return self._connection

    def _refusal(self, answer: Answer, method: str, path: str) -> RemoteError:
        """The server's answer to a request it refused or failed, as one line for the user (the server's words in
        the language it answered in, the rest in the CLI's)."""
        from engine.i18n import _
        problem = _problem(answer)
        detail = problem.get("detail") or problem.get("title")
        if isinstance(detail, list):  # a framework's validation list: [{"loc": [...], "msg": "..."}]
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        status = answer.status
        if status >= 500:
            what = f": {detail}" if detail and problem.get("detail") else ""
            message = _("the server {url} failed to answer {method} {path} (HTTP {status}){what}; nothing was "
                        "changed by this command unless the server says so (ask its admin: the server's log has "
                        "the details)", url=self.url, method=method, path=path, status=status, what=what)
        elif status == 401 and path.endswith("/password") and detail:
            message = str(detail)  # the password the command gave was wrong, not the login
        elif status == 401:
            message = _("{detail} (server {url}); log in with: leadflow login {url}",
                        detail=detail or _("not logged in"), url=self.url)
        elif status == 429:
            retry = answer.headers.get("retry-after")
            message = str(detail or _("too many requests")) + (
                _("; try again in {seconds} seconds", seconds=retry) if retry else "")
        elif detail:
            message = str(detail)
        else:
            message = _("the server {url} refused {method} {path} (HTTP {status})", url=self.url, method=method,
                        path=path, status=status)
        return RemoteError(message, status=status, problem=problem)


def _for_a_person() -> bool:
    """Whether the command being run prints for a person: not ``--json`` nor ``--csv``, which stay the same in
    every language."""
    import click

    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json") or ctx.params.get("as_csv"):
            return False
        ctx = ctx.parent
    return True


def _problem(answer: Answer) -> dict[str, Any]:
    """An RFC 9457 problem (or any JSON object) from an error answer; {} for a proxy's HTML page."""
    if "json" not in answer.headers.get("content-type", ""):
        return {}
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


# -- the engine's surface, from the table of operations --------------------------------------------------------

#: Keywords of the local engine that have no meaning across the wire: a callback (import's progress bar).
LOCAL_ONLY_KEYWORDS = frozenset({"progress"})


class RemoteEngine:
    """``app.engine`` when the CLI works through a server: ``eng.<service>.<method>(...)`` for every operation of
    cli/operations.py, with the engine's arguments (positional in the engine's order, or by keyword), returning
    what the engine returns."""

    def __init__(self, server: Server):
        self.server = server

    def __getattr__(self, service: str) -> RemoteService:
        from cli.operations import OPERATIONS

        if service.startswith("_") or not any(op.service == service for op in OPERATIONS):
            raise AttributeError(f"the team server has no operations of {service!r}")
        remote = RemoteService(self.server, service)
        setattr(self, service, remote)
        return remote

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Each call is a request of its own, committed by the server before it answers: there is no transaction
        across calls. The commands that need one (process load of several files) check everything first."""
        yield

    def close(self) -> None:
        self.server.close()


class RemoteService:
    def __init__(self, server: Server, service: str):
        self.server = server
        self.service = service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        from cli.operations import BY_NAME, PAGED

        paged = PAGED.get(f"{self.service}.{method}")
        if paged is not None:  # a page: the route that answers its list, with the rest in headers
            return functools.partial(page, self.server, paged, BY_NAME[f"{self.service}.{method}"])
        op = BY_NAME.get(f"{self.service}.{method}")
        if op is None or method.startswith("_"):
            raise AttributeError(f"the team server has no operation {self.service}.{method}")

        def call(*args: Any, **kwargs: Any) -> Any:
            if op.media == "text/csv":  # as the engine: the CSV goes to the first argument, the count comes back
                out, *rest = args or (kwargs.pop("out"),)
                return write_csv(invoke(self.server, op, bind(op, tuple(rest), kwargs)), out)
            return invoke(self.server, op, bind(op, args, kwargs))

        call.__name__ = method
        call.__doc__ = op.summary
        return call


def bind(op: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, as the engine's method would bind them (the table lists its parameters in
    the method's order); a wrong call is a TypeError, as it would be locally."""
    names = [p.name for p in op.params if p.where != "client"]
    if len(args) > len(names):
        raise TypeError(f"{op.name}() takes {len(names)} arguments but {len(args)} were given")
    values = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if value is None and name not in names:
            continue  # an option of the local engine that was not given (import's rejects file)
        if name in values:
            raise TypeError(f"{op.name}() got multiple values for argument {name!r}")
        if name not in names and name not in LOCAL_ONLY_KEYWORDS and not (name == "if_version" and op.versioned):
            raise TypeError(f"{op.name}() got an unexpected keyword argument {name!r}")
        values[name] = value
    return values


def page(server: Server, op: Operation, declared: Operation, **values: Any) -> dict[str, Any]:
    """The engine's page (``tasks.page``: ``{total, offset, limit, tasks, next}``) from ``op``'s route, which
    answers the list and says the rest in ``X-Total-Count`` and ``Link``; ``declared`` is the page's own
    operation, whose defaults apply (a page of 20 rows unless ``limit`` says otherwise)."""
    values = {p.name: p.default for p in declared.params if p.default is not None} | values
    answer = send(server, op, bind(op, (), values))
    rows = answer.json()
    offset = values.get("offset") or 0
    total = answer.headers.get("x-total-count", "")
    return {"total": int(total) if total.isdigit() else offset + len(rows), "offset": offset,
            "limit": values.get("limit") or len(rows), op.paged_items: rows, "next": _next_after(answer)}


def _next_after(answer: Answer) -> str | None:
    """The ``after`` of the ``Link: <...>; rel="next"`` header (RFC 8288), None on the last page."""
    from urllib.parse import parse_qs

    for link in answer.headers.get("link", "").split(","):
        target, _, params = link.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            after = parse_qs(urlsplit(target.strip().strip("<>")).query).get("after")
            return after[0] if after else None
    return None


def invoke(server: Server, op: Operation, values: dict[str, Any]) -> Any:
    """Send ``op`` with ``values`` (by the engine's names) and return the engine's result."""
    answer = send(server, op, values)
    if op.media == "text/csv":
        return answer
    result = answer.json()
    if op.single_if is not None and values.get(op.single_if) is not None:
        return [result]  # the server answers the one item; the engine returns it in a list
    return result


def send(server: Server, op: Operation, values: dict[str, Any]) -> Answer:
    """``op``'s request with ``values`` (by the engine's names), and the server's answer."""
    from cli.operations import query_text, route

    query: dict[str, str] = {}
    body: dict[str, Any] = {}
    payload: bytes | None = None
    content_type: str | None = None
    for p in op.params:
        if p.where in ("path", "client"):
            continue
        value = values.get(p.name)
        if value is None and p.none_value is not None and p.name in values:
            value = p.none_value
        if value is None:
            continue
        if p.kind == "file":
            content = _read_file(value)
            if op.body == "file" and p.where == "body":
                payload, content_type = content, "application/octet-stream"
                query.setdefault("filename", str(value))
                continue
            value = content.decode("utf-8", errors="replace")
        if p.where == "query":
            query[p.key] = query_text(value)
        else:
            body[p.key] = value
    if "if_version" in values and values["if_version"] is not None:
        body["if_version"] = values["if_version"]
    if payload is None and (body or op.http in ("POST", "PATCH")):
        payload, content_type = json.dumps(body).encode(), "application/json"
    path = route(op, **{p.name: values[p.name] for p in op.placed("path")})
    return server.request(op.http, path, query=query, body=payload, content_type=content_type)


def _read_file(path: Any) -> bytes:
    """The content of a file the command names, sent to the server (which has no access to this machine)."""
    import click

    from engine.i18n import _

    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise click.ClickException(_("{path} is a folder, not a file", path=path)) from None
    except OSError as exc:
        raise click.ClickException(_("cannot read {path}: {strerror}", path=path,
                                     strerror=exc.strerror or exc)) from None


def write_csv(answer: Answer, out: IO[str]) -> int:
    """An export's CSV (an answer of a ``text/csv`` operation) to ``out``; returns how many leads it holds."""
    text = answer.body.decode("utf-8")
    out.write(text)
    count = answer.headers.get("x-leadflow-count")
    if count is not None and count.isdigit():
        return int(count)
    import csv
    import io

    rows = sum(1 for _ in csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";" if _excel(text) else ","))
    return max(rows - 1, 0)


def _excel(text: str) -> bool:
    return text.startswith("\ufeff")
