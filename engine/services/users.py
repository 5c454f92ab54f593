"""Users and their roles (``engine.users``), and the one place a user is written."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, i18n, policy, results, views
from engine.errors import InvalidInputError, RuleViolation, did_you_mean
from engine.i18n import N_, Message
from engine.rules import check_email, chosen_language, one_line_text
from engine.services.context import Service, operation
from engine.store import leads, process_versions, users
from engine.vocab import NAME_LENGTH, OWNERS, USER_ROLES, LeadStatus, Role


class UserService(Service):
    """``engine.users``: who may act, in which role and team."""

    name = "users"

    @operation
    def add(self, name: str, role: str, team: str | None = None, email: str | None = None, *,
            password: str | None = None) -> results.User:
        """Register a user (admins); ``email`` is where their reminders and their role's e-mails go. With
        ``password`` (checked by the policy of docs/server.md) the user may log in to a server; an admin chose it,
        so the user must change it at the first login. Without one, ``auth.one_time_password`` makes one."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("add users")))
            name_ = one_line_text(name, "user name", NAME_LENGTH)
            if not name_:
                raise InvalidInputError("user name must not be empty")
            _check_role(conn, role)
            if conn.execute(sa.select(users.c.id).where(users.c.name == name_)).first():
                raise RuleViolation(N_("user '{name}' already exists"), name=name_)
            conn.execute(sa.insert(users).values(name=name_, role=role, team=one_line_text(team, "team", NAME_LENGTH),
                                                 email=check_email(email, f"e-mail of {name_}"),
                                                 created_at=clock.now()))
            if password is not None:
                self.engine.auth.set_password(name_, password)
            return views.user(ctx.user_row(conn, name_))

    @operation
    def set(self, name: str, *, role: str | None = None, team: str | None = None, clear_team: bool = False,
            active: bool | None = None) -> results.UserChanged:
        """Change a user's role or team, or deactivate (``active=False``) or reactivate them (admins).

        A deactivated user cannot act or log in, and their sessions and API tokens are revoked at once; their
        leads stay theirs and wait for reassignment (``open_leads`` in the result says how many are open). The
        last active admin stays an active admin, and a user who owns open leads keeps a role that may own them."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            policy.require_admin(actor, Message(N_("change users")))
            person = ctx.user(conn, name)
            if person.role == Role.INTAKE and (role is not None or team is not None or clear_team):
                raise RuleViolation(N_("'{name}' is a source of the HTTP intake; its role and team are fixed"),
                                    name=person.name)
            now = clock.now()
            changes: dict[str, Any] = {}
            if role is not None and role != person.role:
                _check_role(conn, role)
                changes["role"] = role
            if team is not None or clear_team:
                changes["team"] = None if clear_team else one_line_text(team, "team", NAME_LENGTH)
            if active is not None and active != person.active:
                changes.update(active=active, deactivated_at=None if active else now)
            open_leads = int(conn.execute(sa.select(sa.func.count()).select_from(leads).where(
                leads.c.owner == person.name, leads.c.status == LeadStatus.OPEN)).scalar_one())
            new_role = changes.get("role", person.role)
            if open_leads and new_role not in OWNERS:
                raise RuleViolation(N_("user '{name}' owns {open_leads} open leads, which a {new_role} cannot "
                                       "own; reassign them first (leadflow lead list --owner {name})"),
                                    name=person.name,
                                    open_leads=open_leads, new_role=new_role)
            if person.role == Role.ADMIN and person.active and (
                    new_role != Role.ADMIN or not changes.get("active", True)):
                admins = conn.execute(sa.select(sa.func.count()).select_from(users).where(
                    users.c.role == Role.ADMIN, users.c.active)).scalar_one()
                if admins <= 1:
                    raise RuleViolation(N_("user '{name}' is the last active admin; make another admin "
                                           "first"), name=person.name)
            if changes:
                conn.execute(sa.update(users).where(users.c.id == person.id).values(**changes))
            if changes.get("active") is False:
                self.engine.auth.lock_out(conn, person, by=actor.name, now=now)
            return {**views.user(ctx.user_row(conn, person.name)), "open_leads": open_leads}

    @operation
    def set_email(self, name: str, email: str | None) -> results.User:
        """Set (or, with None or an empty text, remove) a user's e-mail address (admins)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("change users")))
            person = ctx.user(conn, name)
            conn.execute(sa.update(users).where(users.c.id == person.id).values(
                email=check_email(email, f"e-mail of {person.name}")))
            return views.user(ctx.user_row(conn, person.name))

    @operation
    def set_language(self, name: str, language: str | None) -> results.User:
        """Set the language ``name`` reads leadflow in (one of ``i18n.LANGUAGES``; None or an empty text: the
        environment's again). Users set their own; admins anyone's."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            person = ctx.user(conn, name)
            policy.require_self_or_admin(actor, person, Message(N_("set the language of user '{name}'"),
                                                                name=person.name))
            chosen = chosen_language(language)
            conn.execute(sa.update(users).where(users.c.id == person.id).values(language=chosen))
            if person.name == actor.name:
                i18n.set_user_language(chosen)
            return views.user(ctx.user_row(conn, person.name))

    @operation
    def list(self) -> list[results.User]:
        """Every user, by name."""
        with self.ctx.transaction() as conn:
            self.ctx.actor(conn)
            rows = conn.execute(sa.select(users).order_by(users.c.name)).mappings()
            return [views.user(r) for r in rows]

    @operation
    def permissions(self) -> dict[str, bool]:
        """What the acting user may open (``policy.capabilities``: the rules the operations check), so that an
        interface offers only that: ``{"board": true, "reviews": false, "import": false, ...}``."""
        with self.ctx.reading() as conn:
            return policy.capabilities(self.ctx.actor(conn))

    @operation
    def whoami(self) -> results.User:
        """The acting user."""
        with self.ctx.transaction() as conn:
            return views.user(self.ctx.user_row(conn, self.ctx.actor(conn).name))


def _check_role(conn: Connection, role: str) -> None:
    if role in USER_ROLES:
        return
    departments = _declared_roles(conn)
    if role not in departments:
        known = [*USER_ROLES, *sorted(departments)]
        raise InvalidInputError(
            N_("role '{role}' is neither a user role ({user_roles}) nor a department declared "
               "in a loaded process ({departments})"
               "{suggestion}"), role=role, user_roles=', '.join(USER_ROLES),
            departments=', '.join(sorted(departments)) or Message(N_("none loaded")),
            suggestion=did_you_mean(role, known))


def _declared_roles(conn: Connection) -> set[str]:
    roles: set[str] = set()
    for (spec_json,) in conn.execute(sa.select(process_versions.c.spec_json)):
        roles.update(r["id"] for r in json.loads(spec_json)["roles"])
    return roles


def count(conn: Connection) -> int:
    """How many users the database has (none: a fresh database)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())


def first_schema_user(conn: Connection, name: str) -> sa.RowMapping | None:
    """``name``'s row with only the columns of the first schema (later revisions add some, such as
    users.email in 0004), readable before an upgrade."""
    return conn.execute(sa.select(users.c.name, users.c.role, users.c.team)
                        .where(users.c.name == name)).mappings().first()


def add_first_admin(conn: Connection, name: str) -> None:
    """Make ``name`` the first admin of a fresh database."""
    conn.execute(sa.insert(users).values(name=name, role="admin", team=None, created_at=clock.now()))


def add_source(conn: Connection, name: str, team: str | None = None) -> None:
    """Register an API token's source as a technical user (role ``intake``), the actor of its leads; ``team``: where
    the leads it sends wait when no assignment rule places them (engine.assignment.waiting_team)."""
    conn.execute(sa.insert(users).values(name=name, role=Role.INTAKE, team=team, created_at=clock.now()))
