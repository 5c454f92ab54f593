"""Refusals as RFC 9457 problems (``application/problem+json``): the engine's one-sentence message as ``detail``,
in the person's language, the HTTP status saying its kind, and the per-field ``errors`` of the intake (each
``{"field", "message", "message_id", "params"}``: its message in the person's language too).

One body for every refusal, whatever raised it::

    {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "lead 7 is at version 4, not 3 ...",
     "error": "lead 7 is at version 4, not 3 ...", "errors": [],
     "message_id": "lead {lead} is at version {current}, not {expected}; ...",
     "params": {"lead": 7, "current": 4, "expected": 3}}

``detail`` is in the language cli/server/language.py negotiates (the acting user's, else ``Accept-Language``,
else English), which ``Content-Language`` names. The rest is the same in every language, for programs:
``error`` is the English sentence (the HTTP intake's clients read it since 0.1, docs/intake.md), ``message_id``
the engine's English template (the catalogues' msgid) and ``params`` its parameters (a stage or task by its id).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

from engine import errors as engine_errors
from engine import i18n
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


def answer(status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> JSONResponse:
    # a problem that is not the engine's (bad syntax, a body too large) is English only: its text is its own id
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "error": detail, "errors": errors or [], "message_id": detail, "params": {}, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def of_problem(problem: Problem) -> JSONResponse:
    return answer(problem.status, problem.detail, errors=problem.errors, headers=problem.headers,
                  extra=problem.extra)


def of_engine(exc: LeadflowError, *, language: str = i18n.SOURCE, status: int | None = None,
              hide: str | None = None, extra: dict[str, Any] | None = None) -> JSONResponse:
    """The problem for an engine error: its status by kind, its message in ``language`` (with ``hide``, a server's
    folder, left out), its machine part, its fields' errors."""
    code = status if status is not None else status_of(exc)
    # a refused value of a web form: its message in the reader's language, its template and parameters for programs
    errors = [{"field": e.field, "message": i18n.message_text(e.message, language), **i18n.message_json(e.message)}
              for e in getattr(exc, "errors", [])]
    headers: dict[str, str] = {}
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if code in (429, 503):
        headers["Retry-After"] = str(getattr(exc, "retry_after", 60))
    if isinstance(exc, engine_errors.PasswordChangeRequired):  # the clients offer the change (leadflow login)
        extra = {**(extra or {}), "code": PASSWORD_CHANGE_REQUIRED}
    english, detail, template = str(exc), i18n.error_text(exc, language), exc.template
    if hide:
        english, detail, template = (text.replace(hide, "") for text in (english, detail, template))
    headers["Content-Language"] = language
    machine = {"message_id": template, "params": {k: neutral(v) for k, v in exc.params.items()}}
    # 'error' stays English, for the intake's clients of 0.1: a program reads no translation
    return answer(code, detail, errors=errors, headers=headers, extra={**machine, "error": english, **(extra or {})})


def neutral(value: Any) -> Any:
    """A parameter of an error as JSON that is the same in every language: a stage, task or field by its id, a
    phrase or label by its English text."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, i18n.Named):
        return value.ident
    if isinstance(value, (list, tuple)):
        return [neutral(v) for v in value]
    return str(value)


#: The problem's JSON Schema, for the OpenAPI document.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details: 'detail' in the person's language (Content-Language), 'error' "
                   "the same in English for the intake's clients of 0.1, 'message_id' and 'params' for programs.",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "error": {"type": "string"},
        "code": {"type": "string", "description": "'password_change_required': log in after changing the password "
                 "(POST /v1/auth/password)"},
        "message_id": {"type": "string", "description": "the engine's English template of the message (the same "
                       "in every language; the catalogues' msgid)"},
        "params": {"type": "object", "description": "the template's parameters, the same in every language"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string", "description": "in the person's language"},
            "message_id": {"type": "string", "description": "its English template (the catalogues' msgid)"},
            "params": {"type": "object", "description": "the template's parameters, the same in every language"}}}},
        "lead": {"type": "object", "description": "409 of a stale version: the lead as it is now"},
        "current_version": {"type": "integer"},
    },
    "required": ["title", "status", "detail"],
}
