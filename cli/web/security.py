"""The web app's protections, in one place: the session cookie's flags, the CSRF check of every form, the
headers of every page (a strict Content-Security-Policy: scripts and styles from the app's own files only, no
inline script; no framing; no sniffing), and bounded form bodies.

The session itself is the engine's (``auth.login/session/logout``) and who is signed in is
cli/server/identity.py's ``cookie_session``; the CSRF token is derived there from the session's secret.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cli.server.identity import SESSION_COOKIE, csrf_matches, csrf_token

#: Before logging in there is no session to derive a CSRF token from: the log-in form carries a random one that
#: must match this cookie (a double submit), so that no other site can log a browser in as someone else.
LOGIN_CSRF_COOKIE = "leadflow_login_csrf"
#: The largest form body a page accepts (the fields of one lead fit many times over).
MAX_FORM = 64 * 1024
#: How the key of an uploaded file's place on the server ends (``NAME.path``, ``read_upload``): the server's own,
#: so a field of that name that a client sends is dropped, or a form could name any file of the server to move or
#: read (the import stages the file it names, by moving it). A dot, which no field's id has (``f_<id>``).
UPLOAD_PATH = ".path"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class TooLarge(Exception):
    """A form body over ``MAX_FORM``, or a file over its form's limit (``limit``, in bytes; 0: a plain form)."""

    def __init__(self, limit: int = 0):
        super().__init__(limit)
        self.limit = limit


class Headers:
    """Adds ``HEADERS`` to every response of the web app's paths (``prefixes``); the API and its docs page keep
    their own."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]):
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/" or path.startswith(self.prefixes)):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                         if k.lower().encode() not in names]
                if path.startswith("/assets/"):  # the vendored files may be cached
                    extra = [(k, v) for k, v in extra if k != b"cache-control"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, sending)


def is_https(request: Request, *, trust_proxy: bool) -> bool:
    """Served over HTTPS, or behind a proxy that says so (``X-Forwarded-Proto``, believed only when the server is
    told to trust its proxy: anyone can send the header)."""
    if request.url.scheme == "https":
        return True
    return trust_proxy and request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def set_session(response: Response, token: str, request: Request, *, trust_proxy: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=is_https(request, trust_proxy=trust_proxy))


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def login_csrf(request: Request) -> tuple[str, bool]:
    """The log-in form's CSRF token: the browser's cookie's, or a new one (True: set it with ``set_login_csrf``)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    if token and len(token) == 43:
        return token, False
    return secrets.token_urlsafe(32), True


def set_login_csrf(response: Response, token: str, request: Request, *, trust_proxy: bool) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=is_https(request, trust_proxy=trust_proxy))


def login_csrf_ok(request: Request, sent: str | None) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(expected and sent) and secrets.compare_digest(expected or "", sent or "")


def session_csrf_ok(session_token: str, sent: str | None) -> bool:
    return csrf_matches(session_token, sent)


def session_csrf(session_token: str) -> str:
    return csrf_token(session_token)


class Form(dict[str, str]):
    """A form's values by name (a repeated name: its last value), and every value of a repeated name
    (``values``): a multi-select's checked options."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__(pairs)
        self.repeated: dict[str, list[str]] = {}
        for name, value in pairs:
            self.repeated.setdefault(name, []).append(value)


def values(form: dict[str, str], name: str) -> list[str]:
    """Every value the form gave ``name``, in order (none when it gave none)."""
    if isinstance(form, Form):
        return list(form.repeated.get(name, []))
    return [form[name]] if name in form else []


async def read_form(request: Request) -> Form:
    """An ``application/x-www-form-urlencoded`` body, at most ``MAX_FORM`` bytes (a repeated name: its last
    value, and all of them in ``values``; names ending in ``[]`` are not used; a name ending in ``UPLOAD_PATH`` is
    dropped)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise TooLarge
    return Form([(name, value) for name, value in parse_qsl(body.decode("utf-8", errors="replace"),
                                                            keep_blank_values=True)
                 if not name.endswith(UPLOAD_PATH)])


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def read_upload(request: Request, limit: int, folder: Path) -> dict[str, str]:
    """A ``multipart/form-data`` body with at most one file of at most ``limit`` bytes, which is written to
    ``folder`` as it arrives (never held whole in memory): the form's fields, and for the file field NAME
    ``NAME.path`` (where it was written; a field sent with such a name is dropped) and ``NAME_name`` (the name the
    browser gave). A body larger than the file
    and a plain form's worth is refused as soon as its declared length or the bytes received say so
    (``TooLarge``)."""
    most = limit + MAX_FORM
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        raise TooLarge(limit)
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > most:
            raise TooLarge(limit)
        return message

    form: dict[str, str] = {}
    async with Request(request.scope, counted).form(max_files=1, max_fields=32, max_part_size=MAX_FORM) as parsed:
        for name, value in parsed.multi_items():
            if isinstance(value, str):
                if not name.endswith(UPLOAD_PATH):  # a field never names a file of the server
                    form[name] = value
                continue
            if not value.filename:  # the file input left empty
                continue
            path, size = folder / "upload", 0  # the one file (max_files=1), whatever its field's name
            with path.open("wb") as out:
                while chunk := await value.read(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(limit)
                    out.write(chunk)
            form[f"{name}{UPLOAD_PATH}"], form[f"{name}_name"] = str(path), value.filename
    return form
