"""Administration (admins; the engine refuses anyone else): users (``/admin/users``: add, with a one-time password
shown once; role, team, deactivate or reactivate through ``users.set``) and API tokens (``/admin/tokens``: an intake
source's or a personal one, the token shown once; revoke)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import NAV, NavItem, Visit, action, page, redirect, render
from engine.errors import LeadflowError
from engine.i18n import N_

NAV.append(NavItem("/admin/users", N_("Admin"), "users"))

DONE = {"changed": "Saved.", "revoked": "Token revoked."}


def users_page(visit: Visit, *, status: int = 200, error: str | None = None,
               secret: dict[str, Any] | None = None) -> Response:
    return _admin(visit, "admin_users.html", status, error, secret, users=visit.eng.users.list())


def _admin(visit: Visit, template: str, status: int, error: str | None, secret: dict[str, Any] | None,
           **rows: Any) -> Response:
    """An admin page: its rows, an engine refusal, or a secret shown on this answer only."""
    done = visit.arg("done")
    return render(visit, template, status=status, error=error, secret=secret,
                  notice=_(DONE[done]) if done in DONE else None, **rows)


@page("/admin/users")
def users(visit: Visit) -> Response:
    return users_page(visit)


@action("/admin/users")
def add_user(visit: Visit, form: dict[str, str]) -> Response:
    """A new user and their one-time password, shown on this answer only (never in a link or a redirect)."""
    name = form.get("name", "")
    try:
        visit.eng.users.add(name, form.get("role", ""), form.get("team") or None, form.get("email") or None)
        secret = visit.eng.auth.one_time_password(name.strip())
    except LeadflowError as exc:
        return users_page(visit, status=status_of(exc), error=str(exc))
    return users_page(visit, secret=dict(secret))


@action("/admin/users/{name}")
def change_user(visit: Visit, name: str, form: dict[str, str]) -> Response:
    """Role, team and whether active, as the form has them (only what differs from the user as listed)."""
    current = {u["name"]: u for u in visit.eng.users.list()}.get(name)
    if current is None:
        return users_page(visit, status=404, error=_("There is no user '%(name)s'.", name=name))
    role, team, active = form.get("role") or None, form.get("team", "").strip(), form.get("active") == "yes"
    try:
        visit.eng.users.set(name, role=role if role != current["role"] else None,
                            team=team if team and team != current["team"] else None,
                            clear_team=not team and current["team"] is not None,
                            active=active if active != current["active"] else None)
    except LeadflowError as exc:
        return users_page(visit, status=status_of(exc), error=str(exc))
    return redirect("/admin/users?done=changed")


def tokens_page(visit: Visit, *, status: int = 200, error: str | None = None,
                secret: dict[str, Any] | None = None) -> Response:
    return _admin(visit, "admin_tokens.html", status, error, secret, tokens=visit.eng.tokens.list())


@page("/admin/tokens")
def tokens(visit: Visit) -> Response:
    return tokens_page(visit)


def _whole(raw: str | None) -> Any:
    """A number of the form as a number; anything else goes to the engine as written, which refuses it."""
    return None if not raw else int(raw) if raw.isdigit() else raw


@action("/admin/tokens")
def add_token(visit: Visit, form: dict[str, str]) -> Response:
    """An intake source's token (``name`` is the source) or a personal one (acting as ``owner``): shown once."""
    eng = visit.eng
    try:
        if form.get("kind") == "personal":
            made = eng.tokens.add_personal(form.get("name", ""), owner=form.get("owner") or None,
                                           expires_days=_whole(form.get("expires_days")))
        else:
            made = eng.tokens.add(form.get("name", ""), process=form.get("process") or None,
                                  read=form.get("read") == "yes", expires_days=_whole(form.get("expires_days")),
                                  team=form.get("team") or None)
    except LeadflowError as exc:
        return tokens_page(visit, status=status_of(exc), error=str(exc))
    return tokens_page(visit, secret=dict(made))


@action("/admin/tokens/{token_id:int}/revoke")
def revoke_token(visit: Visit, token_id: int, form: dict[str, str]) -> Response:
    visit.eng.tokens.revoke(token_id)
    return redirect("/admin/tokens?done=revoked")
