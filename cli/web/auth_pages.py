"""Logging in and out, and changing one's password (also the forced change of a one-time password): the
engine's ``auth.login/session/logout/change_password``; the session token lives in an HttpOnly cookie."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cli.server.identity import cookie_session
from cli.server.problems import status_of
from cli.web import security
from cli.web.text import _
from cli.web.views import Site, Visit, action, local_path, page, public, redirect, render
from engine.errors import AuthenticationError, LeadflowError, PasswordChangeRequired, RateLimited


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _anonymous(site: Site, request: Request, template: str, *, status: int = 200,
               headers: dict[str, str] | None = None, **context: Any) -> Response:
    """A page for someone not signed in, with the log-in form's CSRF token (and its cookie when new)."""
    token, new = security.login_csrf(request)
    response = render(None, template, site=site, request=request, status=status, headers=headers, login_csrf=token,
                      **context)
    if new:
        security.set_login_csrf(response, token, request, trust_proxy=site.trust_proxy)
    return response


def _login_form(site: Site, request: Request, *, status: int = 200, error: str | None = None,
                username: str = "", next_: str | None = None, retry_after: int | None = None) -> Response:
    return _anonymous(site, request, "login.html", status=status, error=error, username=username,
                      next=local_path(next_ or request.query_params.get("next")),
                      ended=request.query_params.get("ended") == "1",
                      headers={"Retry-After": str(retry_after)} if retry_after is not None else None)


@public("GET", "/login")
def login_page(site: Site, request: Request, _form: dict[str, str] | None) -> Response:
    return _login_form(site, request)


@public("POST", "/login")
def login(site: Site, request: Request, form: dict[str, str] | None) -> Response:
    assert form is not None
    if not security.login_csrf_ok(request, form.get("csrf")):
        return _login_form(site, request, status=403, error=_("The log-in form had expired; please sign in again."),
                           next_=form.get("next"))
    name, password = form.get("username", ""), form.get("password", "")
    try:
        made = site.system.auth.login(name, password, address=_address(request),
                                      user_agent=request.headers.get("user-agent"))
    except PasswordChangeRequired as exc:
        return _password_form(site, request, None, username=name, forced=True, status=403, error=str(exc))
    except RateLimited as exc:
        return _login_form(site, request, status=429, error=str(exc), username=name, next_=form.get("next"),
                           retry_after=exc.retry_after)
    except LeadflowError as exc:  # a wrong password, a deactivated user, an unusable name
        return _login_form(site, request, status=status_of(exc), error=str(exc), username=name,
                           next_=form.get("next"))
    response = redirect(local_path(form.get("next")))
    security.set_session(response, made["token"], request, trust_proxy=site.trust_proxy)
    return response


@action("/logout")
def logout(visit: Visit, form: dict[str, str]) -> Response:
    visit.site.system.auth.logout(visit.caller.token)
    response = redirect("/login")
    security.end_session(response)
    return response


def _password_form(site: Site, request: Request, visit: Visit | None, *, username: str = "", forced: bool = False,
                   status: int = 200, error: str | None = None) -> Response:
    if visit is not None:
        return render(visit, "password.html", status=status, error=error, forced=False, username=visit.me["name"],
                      login_csrf="")
    return _anonymous(site, request, "password.html", status=status, error=error, forced=forced, username=username)


@page("/password")
def password_page(visit: Visit) -> Response:
    return _password_form(visit.site, visit.request, visit)


@public("POST", "/password")
def change_password(site: Site, request: Request, form: dict[str, str] | None) -> Response:
    """Change a password with the old one: a signed-in person's own (session CSRF), or one that must be changed
    before logging in (the log-in form's CSRF). Then a new session, since a new password ends the old ones."""
    assert form is not None
    try:
        caller = cookie_session(site.engine, request)
    except AuthenticationError:
        caller = None
    visit = Visit(site, request, caller) if caller is not None else None
    name = caller.user if caller is not None else form.get("username", "")
    ok = (security.session_csrf_ok(caller.token, form.get("csrf")) if caller is not None
          else security.login_csrf_ok(request, form.get("csrf")))
    if not ok:
        return _password_form(site, request, visit, username=name, forced=caller is None, status=403,
                              error=_("The form had expired; nothing was changed. Please try again."))
    new = form.get("new_password", "")
    if new != form.get("repeat_password", ""):
        return _password_form(site, request, visit, username=name, forced=caller is None, status=422,
                              error=_("The new password and its repetition differ; nothing was changed."))
    try:
        site.system.auth.change_password(name, form.get("old_password", ""), new, address=_address(request))
        made = site.system.auth.login(name, new, address=_address(request),
                                      user_agent=request.headers.get("user-agent"))
    except LeadflowError as exc:
        return _password_form(site, request, visit, username=name, forced=caller is None, status=status_of(exc),
                              error=str(exc))
    response = redirect("/board?changed=1")
    security.set_session(response, made["token"], request, trust_proxy=site.trust_proxy)
    return response
