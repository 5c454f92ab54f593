"""The HTTP intake, an edge like the CLI: it parses requests, calls the engine's API and writes responses.

Every decision (who a token is, what a valid inquiry is, who owns the lead, who may read what) is the
engine's; this module only maps its errors to status codes. FastAPI is imported here only, so it loads
only for ``leadflow serve`` and the tests (the optional extra ``server``).

Errors have one shape, whatever the status::

    {"error": "one sentence", "errors": [{"field": "email", "message": "e-mail 'x' is not an address ..."}]}
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from engine import results
from engine.api import Engine
from engine.errors import (
    AuthenticationError,
    ConcurrentUpdateError,
    InvalidInputError,
    LeadflowError,
    NotFoundError,
    PermissionDenied,
    RateLimited,
    RuleViolation,
)

log = logging.getLogger("leadflow.service")

#: Engine errors and the status they answer, most specific first.
STATUS = ((AuthenticationError, 401), (PermissionDenied, 403), (NotFoundError, 404), (ConcurrentUpdateError, 409),
          (InvalidInputError, 422), (RuleViolation, 422), (RateLimited, 429), (LeadflowError, 400))

LEAD_BODY: dict[str, Any] = {
    "type": "object",
    "description": "The inquiry. Keys are named like an import's columns: the attributes below, the process's "
                   "field ids or labels; process fields may also come as a 'fields' object.",
    "properties": {
        "process": {"type": "string", "description": "Default: the token's process."},
        "name": {"type": "string", "maxLength": 500},
        "company": {"type": "string", "maxLength": 500},
        "email": {"type": "string", "maxLength": 320},
        "phone": {"type": "string", "maxLength": 64},
        "source": {"type": "string", "maxLength": 200, "description": "Default: the token's source."},
        "product": {"type": "string", "maxLength": 200},
        "value": {"type": ["string", "number"], "description": "An exact amount: 45000.50 or '45 000,50'."},
        "fields": {"type": "object", "additionalProperties": True},
    },
    "required": ["name"],
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
}
ERROR_BODY = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


class _Refused(Exception):  # an answer to the client, not a bug
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


def _answer(status: int, message: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "errors": errors or []}, status_code=status, headers=headers)


def _token(request: Request) -> str | None:
    """``Authorization: Bearer <token>``, or ``X-Leadflow-Token: <token>`` for tools that cannot set the former."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-leadflow-token", "").strip() or None


async def _body(request: Request, limit: int) -> bytes:
    too_large = _Refused(413, f"the request body is larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _values(body: bytes, content_type: str) -> dict[str, Any]:
    """The inquiry's values from a JSON object or a form post (application/x-www-form-urlencoded)."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise _Refused(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Refused(422, f"the body must be a JSON object of the lead's values, got {type(data).__name__}")
        return data
    if kind == "application/x-www-form-urlencoded":
        try:
            # strict: a percent-escape that is not UTF-8 is refused, not stored as U+FFFD
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=500, errors="strict")
        except UnicodeDecodeError:
            raise _Refused(400, "the form is not UTF-8 (a value or its %-escapes)") from None
        except ValueError as exc:
            raise _Refused(400, f"the form cannot be read: {exc}") from None
        values: dict[str, Any] = {}
        for key, value in pairs:
            if key in values:
                raise _Refused(422, f"the form gives '{key}' more than once")
            values[key] = value
        return values
    raise _Refused(415, f"send the lead as application/json or application/x-www-form-urlencoded, not "
                        f"{kind or 'a body without a Content-Type'}")


def create_app(engine: Engine, *, max_body: int = 65536) -> FastAPI:
    """The ASGI app over ``engine`` (an ``engine.api.Engine``; each request acts as its token's source)."""
    app = FastAPI(
        title="leadflow intake",
        version="1",
        description="Web-form intake and read endpoints of leadflow. Authenticate with 'Authorization: Bearer "
                    "<token>' (leadflow token add). Errors: {error, errors: [{field, message}]}.",
    )

    def caller(request: Request, *, read: bool = False) -> tuple[Engine, results.TokenSource]:
        """The engine acting as the token's source (a fresh Engine per request: they share the caches); the
        request counts against the token's rate limit."""
        try:
            who = engine.as_user(engine.user_name).tokens.request(_token(request), read=read)
        except (AuthenticationError, RateLimited) as exc:
            client = request.client.host if request.client else "?"
            log.warning("refused %s %s from %s: %s", request.method, request.url.path, client, exc)
            raise
        return engine.as_user(who["source"]), who

    @app.exception_handler(LeadflowError)
    async def leadflow_error(_request: Request, exc: LeadflowError) -> JSONResponse:
        status = next(code for cls, code in STATUS if isinstance(exc, cls))
        errors = [{"field": e.field, "message": e.message} for e in getattr(exc, "errors", [])]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return _answer(status, str(exc), errors, headers)

    @app.exception_handler(_Refused)
    async def refused(_request: Request, exc: _Refused) -> JSONResponse:
        return _answer(exc.status, str(exc), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "message": e["msg"]}
                  for e in exc.errors()]
        return _answer(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _answer(exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def database_or_bug(request: Request, exc: Exception) -> JSONResponse:
        if type(exc).__module__.startswith("sqlalchemy") and "locked" in str(exc):
            return _answer(503, "the database is busy; try again", headers={"Retry-After": "1"})
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _answer(500, "internal error; the server's log has the details")

    error_body = {"application/json": {"schema": ERROR_BODY}}
    errors: dict[int | str, dict[str, Any]] = {str(code): {"description": text, "content": error_body}
              for code, text in ((401, "missing, unknown or revoked token"), (403, "the token may not read"),
                                 (404, "no such lead"), (413, "body too large"), (415, "not JSON or a form"),
                                 (422, "invalid values, each with its field"),
                                 (429, "over the token's requests a minute; see Retry-After"))}

    form = {**LEAD_BODY, "properties": {k: v for k, v in LEAD_BODY["properties"].items() if k != "fields"}}
    body = {"required": True, "content": {"application/json": {"schema": LEAD_BODY},
                                          "application/x-www-form-urlencoded": {"schema": form}}}

    @app.post("/v1/leads", status_code=201, responses=errors, openapi_extra={"requestBody": body})
    async def post_lead(request: Request) -> JSONResponse:
        """Register an inquiry as a lead: validated against the process, added to an existing client with the
        same e-mail or phone, owned as the assignment rules say. 201 with the lead's id."""
        acting, who = await run_in_threadpool(caller, request)
        values = _values(await _body(request, max_body), request.headers.get("content-type", ""))
        result = await run_in_threadpool(acting.intake.submit, values, process=who["process"])
        lead = result["lead"]
        return JSONResponse(
            {"id": lead["id"], "client_id": lead["client_id"], "client_existed": result["client_existed"],
             "process": lead["process"], "stage": lead["stage"], "owner": lead["owner"],
             "url": f"/v1/leads/{lead['id']}"},
            status_code=201, headers={"Location": f"/v1/leads/{lead['id']}"})

    @app.get("/v1/leads/{lead_id}", responses=errors)
    async def get_lead(request: Request, lead_id: int) -> JSONResponse:
        """The lead, exactly as ``leadflow lead show ID --json`` prints it (docs/cli.md)."""
        acting, _ = await run_in_threadpool(caller, request, read=True)
        return JSONResponse(await run_in_threadpool(acting.leads.get, lead_id))

    @app.get("/v1/board", responses=errors)
    async def get_board(request: Request, process: str | None = None, owner: str | None = None,
                        team: str | None = None, light: str | None = None,
                        limit: int = Query(20, ge=0, le=10_000)) -> JSONResponse:
        """The board, exactly as ``leadflow board --json`` prints it (one board with ``process``, else a list)."""
        acting, _ = await run_in_threadpool(caller, request, read=True)
        boards = await run_in_threadpool(lambda: acting.boards.board(process=process, owner=owner, team=team,
                                                                     light=light, limit=limit))
        return JSONResponse(boards[0] if process else boards)

    return app
