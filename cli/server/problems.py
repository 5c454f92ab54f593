"""Refusals as RFC 9457 problems (``application/problem+json``): the engine's one-sentence message as ``detail``,
the HTTP status saying its kind, and the per-field ``errors`` of the intake.

One body for every refusal, whatever raised it::

    {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "lead 7 is at version 4, not 3 ...",
     "error": "lead 7 is at version 4, not 3 ...", "errors": []}

``error`` repeats ``detail`` for the HTTP intake's clients, which read it since 0.1 (docs/intake.md).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

from engine import errors as engine_errors
from engine.errors import LeadflowError

PROBLEM = "application/problem+json"
#: The ``code`` of the 401 problem of a user who must change their password before logging in.
PASSWORD_CHANGE_REQUIRED = "password_change_required"

#: Engine errors and the status each answers, most specific first.
STATUS: tuple[tuple[type[LeadflowError], int], ...] = (
    (engine_errors.RateLimited, 429), (engine_errors.DatabaseBusy, 503),
    (engine_errors.AuthenticationError, 401), (engine_errors.PermissionDenied, 403),
    (engine_errors.NotFoundError, 404), (engine_errors.ConcurrentUpdateError, 409),
    (engine_errors.InvalidInputError, 422), (engine_errors.RuleViolation, 422), (LeadflowError, 422),
)


class Problem(Exception):
    """An answer to the client that is not the engine's (bad syntax, a body too large, a token in the URL)."""

    def __init__(self, status: int, detail: str, *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers
        self.extra = extra or {}


def status_of(exc: LeadflowError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def answer(status: int, detail: str, *, errors: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "error": detail, "errors": errors or [], **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def of_problem(problem: Problem) -> JSONResponse:
    return answer(problem.status, problem.detail, errors=problem.errors, headers=problem.headers,
                  extra=problem.extra)


def of_engine(exc: LeadflowError, *, status: int | None = None, detail: str | None = None,
              extra: dict[str, Any] | None = None) -> JSONResponse:
    """The problem for an engine error: its status by kind, its message, its fields' errors."""
    code = status if status is not None else status_of(exc)
    errors = [{"field": e.field, "message": e.message} for e in getattr(exc, "errors", [])]
    headers: dict[str, str] = {}
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if code in (429, 503):
        headers["Retry-After"] = str(getattr(exc, "retry_after", 60))
    if isinstance(exc, engine_errors.PasswordChangeRequired):  # the clients offer the change (leadflow login)
        extra = {**(extra or {}), "code": PASSWORD_CHANGE_REQUIRED}
    return answer(code, detail if detail is not None else str(exc), errors=errors, headers=headers or None,
                  extra=extra)


#: The problem's JSON Schema, for the OpenAPI document.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; 'error' repeats 'detail' for the intake's clients of 0.1.",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "error": {"type": "string"},
        "code": {"type": "string", "description": "'password_change_required': log in after changing the password "
                 "(POST /v1/auth/password)"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
        "lead": {"type": "object", "description": "409 of a stale version: the lead as it is now"},
        "current_version": {"type": "integer"},
    },
    "required": ["title", "status", "detail"],
}
