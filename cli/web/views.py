"""The frame every page of the web app is written in: ``page`` and ``action`` register a view, ``Visit`` is one
request of a signed-in person, ``render`` draws a template, ``NAV`` lists the menu.

A view parses its request, calls the engine as ``visit.eng`` (the signed-in person), and renders the result; an
engine refusal is shown with the engine's own message and the HTTP status of its kind (cli/server/problems.py),
and a lead the person may not see is 404, as one that does not exist. To add a page (reports, admin...), write a
module of views and name it in ``cli/web/routes.py``'s ``PAGES``::

    @page("/reviews")
    def reviews(visit: Visit) -> Response:
        return render(visit, "reviews.html", reviews=visit.eng.recovery.reviews())
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cli.present import formats, words
from cli.server import problems
from cli.server.identity import Caller
from cli.web import security, text
from cli.web.text import _
from engine import i18n
from engine.errors import LeadflowError, NotFoundError, PermissionDenied
from engine.i18n import N_

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger("leadflow.web")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
#: Where the vendored files are served (cli/server/app.py serves swagger-ui's under /static).
ASSETS = "/assets"


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # translated when the page is drawn
    #: the capability (``users.permissions``, the engine's rules) a person needs to see the link; None: anyone
    may: str | None = None


#: The menu of every page, in order; a module of pages appends its own (``NAV.append(NavItem(...))``). Each
#: person sees the links the engine lets them open (``menu``).
NAV: list[NavItem] = [NavItem("/board", N_("Board"), "board"), NavItem("/board/standup", N_("Stand-up"), "board"),
                      NavItem("/today", N_("My day"))]


def menu(permissions: dict[str, bool]) -> list[tuple[str, str]]:
    """The links of ``NAV`` this person may open, with their labels in the request's language."""
    return [(item.path, text.gettext(item.label)) for item in NAV
            if item.may is None or permissions.get(item.may, False)]


@dataclass
class Route:
    method: str
    path: str
    view: Callable[..., Response]
    signed_in: bool = True  # the log-in pages are for anyone
    #: the largest file the form may upload (``multipart/form-data``), in bytes; 0: a plain form only
    upload: int = 0


#: Every registered view (``page``, ``action``, ``public``); ``routes.mount`` adds them to the app.
ROUTES: list[Route] = []


def page(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A GET page for a signed-in person: ``view(visit, **path_params)``."""
    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        ROUTES.append(Route("GET", path, view))
        return view
    return register


def action(path: str, *, upload: int = 0) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A state-changing POST of a signed-in person, its CSRF token checked before the view runs:
    ``view(visit, form, **path_params)``; ``upload``: the form may carry a file of at most that many bytes
    (``form["file.path"]``, ``form["file_name"]`` for the input named ``file``: security.read_upload)."""
    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        ROUTES.append(Route("POST", path, view, upload=upload))
        return view
    return register


def public(method: str, path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A view for anyone (logging in): ``view(site, request, form_or_None)``."""
    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        ROUTES.append(Route(method, path, view, signed_in=False))
        return view
    return register


@dataclass
class Site:
    """What every view shares: the server's engine (acting as the server), the templates, the proxy setting."""

    engine: Engine
    trust_proxy: bool = False
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = environment()

    @property
    def system(self) -> Engine:
        """The engine as the server itself (logging in needs no acting person)."""
        return self.engine.as_user(self.engine.user_name)


@dataclass
class Visit:
    """One request of a signed-in person."""

    site: Site
    request: Request
    caller: Caller

    @property
    def eng(self) -> Engine:
        """The engine acting as the signed-in person."""
        return self.caller.engine

    @property
    def me(self) -> dict[str, Any]:
        return dict(self.caller.facts["user"])

    @property
    def csrf(self) -> str:
        return security.session_csrf(self.caller.token)

    @cached_property
    def permissions(self) -> dict[str, bool]:
        """What the person may open (the engine's answer), for the menu."""
        return dict(self.eng.users.permissions())

    def arg(self, name: str) -> str | None:
        """A query parameter, None when it is absent or blank."""
        value = self.request.query_params.get(name, "").strip()
        return value or None


def environment() -> Environment:
    """The templates' environment: autoescaped, strict, with the one translation hook (cli/web/text.py)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
                      lstrip_blocks=True, finalize=i18n.localized)  # a process's labels in the reader's language
    # the request's language (text.speaking) for the texts of Python and templates alike: one hook
    env.install_gettext_callables(text.gettext, text.plural, newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = when
    env.filters["day"] = day
    env.filters["money"] = money
    env.filters["label"] = i18n.label  # a process label in a translated sentence: task=t.name|label
    env.filters["number"] = number
    env.filters["message"] = i18n.message_text  # a message kept as its template (an import's rejected row)
    env.filters["status"] = words.status_word  # a lead's status in the page's language: lead.status|status
    env.filters["task_state"] = words.task_state  # t.state|task_state(lead.status): "not done" on a closed lead
    env.tests["left_undone"] = words.task_left  # t.state is left_undone(lead.status): no deadline to show
    env.globals["assets"] = ASSETS
    return env


def when(value: str | None) -> str:
    """An ISO timestamp as the request's language reads it: ``2026-03-02 09:00``, ``2.03.2026, 09:00``."""
    if not value:
        return "–"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    code = text.language()
    return moment.strftime("%Y-%m-%d %H:%M") if code == i18n.SOURCE else formats.short_time(moment, code)


def day(value: str | None) -> str:
    """An ISO timestamp's date: ``2026-03-02``, ``2.03.2026``."""
    if not value:
        return "–"
    code = text.language()
    if code == i18n.SOURCE:
        return when(value)[:10]
    try:
        return formats.date(value, code)
    except ValueError:
        return value


def money(value: str | None, currency: str = "") -> str:
    """A decimal string with thousands spaced, in the request's language: ``45 000.00 PLN`` (English),
    ``45 000,00 zł`` (Polish)."""
    if value in (None, ""):
        return "–"
    code = text.language()
    if code != i18n.SOURCE:
        return formats.money(str(value), currency, code) if currency else formats.amount(str(value), code)
    whole, _dot, cents = str(value).partition(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    grouped = " ".join(digits[max(0, i - 3):i] for i in range(len(digits), 0, -3)[::-1])
    return f"{sign}{grouped}{'.' + cents if cents else ''}{' ' + currency if currency else ''}"


def number(value: Any) -> str:
    """A count or measure with the request's language's separators."""
    return formats.number(value, text.language())


def render(visit: Visit | None, template: str, *, status: int = 200, site: Site | None = None,
           request: Request | None = None, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A page: ``template`` with ``context``, the menu, the signed-in person and their CSRF token."""
    where = visit.site if visit is not None else site
    assert where is not None
    req = visit.request if visit is not None else request
    assert req is not None
    body = where.env.get_template(template).render(
        me=visit.me if visit is not None else None, csrf=visit.csrf if visit is not None else "",
        nav=menu(visit.permissions) if visit is not None else [], lang=text.language(), path=req.url.path,
        here=req.url.path + (f"?{req.url.query}" if req.url.query else ""),
        query=f"?{req.url.query}" if req.url.query else "",
        q=req.query_params.get("q", ""), **context)
    return HTMLResponse(body, status_code=status, headers=headers)


def refusal(visit: Visit, exc: LeadflowError, *, title: str | None = None) -> HTMLResponse:
    """An engine refusal as a page: its message, and the status of its kind."""
    status = problems.status_of(exc)
    headers = {"Retry-After": str(getattr(exc, "retry_after", 60))} if status == 429 else None
    return render(visit, "message.html", status=status, headers=headers, title=title or _("Refused"),
                  message=i18n.error_text(exc))


def not_found(visit: Visit, what: str) -> HTMLResponse:
    return render(visit, "message.html", status=404, title=_("Not found"), message=what)


def hidden_or_refused(visit: Visit, lead_id: int, exc: LeadflowError) -> HTMLResponse | None:
    """404 for a lead the person may not see (or that does not exist), so nobody learns which ids exist; None
    when they may see it (the caller shows its own refusal)."""
    if isinstance(exc, NotFoundError):
        return not_found(visit, _("Lead %(id)s does not exist.", id=lead_id))
    if isinstance(exc, PermissionDenied):
        try:
            visit.eng.leads.get(lead_id)
        except (PermissionDenied, NotFoundError):
            return not_found(visit, _("Lead %(id)s does not exist.", id=lead_id))
    return None


def redirect(path: str) -> RedirectResponse:
    """After a change: the page to see it on (303: the browser GETs it)."""
    return RedirectResponse(path, status_code=303)


def to_login(request: Request, *, ended: bool = False) -> RedirectResponse:
    """To the log-in page, and back here after it (``ended``: the session cookie names an ended session)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(target, safe='')}{'&ended=1' if ended else ''}",
                                status_code=303)
    if ended:
        security.end_session(response)
    return response


def local_path(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never ``//evil.example`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/board"
    return target
