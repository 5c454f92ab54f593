"""The server's ASGI app: one route per operation of cli/operations.py, each parsing its request, calling ONE
engine method as the authenticated caller, and answering the JSON the CLI's ``--json`` prints.

Nothing here decides a rule: who the caller is comes from cli/server/identity.py, every refusal is the
engine's (cli/server/problems.py maps its kind to a status), and the routes are generated from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cli import operations
from cli.operations import Operation, Param
from cli.server import intake, language, problems
from cli.server.identity import Caller, Identify
from cli.server.problems import Problem
from engine import clock, i18n
from engine.errors import BatchRefused, ConcurrentUpdateError, LeadflowError, NotFoundError, PermissionDenied
from engine.i18n import N_

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger("leadflow.service")
access_log = logging.getLogger("leadflow.service.access")

STATIC = Path(__file__).resolve().parent / "static"
#: The header every response carries while the server honours LEADFLOW_NOW (``leadflow serve --test-clock``).
TEST_CLOCK_HEADER = "X-Leadflow-Test-Clock"
#: Set to 1 (``leadflow serve --trust-proxy``) when a reverse proxy sets X-Forwarded-For and X-Forwarded-Proto.
TRUST_PROXY_ENV = "LEADFLOW_TRUST_PROXY"
#: Worker threads that run the API's engine calls at once (docs/server.md, "Running it"): more only add switching
#: between threads (one process runs Python on one core at a time, SQLite writes one transaction at a time), a
#: sixth to a quarter of a request's CPU with the 40 of the shared pool at 32 clients (docs/performance.md).
ENGINE_THREADS = 4
#: On SQLite, the calls that change leads (``Operation.changes_lead``, without a file: a lead's edits, moves,
#: closings, the web forms' intake) run one at a time on a thread of their own: the database takes one writer at a
#: time, and with four threads the others only waited for its lock and handed Python's lock around (a third more
#: CPU a request at 32 clients, docs/performance.md "Session 10"). PostgreSQL writes several at once: its calls
#: keep ``ENGINE_THREADS``.
SQLITE_LEAD_WRITERS = 1
#: The worker threads' pools: reading requests, the other requests, the calls that change leads.
Pool = Literal["read", "write", "lead"]
#: Defaults of the limits (docs/server.md): a JSON body, an uploaded file (a CSV to import, a process file), and
#: how long a client may take to send its body.
MAX_BODY = 64 * 1024
MAX_UPLOAD = 50 * 1024 * 1024
BODY_TIMEOUT = 30.0

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_SAFE_NAME = re.compile(r"[^\w.\-]+")


def create_app(engine: Engine, *, max_body: int = MAX_BODY, max_upload: int = MAX_UPLOAD,
               body_timeout: float = BODY_TIMEOUT, identify: Identify | None = None, web: bool = True,
               trust_proxy: bool | None = None) -> FastAPI:
    """The team server's app over ``engine`` (an ``engine.api.Engine``; each request acts as its caller), with the
    web app's pages (cli/web). ``trust_proxy`` (default: ``LEADFLOW_TRUST_PROXY=1``, which ``leadflow serve
    --trust-proxy`` sets): the server is behind a reverse proxy, whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` say the client's address (rate limits, logs) and whether it came over HTTPS (the Secure
    cookie); without it both headers are ignored, as anyone can send them."""
    if trust_proxy is None:
        trust_proxy = os.environ.get(TRUST_PROXY_ENV) == "1"
    app = FastAPI(
        title="leadflow",
        version="1",
        description="The team server's API: every operation of the leadflow CLI, under /v1, with the JSON its "
                    "--json prints (docs/server.md). Authenticate with 'Authorization: Bearer <token>'. "
                    "Refusals are RFC 9457 problems (application/problem+json).",
        docs_url=None, redoc_url=None,
    )
    who = identify if identify is not None else Identify(engine)
    lead_writers = SQLITE_LEAD_WRITERS if engine.db.dialect.name == "sqlite" else ENGINE_THREADS
    limits = _Limits(max_body, max_upload, body_timeout, _Threads(ENGINE_THREADS, lead_writers))
    groups: dict[tuple[str, str], list[Operation]] = {}
    for op in operations.OPERATIONS:
        if _available(engine, op):
            groups.setdefault((op.http, op.url), []).append(op)
    # literal segments before placeholders: /v1/leads/bulk/advance is not lead "bulk" advancing
    for (http, url), ops in sorted(groups.items(), key=lambda item: item[0][1].count("{")):
        first = ops[0]
        app.add_api_route(url, _endpoint(engine, who, ops, limits), methods=[http], name=first.name,
                          operation_id=first.name, summary=first.summary, description=_description(ops),
                          status_code=first.status, responses=_responses(ops), openapi_extra=_openapi(ops))
    _install_errors(app)
    _install_docs(app)
    _install_security(app)
    if web:
        from cli.web import mount

        mount(app, engine, trust_proxy=trust_proxy)
    app.add_middleware(_Guard)
    if trust_proxy:
        app.add_middleware(_Forwarded)
    return app


def _available(engine: Engine, op: Operation) -> bool:
    """An operation whose engine method exists (``auth.login`` arrives with logging in)."""
    try:
        service = getattr(engine, op.service)
    except AttributeError:
        return False
    return hasattr(type(service), op.method)


# -- one operation's endpoint ------------------------------------------------------------------------------

class _Threads:
    """Runs the API's engine calls on worker threads, at most ``size`` at once for reading requests (GET) and as
    many for the others, so that writers waiting for SQLite's write lock (another process's long import) never hold
    up reads, and at most ``lead_writers`` for the calls that change leads (``SQLITE_LEAD_WRITERS``); requests
    beyond wait their turn in the event loop (the web app's pages keep the shared pool)."""

    def __init__(self, size: int, lead_writers: int):
        self.sizes = {"read": size, "write": size, "lead": lead_writers}
        self.limiters: dict[tuple[asyncio.AbstractEventLoop, str], CapacityLimiter] = {}

    async def run(self, kind: Pool, func: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()  # a limiter waits on one loop's futures (each test client has its loop)
        limiter = self.limiters.get((loop, kind))
        if limiter is None:
            self.limiters = {key: held for key, held in self.limiters.items() if not key[0].is_closed()}
            limiter = self.limiters[(loop, kind)] = CapacityLimiter(self.sizes[kind])
        return await to_thread.run_sync(func, *args, limiter=limiter)


class _Limits:
    def __init__(self, max_body: int, max_upload: int, body_timeout: float, threads: _Threads):
        self.max_body, self.max_upload, self.body_timeout = max_body, max_upload, body_timeout
        self.threads = threads


def _endpoint(engine: Engine, who: Identify, ops: list[Operation],
              limits: _Limits) -> Callable[[Request], Awaitable[Response]]:
    # An operation with a caller and no file is served in ONE trip to the thread pool: who calls, what they sent,
    # and the engine's answer (each trip is a wake-up of a worker thread and of the event loop: a tenth of a
    # one-lead request). Its body, at most max_body bytes, is read first; a body over the limit or too slow is
    # answered after the credentials are checked, as in two trips, so that no refusal tells a stranger more.
    one_trip = ops[0].audience != "anyone" and not any(_takes_files(o) for o in ops)
    read = ops[0].http == "GET"
    kind: Pool = (
        "read" if read else "lead" if one_trip and all(o.changes_lead for o in ops) else "write")

    async def endpoint(request: Request) -> Response:
        if one_trip:
            body = await _read_or_refusal(request, limits.max_body, limits.body_timeout)
            acting, op, kwargs, answer, reader = await limits.threads.run(kind, _identified_call, engine, who, ops,
                                                                          request, body)
            return await _answer(acting, op, kwargs, answer, reader, None, request)
        caller: Caller | None = None
        op = ops[0]
        if op.audience != "anyone":
            caller = await limits.threads.run(kind, functools.partial(who, request, read=read))
            op = _for_caller(ops, caller)
            who.authorize(caller, op)
        acting = caller.engine if caller is not None else engine
        with _upload_folder(op) as folder:
            raw = await _read(request, limits.max_upload if op.body == "file" else limits.max_body,
                              limits.body_timeout)
            kwargs = _arguments(request, op, caller, raw, Path(folder) if folder else None)
            try:
                result, reader = await limits.threads.run(kind, _call, acting, op, kwargs)
            except LeadflowError as exc:
                result, reader = exc, None
            return await _answer(acting, op, kwargs, result, reader, folder, request)

    return endpoint


def _identified_call(engine: Engine, who: Identify, ops: list[Operation], request: Request,
                     body: bytes | Problem) -> tuple[Engine, Operation, dict[str, Any], Any, str | None]:
    """On a worker thread: the caller, their operation's arguments, its result and the caller's language, or the
    engine's refusal of the call as the result (a refusal of the caller, or of what they sent, is raised)."""
    caller = who(request, read=ops[0].http == "GET")
    op = _for_caller(ops, caller)
    who.authorize(caller, op)
    if isinstance(body, Problem):
        raise body
    kwargs = _arguments(request, op, caller, body, None)
    try:
        result, reader = _call(caller.engine, op, kwargs)
    except LeadflowError as exc:
        return caller.engine, op, kwargs, exc, None
    return caller.engine, op, kwargs, result, reader


async def _answer(acting: Engine, op: Operation, kwargs: dict[str, Any], result: Any, reader: str | None,
                  folder: str | None, request: Request) -> Response:
    """The operation's response: its result (its labels in ``reader``'s language when a person asks for them), or
    its refusal as a problem in the caller's language (``folder``: the upload folder, left out of the text)."""
    if isinstance(result, ConcurrentUpdateError):
        return await _stale(acting, result, _language(request, result))
    if isinstance(result, PermissionDenied):
        return await _hidden_or_denied(acting, op, kwargs, result, _language(request, result))
    if isinstance(result, BatchRefused):
        result = BatchRefused(result.params["verb"], result.params["leads"],
                              await _unseen_hidden(acting, result.refused))
    elif isinstance(result, dict) and isinstance(result.get("refused"), list) and op.service == "bulk":
        result = {**result, "refused": await _unseen_hidden(acting, result["refused"])}
    if isinstance(result, LeadflowError):
        return problems.of_engine(result, language=_language(request, result),
                                  hide=folder + os.sep if folder else None)
    if language.wants_labels(request.headers):  # a person reads it: the labels in their language
        code = language.negotiate(reader, request.headers.get("accept-language"))
        response = _respond(op, kwargs, language.labels_in(result, code), request)
        response.headers["Content-Language"] = code
        return response
    return _respond(op, kwargs, result, request)


def _takes_files(op: Operation) -> bool:
    """Whether the operation takes a file (an upload, a process file's text): it gets an upload folder."""
    return op.body == "file" or any(p.kind == "file" for p in op.params)


def _upload_folder(op: Operation) -> contextlib.AbstractContextManager[str | None]:
    """A temporary folder for the files an operation takes, removed after the request; none for the others
    (making and removing one cost a twentieth of a one-lead request)."""
    if _takes_files(op):
        return tempfile.TemporaryDirectory(prefix="leadflow-upload-")
    return contextlib.nullcontext(None)


def _for_caller(ops: list[Operation], caller: Caller) -> Operation:
    """The operation of a route that two audiences share (POST /v1/leads: a person's add, a web form's submit)."""
    for op in ops:
        if caller.may_call(op):
            return op
    return ops[0]


def _call(engine: Engine, op: Operation, kwargs: dict[str, Any]) -> tuple[Any, str | None]:
    """The engine's result, and the language of the user it acted for (their refusal carries it too)."""
    service = getattr(engine, op.service)
    try:
        if op.paged_by is not None:  # the page, whose list is the answer; no limit is every row, as the list was
            return getattr(service, op.paged_by)(**{"limit": None, **kwargs}), i18n.user_language()
        method = getattr(service, op.method)
        if op.body == "intake":
            return method(kwargs["values"], process=kwargs.get("process")), i18n.user_language()
        return method(**kwargs), i18n.user_language()
    except LeadflowError as exc:
        language.remember(exc)
        raise


def _language(request: Request, exc: BaseException) -> str:
    return language.of_error(exc, request.headers.get("accept-language"))


async def _stale(engine: Engine, exc: ConcurrentUpdateError, code: str) -> Response:
    """409 with the lead as it is now, so the client can show it and decide again."""
    extra: dict[str, Any] = {}
    if exc.lead_id is not None:
        extra["current_version"] = exc.current_version
        with contextlib.suppress(LeadflowError):
            extra["lead"] = await run_in_threadpool(engine.leads.get, exc.lead_id)
    headers = {"ETag": f'"{exc.current_version}"'} if exc.current_version is not None else None
    response = problems.of_engine(exc, language=code, extra=extra)
    if headers:
        response.headers.update(headers)
    return response


async def _hidden_or_denied(engine: Engine, op: Operation, kwargs: dict[str, Any], exc: PermissionDenied,
                            code: str) -> Response:
    """403, unless the refused lead or client is one the caller may not see: then 404, as for one that does not
    exist, so that nobody learns which ids exist by trying them. Whether they may see it is the engine's
    ``leads.get`` or ``clients.get``, as them."""
    lead_id = kwargs.get("lead_id")
    if isinstance(lead_id, int) and not await _may_see(engine, lead_id):
        return problems.of_engine(_missing(lead_id), language=code)
    client_id = kwargs.get("client_id")
    if (isinstance(client_id, int) and exc.params.get("client") == client_id
            and not await _may_see(engine, client_id, engine.clients.get)):
        return problems.of_engine(NotFoundError(N_("client {client} does not exist"), client=client_id),
                                  language=code)
    return problems.of_engine(exc, language=code)


async def _unseen_hidden(engine: Engine, refused: list[Any]) -> list[Any]:
    """A bulk call's refused leads, each the caller may not see worded as a missing one (``_hidden_or_denied``):
    otherwise its 'may not see lead N' beside 'lead M does not exist' would tell which ids exist."""
    return [{"lead_id": r["lead_id"], "error": NotFoundError.__name__, "reason": str(_missing(r["lead_id"]))}
            if r["error"] == PermissionDenied.__name__ and not await _may_see(engine, r["lead_id"]) else r
            for r in refused]


async def _may_see(engine: Engine, record_id: int, get: Callable[[int], Any] | None = None) -> bool:
    """Whether the caller may see lead ``record_id`` (or, with ``get``, what it reads): the engine's ``leads.get``
    as them."""
    try:
        await run_in_threadpool(get or engine.leads.get, record_id)
    except (PermissionDenied, NotFoundError):
        return False
    except LeadflowError:
        pass
    return True


def _missing(lead_id: int) -> NotFoundError:
    return NotFoundError(N_("lead {lead} does not exist"), lead=lead_id)


def _respond(op: Operation, kwargs: dict[str, Any], result: Any, request: Request) -> Response:
    if op.paged_by is not None:
        return _page(op, kwargs, result, request)
    if op.body == "intake":
        body = intake.created(result)
        return JSONResponse(body, status_code=op.status, headers={"Location": body["url"]})
    if op.media == "text/csv":
        return Response(kwargs["out"].getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"X-Leadflow-Count": str(result)})
    if op.single_if is not None and kwargs.get(op.single_if) is not None and isinstance(result, list):
        result = result[0] if result else None
    headers: dict[str, str] = {}
    if isinstance(result, dict) and isinstance(result.get("version"), int) and "stage" in result:
        headers["ETag"] = f'"{result["version"]}"'
        if op.status == 201:
            headers["Location"] = f"{operations.API_PREFIX}/leads/{result['id']}"
    elif op.status == 202 and isinstance(result, dict) and isinstance(result.get("id"), int):
        headers["Location"] = f"{op.url}/{result['id']}"  # a job started: where its progress is read
    return JSONResponse(result, status_code=op.status, headers=headers or None)


def _page(op: Operation, kwargs: dict[str, Any], page: dict[str, Any], request: Request) -> Response:
    """A page's list as the plain array the route has always answered; its length in all and the next page's
    address (the same query with ``after``, RFC 8288) in headers."""
    headers = {"X-Total-Count": str(page["total"])}
    if page.get("next"):
        query = {p.key: operations.query_text(kwargs[p.name]) for p in op.placed("query")
                 if p.name not in ("offset", "after") and kwargs.get(p.name) is not None}
        link = f"{request.scope.get('root_path', '')}{op.url}?{urlencode({**query, 'after': page['next']})}"
        headers["Link"] = f'<{link}>; rel="next"'
    return JSONResponse(page[op.paged_items], status_code=op.status, headers=headers)


# -- parsing a request into the engine method's arguments -----------------------------------------------------

def _arguments(request: Request, op: Operation, caller: Caller | None, raw_body: bytes,
               folder: Path | None) -> dict[str, Any]:
    """The engine method's arguments from the request's path, query, body (``raw_body``, read already) and
    credentials; 422 with every problem at once."""
    errors: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {}
    chosen_none: set[str] = set()
    for p in op.placed("path"):
        kwargs[p.name] = _convert(p, request.path_params.get(p.name), errors)
    known = {p.key for p in op.placed("query")} | ({"filename"} if op.body == "file" else set())
    unknown = sorted(k for k in request.query_params if k not in known)
    errors += [{"field": k, "message": f"{op.http} {op.url} takes no query parameter '{k}'"
                                      + (f"; it takes: {', '.join(sorted(known))}" if known else "")} for k in unknown]
    for p in op.placed("query"):
        raw = request.query_params.getlist(p.key)
        if len(raw) > 1:
            errors.append({"field": p.key, "message": f"'{p.key}' is given {len(raw)} times; give it once"})
        elif raw:
            kwargs[p.name] = _from_text(p, raw[0], errors, folder)
            if kwargs[p.name] is None and p.none_value is not None and raw[0] == p.none_value:
                chosen_none.add(p.name)  # 'state=all' is the engine's None, not its default
        elif p.required:
            errors.append({"field": p.key, "message": f"'{p.key}' is required"})
        else:
            kwargs[p.name] = p.default  # the CLI's default, which may differ from the engine's (board: 20)
    if op.body == "json" and (op.placed("body") or op.versioned):
        data = intake.json_object(raw_body, "the operation's parameters") if raw_body.strip() else {}
        allowed = {p.key for p in op.placed("body")} | ({"if_version"} if op.versioned else set())
        for key in sorted(set(data) - allowed):
            errors.append({"field": key, "message": f"{op.http} {op.url} takes no '{key}'"
                                                    + (f"; it takes: {', '.join(sorted(allowed))}" if allowed else "")})
        for p in op.placed("body"):
            if p.key in data and data[p.key] is not None:
                kwargs[p.name] = _convert(p, data[p.key], errors)
            elif p.required:
                errors.append({"field": p.key, "message": f"'{p.key}' is required"})
            else:
                kwargs[p.name] = p.default
        if op.versioned and data.get("if_version") is not None:
            kwargs["if_version"] = _convert(Param("if_version", "int", minimum=1), data["if_version"], errors)
    elif op.body == "file":
        (p,) = [p for p in op.params if p.kind == "file" and p.where == "body"]
        assert folder is not None, "an operation taking a file has an upload folder (_upload_folder)"
        name = _safe_name(request.query_params.get("filename") or f"upload{_suffix(op)}")
        (folder / name).write_bytes(raw_body)
        kwargs[p.name] = str(folder / name)
    elif op.body == "intake":
        kwargs["values"] = intake.values(raw_body, request.headers.get("content-type", ""))
        kwargs["process"] = caller.facts.get("process") if caller is not None else None
    if op.versioned:
        _if_match(request, kwargs, errors)
    for p in op.placed("client"):
        kwargs[p.name] = _from_client(p, request, caller)
    if errors:
        raise Problem(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    return {k: v for k, v in kwargs.items() if v is not None or k in chosen_none}


def _suffix(op: Operation) -> str:
    return ".csv" if op.service == "intake" else ".yaml"


def _safe_name(name: str) -> str:
    """The uploaded file's name as the engine will print it: its last part, in plain characters."""
    base = _SAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    return base[:100] or "upload"


def _if_match(request: Request, kwargs: dict[str, Any], errors: list[dict[str, str]]) -> None:
    """``If-Match: "7"`` (the ETag of GET /v1/leads/{id}) is the version the client last saw."""
    header = request.headers.get("if-match")
    if header is None:
        return
    text = header.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit() or not 0 < int(text) < 2**63:
        errors.append({"field": "If-Match", "message": f"If-Match {header!r} is not a lead's ETag such as \"7\""})
        return
    version = int(text)
    if kwargs.get("if_version") not in (None, version):
        errors.append({"field": "If-Match", "message": f"If-Match {version} and if_version {kwargs['if_version']} "
                                                       "disagree; send one"})
    kwargs["if_version"] = version


def _from_client(p: Param, request: Request, caller: Caller | None) -> Any:
    if p.name == "address":
        return request.client.host if request.client else "unknown"
    if p.name == "user_agent":
        return request.headers.get("user-agent")
    if p.name == "token":
        return caller.token if caller is not None else None
    if p.name == "name":
        return request.query_params.get("filename")
    if p.name == "out":
        return io.StringIO(newline="")
    raise AssertionError(f"no request value for the parameter {p.name!r}")  # a table entry without a source here


def _from_text(p: Param, raw: str, errors: list[dict[str, str]], folder: Path | None) -> Any:
    """A query parameter's text as the parameter's type."""
    if p.none_value is not None and raw == p.none_value:
        return None
    if p.kind == "file":
        assert folder is not None, "an operation taking a file has an upload folder (_upload_folder)"
        path = folder / f"{p.name}.yaml"
        path.write_text(raw, encoding="utf-8")
        return str(path)
    if p.kind == "bool":
        if raw.lower() not in _BOOL:
            errors.append({"field": p.key, "message": f"'{p.key}' takes true or false, got {raw!r}"})
            return None
        return _BOOL[raw.lower()]
    if p.kind == "int":
        if not re.fullmatch(r"-?\d{1,19}", raw.strip()):
            errors.append({"field": p.key, "message": f"'{p.key}' takes a whole number, got {raw!r}"})
            return None
        return _convert(p, int(raw), errors)
    return _convert(p, raw, errors)


def _convert(p: Param, value: Any, errors: list[dict[str, str]]) -> Any:
    """A value of the parameter's type within its bounds, or None with the reason in ``errors``."""
    def wrong(expected: str) -> None:
        errors.append({"field": p.key, "message": f"'{p.key}' takes {expected}, got {value!r}"[:300]})

    if p.where == "path" and p.kind == "int":
        if not isinstance(value, str) or not re.fullmatch(r"\d{1,19}", value):
            wrong("a whole number")
            return None
        value = int(value)
    if p.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        wrong("a whole number")
        return None
    if p.kind == "int":
        low, high = p.minimum, p.maximum if p.maximum is not None else 2**63 - 1
        if (low is not None and value < low) or value > high:
            wrong(f"a whole number from {low if low is not None else '-'} to {high}")
            return None
    elif p.kind == "str" and not isinstance(value, str):
        wrong("text")
        return None
    elif p.kind == "bool" and not isinstance(value, bool):
        wrong("true or false")
        return None
    elif p.kind == "object" and not isinstance(value, dict):
        wrong("an object")
        return None
    elif p.kind == "int_list" and not (isinstance(value, list) and len(value) <= 100_000):
        wrong("a list of ids")
        return None
    elif p.kind == "str_list" and not (isinstance(value, list) and len(value) <= 1000
                                       and all(isinstance(v, str) for v in value)):
        wrong("a list of names")
        return None
    return value  # choices are the engine's to check (the table lists them for the docs and the clients)


async def _read_or_refusal(request: Request, limit: int, timeout: float) -> bytes | Problem:
    """``_read``, or the refusal it raised (given after the credentials are checked)."""
    try:
        return await _read(request, limit, timeout)
    except Problem as refusal:
        return refusal


async def _read(request: Request, limit: int, timeout: float) -> bytes:
    """The body, at most ``limit`` bytes (413 past it, announced or streamed), within ``timeout`` seconds (408)."""
    too_large = Problem(413, f"the request body is larger than {limit} bytes", headers={"Connection": "close"})
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise Problem(408, f"the request body did not arrive within {timeout:g} seconds",
                      headers={"Connection": "close"}) from None
    return b"".join(chunks)


# -- errors, docs, security ------------------------------------------------------------------------------------

def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(LeadflowError)
    async def engine_error(request: Request, exc: LeadflowError) -> JSONResponse:
        return problems.of_engine(exc, language=_language(request, exc))

    @app.exception_handler(Problem)
    async def problem(_request: Request, exc: Problem) -> JSONResponse:
        return problems.of_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "message": e["msg"]}
                  for e in exc.errors()]
        return problems.answer(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no such endpoint: {request.method} {request.url.path} (the routes: /openapi.json)"
        elif exc.status_code == 405:
            detail = f"{request.url.path} does not take {request.method}"
        return problems.answer(exc.status_code, detail, headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, _exc: ClientDisconnect) -> Response:
        log.info("client went away during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def database_or_bug(request: Request, exc: Exception) -> JSONResponse:
        if type(exc).__module__.startswith("sqlalchemy") and "locked" in str(exc):
            return problems.answer(503, "the database is busy; try again", headers={"Retry-After": "1"})
        log.exception("internal error on %s %s", request.method, request.url.path)
        return problems.answer(500, "internal error; the server's log has the details")


def _install_docs(app: FastAPI) -> None:
    """The interactive docs page, with swagger-ui's files served from the package (no CDN)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="leadflow API",
                                   swagger_js_url="/static/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io


def _install_security(app: FastAPI) -> None:
    """/openapi.json declares the bearer scheme, and which operations need it (every one but logging in)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "A personal access token (leadflow login), a login's session token, or a web form's "
                           "integration token (leadflow token add). Never in the URL."}}
        components.setdefault("schemas", {})["Problem"] = problems.SCHEMA
        schema["security"] = [{"bearer": []}]
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if operation.get("operationId") in _PUBLIC:
                    operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_PUBLIC = {op.name for op in operations.OPERATIONS if op.audience == "anyone"}
_OPENAPI_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
                  "int_list": {"type": "array", "items": {"type": "integer"}},
                  "str_list": {"type": "array", "items": {"type": "string"}}, "object": {"type": "object"},
                  "file": {"type": "string"}}


def _schema(p: Param) -> dict[str, Any]:
    schema = dict(_OPENAPI_TYPES[p.kind])
    if p.choices:
        schema["enum"] = list(p.choices)
    if p.minimum is not None:
        schema["minimum"] = p.minimum
    if p.maximum is not None:
        schema["maximum"] = p.maximum
    if p.default is not None:
        schema["default"] = p.default
    if p.help:
        schema["description"] = p.help
    return schema


def _openapi(ops: list[Operation]) -> dict[str, Any]:
    op = ops[0]
    parameters = [{"name": p.key, "in": p.where, "required": p.required or p.where == "path", "schema": _schema(p)}
                  for p in op.params if p.where in ("path", "query")]
    if op.body == "file":
        parameters.append({"name": "filename", "in": "query", "required": False, "schema": {"type": "string"}})
    if op.versioned:
        parameters.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "The lead's ETag (its version) as last seen: a stale one is 409."})
    extra: dict[str, Any] = {"parameters": parameters}
    if any(o.body == "intake" for o in ops):
        extra["requestBody"] = intake.REQUEST_BODY
    elif op.body == "file":
        extra["requestBody"] = {"required": True, "content": {
            "text/csv" if op.service == "intake" else "application/yaml": {"schema": {"type": "string"}}}}
    elif op.placed("body") or op.versioned:
        body = {p.key: _schema(p) for p in op.placed("body")}
        if op.versioned:
            body["if_version"] = {"type": "integer", "minimum": 1, "description": "as If-Match"}
        required = [p.key for p in op.placed("body") if p.required]
        extra["requestBody"] = {"required": bool(required), "content": {"application/json": {"schema": {
            "type": "object", "properties": body, "additionalProperties": False,
            **({"required": required} if required else {})}}}}
    return extra


def _description(ops: list[Operation]) -> str:
    lines = [f"{o.summary} (`engine.{o.name}`; CLI: `leadflow {o.command}`"
             + ("; for integration tokens" if o.audience == "integration" else "") + ")" for o in ops]
    if ops[0].versioned:
        lines.append("Send `If-Match` with the lead's ETag: a change made by someone else since is 409.")
    return "\n\n".join(lines)


def _responses(ops: list[Operation]) -> dict[int | str, dict[str, Any]]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    kinds = {400: "bad syntax (not JSON, a token in the URL)", 401: "no valid credentials",
             403: "not allowed", 404: "no such record (or one the caller may not see)",
             422: "an invalid value or a move the rules refuse, each field's problem in errors",
             413: "body too large", 429: "rate limited (Retry-After)"}
    if any(o.versioned for o in ops):
        kinds[409] = "the lead changed since the version sent; the problem has the lead as it is now"
    if ops[0].media == "text/csv":
        return {str(ops[0].status): {"content": {"text/csv": {}}, "description": "CSV"},
                **{str(k): {"description": v, "content": problem} for k, v in kinds.items()}}
    return {str(k): {"description": v, "content": problem} for k, v in kinds.items()}


# -- the connection-level guard ---------------------------------------------------------------------------------

class _Forwarded:
    """Behind a trusted reverse proxy (``--trust-proxy``): the request's client address is the last one of
    ``X-Forwarded-For`` (the one the proxy itself appended: earlier ones are whatever the client sent) and its scheme
    that of ``X-Forwarded-Proto``, for everything after (rate limits per address, logs, the Secure cookie)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[-1].strip()
            proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[-1].strip().lower()
            if forwarded or proto in ("http", "https"):
                scope = dict(scope)
                if forwarded:
                    scope["client"] = (forwarded[:64], 0)
                if proto in ("http", "https"):
                    scope["scheme"] = proto
        await self.app(scope, receive, send)


class _Guard:
    """Before the app: both Content-Length and Transfer-Encoding is 400 (a request-smuggling shape; h11 would let
    Transfer-Encoding win); every response says when the clock is a test clock and how long the app took to
    answer (``Server-Timing: app;dur=<ms>``, shown by a browser's developer tools; benchmarks/web_pages.py reads
    it); an access log line without the query string (where a token must never be written, even a refused one)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        names = [k for k, _ in scope["headers"]]
        status = [0]
        pinned = clock.pinned()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                # a page's body is complete before its start is sent (a streamed answer: the time to its start)
                took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
                message["headers"] = [*message.get("headers", []), (b"server-timing", took.encode())]
                if pinned is not None:
                    message["headers"].append((TEST_CLOCK_HEADER.lower().encode(), pinned.encode()))
            await send(message)

        try:
            if b"content-length" in names and b"transfer-encoding" in names:
                response = problems.answer(400, "the request has both Content-Length and Transfer-Encoding; send one",
                                           headers={"Connection": "close"})
                await response(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            access_log.info("%s %s %s %d %.1fms", client[0] if client else "-", scope["method"], scope["path"],
                            status[0], (time.perf_counter() - started) * 1000)
