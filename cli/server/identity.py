"""Who is calling: the one place where a request's credentials become an acting user.

Identity comes only from credentials, never from what a client says about itself: ``Authorization: Bearer
<token>`` (a personal access token, a login's session token, or a web form's integration token), or the intake's
``X-Leadflow-Token`` header for tools that cannot set the former. A ``--user``-style header (``X-Leadflow-User``)
is ignored; a token in the query string is refused (400) before anything else, and never logged.

``Identify`` tries its resolvers in order: the web app's cookie session (``by_cookie``, with its CSRF check on
every state-changing request), then the bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Request

from cli.operations import Operation
from cli.server.problems import Problem
from engine.errors import AuthenticationError, PermissionDenied

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger("leadflow.service")

Kind = Literal["personal", "session", "integration"]

#: Query parameters that look like credentials: refused, so that no token ever sits in a URL (and in logs).
TOKEN_QUERY = frozenset({"token", "access_token", "api_key", "apikey", "auth", "authorization", "bearer",
                         "session", "password"})
#: The token prefixes the engine makes (engine/tokens.py): the prefix only chooses the lookup; the token's
#: hash decides whether it is valid.
SESSION_PREFIX = "lfs_"
PERSONAL_PREFIX = "lfp_"

#: The web app's session cookie (HttpOnly, SameSite=Lax; cli/web/security.py sets it) holds a login's session
#: token; state-changing requests made with it carry the CSRF token derived from it (``csrf_token``).
SESSION_COOKIE = "leadflow_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: What an integration token may call: the intake, and with a read right the reads of 0.1.
INTEGRATION_READS = frozenset({"leads.get", "boards.board"})


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the engine acting as them, how they proved it, and their token's facts."""

    engine: Engine
    user: str
    kind: Kind
    token: str
    facts: dict[str, Any]

    def may_call(self, op: Operation) -> bool:
        if self.kind != "integration":
            return op.audience != "integration"
        return op.audience == "integration" or (op.name in INTEGRATION_READS and bool(self.facts.get("read")))


def bearer(request: Request) -> str | None:
    """``Authorization: Bearer <token>``, or ``X-Leadflow-Token: <token>`` (the intake's header since 0.1)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-leadflow-token", "").strip() or None


Resolver = Callable[["Engine", Request, bool], "Caller | None"]


def by_token(engine: Engine, request: Request, read: bool) -> Caller | None:
    token = bearer(request)
    if token is None:
        return None
    system = engine.as_user(engine.user_name)
    if token.startswith(SESSION_PREFIX):
        who = system.auth.session(token)
        name = who["user"]["name"]
        return Caller(engine.as_user(name), name, "session", token, dict(who))
    # a request with a token counts against the token's rate limit (RateLimited: 429)
    source = system.tokens.request(token, read=read)
    facts: dict[str, Any] = dict(source)
    kind: Kind = "personal" if facts.get("kind") == "personal" or token.startswith(PERSONAL_PREFIX) else "integration"
    return Caller(engine.as_user(source["source"]), source["source"], kind, token, facts)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from its secret token, which only the cookie (HttpOnly) carries, so a
    page of another site can neither read nor compute it; the same on every server process (no state)."""
    return hmac.new(session_token.encode(), b"leadflow csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(session_token), sent or "")


def cookie_session(engine: Engine, request: Request) -> Caller | None:
    """The signed-in person of the session cookie (``auth.session`` refuses an ended session, a deactivated
    user's); None without a cookie. No CSRF check: a state-changing caller checks it (``by_cookie``, the web app's
    forms)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not token.startswith(SESSION_PREFIX):
        return None
    who = engine.as_user(engine.user_name).auth.session(token)
    name = who["user"]["name"]
    return Caller(engine.as_user(name), name, "session", token, dict(who))


def by_cookie(engine: Engine, request: Request, read: bool) -> Caller | None:
    """The session cookie, for a request without a bearer token; a state-changing one must send the session's CSRF
    token in the ``X-CSRF-Token`` header (403 otherwise: a cross-site request carries the cookie, not the token)."""
    if bearer(request) is not None:
        return None
    caller = cookie_session(engine, request)
    if caller is not None and request.method not in SAFE_METHODS and not csrf_matches(
            caller.token, request.headers.get(CSRF_HEADER)):
        raise PermissionDenied(f"{request.method} {request.url.path} with a session cookie needs the session's CSRF "
                               "token in the X-CSRF-Token header; nothing was changed")
    return caller


class Identify:
    """Resolves a request to its ``Caller`` through ``resolvers`` (the first that recognises its credentials)."""

    def __init__(self, engine: Engine, resolvers: list[Resolver] | None = None):
        self.engine = engine
        self.resolvers = resolvers if resolvers is not None else [by_cookie, by_token]

    def __call__(self, request: Request, *, read: bool) -> Caller:
        """The caller (``read``: the request reads, which an integration token needs the read right for)."""
        refuse_token_in_query(request)
        try:
            for resolve in self.resolvers:
                caller = resolve(self.engine, request, read)
                if caller is not None:
                    break
            else:  # no credentials at all: the engine's own refusal of a missing token
                self.engine.tokens.authenticate(None)
                raise AuthenticationError("no credentials")  # pragma: no cover - authenticate(None) raises
        except (AuthenticationError, PermissionDenied) as exc:
            client = request.client.host if request.client else "?"
            log.warning("refused %s %s from %s: %s", request.method, request.url.path, client, exc)
            raise
        return caller

    @staticmethod
    def authorize(caller: Caller, op: Operation) -> None:
        """Refuse an operation the caller's kind of credential may not call (an integration token's scope)."""
        if not caller.may_call(op):
            if caller.kind == "integration":
                raise PermissionDenied(
                    f"an integration token (source '{caller.user}') may only send leads (POST /v1/leads)"
                    + (" and read leads and boards" if caller.facts.get("read") else "")
                    + f", not {op.http} {op.url}; people call the API with their own token (leadflow login)")
            raise PermissionDenied(f"{op.http} {op.url} is for web forms' integration tokens; "
                                   "a person adds a lead with the same route and their own token")


def refuse_token_in_query(request: Request) -> None:
    """400 for a credential in the URL (it would sit in proxies' and browsers' logs); the value is never echoed."""
    named = sorted({k for k in request.query_params if k.lower() in TOKEN_QUERY})
    if named:
        raise Problem(400, f"credentials are not accepted in the URL (query parameter {', '.join(named)}); send "
                           "the header 'Authorization: Bearer <token>' and make a new token: this one may be logged "
                           "where the URL went")
