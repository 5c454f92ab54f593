"""Mounting the web app into the team server's FastAPI app: every registered view (cli/web/views.py) becomes a
route, wrapped with who is signed in, the CSRF check of forms and the engine's refusals as pages."""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from cli.server.identity import Caller, cookie_session
from cli.web import security, text
from cli.web.text import _
from cli.web.views import ASSETS, NAV, ROUTES, STATIC, Route, Site, Visit, refusal, render, to_login
from engine.errors import AuthenticationError, LeadflowError

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger("leadflow.web")

#: The modules of pages, imported (and so registered) when the app is mounted.
PAGES = ("cli.web.auth_pages", "cli.web.board_pages", "cli.web.lead_pages", "cli.web.today_pages",
         "cli.web.daily_pages", "cli.web.review_pages", "cli.web.stalled_pages",
         "cli.web.revisit_pages", "cli.web.report_pages", "cli.web.admin_pages",
         "cli.web.process_pages", "cli.web.import_pages", "cli.web.settings_pages")
#: ``X-Forwarded-Proto`` is believed only when the server is told its proxy sets it (docs/web.md).
TRUST_PROXY_ENV = "LEADFLOW_TRUST_PROXY"


def mount(app: FastAPI, engine: Engine, *, trust_proxy: bool | None = None) -> None:
    """Add the web app's pages and files to ``app`` (the team server's), over ``engine``."""
    for name in PAGES:
        importlib.import_module(name)
    trusted = os.environ.get(TRUST_PROXY_ENV) == "1" if trust_proxy is None else trust_proxy
    site = Site(engine, trust_proxy=trusted)
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="assets")
    prefixes = tuple({f"/{r.path.strip('/').split('/')[0]}" for r in ROUTES} | {ASSETS + "/"})
    for route in ROUTES:
        app.add_api_route(route.path, _endpoint(site, route), methods=[route.method], include_in_schema=False)
    app.add_api_route("/", _home, methods=["GET"], include_in_schema=False)
    app.add_middleware(security.Headers, prefixes=prefixes)
    log.debug("web app mounted: %d routes, menu %s", len(ROUTES), [n.path for n in NAV])


async def _home(_request: Request) -> Response:
    return RedirectResponse("/board", status_code=303)


def _endpoint(site: Site, route: Route) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if route.method == "POST" and route.upload and security.is_multipart(request):
            with tempfile.TemporaryDirectory(prefix="leadflow-upload-") as folder:
                try:
                    uploaded = await security.read_upload(request, route.upload, Path(folder))
                except security.TooLarge as exc:
                    return _too_large(request, exc)
                return await run_in_threadpool(_run, site, route, request, uploaded)
        form: dict[str, str] | None = None
        if route.method == "POST":
            try:
                form = await security.read_form(request)
            except security.TooLarge as exc:
                return _too_large(request, exc)
        return await run_in_threadpool(_run, site, route, request, form)

    return endpoint


def _too_large(request: Request, exc: security.TooLarge) -> Response:
    """413, in the browser's language (nobody is looked up for a body refused unread)."""
    with text.speaking(text.choose(None, request.headers.get("accept-language"))):
        if exc.limit:
            message = _("The file is larger than %(mib)s MiB, the most this form takes; nothing was changed.",
                        mib=format(exc.limit / 2**20, "g"))
        else:
            message = _("The form is too large.")
    return Response(message, status_code=413, media_type="text/plain; charset=utf-8")


def _run(site: Site, route: Route, request: Request, form: dict[str, str] | None) -> Response:
    """The view, in the request's language (cli/web/text.py): the person's own, else the browser's."""
    browser = request.headers.get("accept-language")
    if not route.signed_in:
        with text.speaking(text.choose(None, browser)):
            return route.view(site, request, form, **request.path_params)
    try:
        caller = cookie_session(site.engine, request)
    except AuthenticationError:  # ended, revoked, expired, or the user was deactivated
        return to_login(request, ended=True)
    mine = caller.facts["user"].get("language") if caller is not None else None
    with text.speaking(text.choose(mine, browser)):
        return _signed_in(site, route, request, form, caller)


def _signed_in(site: Site, route: Route, request: Request, form: dict[str, str] | None,
               caller: Caller | None) -> Response:
    kwargs: dict[str, Any] = dict(request.path_params)
    if caller is None:
        if route.method == "POST":
            return render(None, "message.html", site=site, request=request, status=403, title=_("Not signed in"),
                          message=_("Your session has ended; sign in again. Nothing was changed."))
        return to_login(request)
    visit = Visit(site, request, caller)
    if route.method == "POST":
        assert form is not None
        if not security.session_csrf_ok(caller.token, form.get("csrf")):
            log.warning("refused %s %s of %s: CSRF token missing or wrong", request.method, request.url.path,
                        caller.user)
            return render(visit, "message.html", status=403, title=_("Refused"),
                          message=_("This form is out of date or did not come from this site (its security token "
                                    "is missing or wrong); nothing was changed. Reload the page and try again."))
        kwargs["form"] = form
    try:
        return route.view(visit, **kwargs)
    except LeadflowError as exc:
        return refusal(visit, exc)
