"""Users and their roles (``engine.users``), and the one place a user is written."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import access, clock, results, views
from engine.errors import InvalidInputError, RuleViolation, suggest
from engine.rules import check_email, clean_text
from engine.services.context import Service, operation
from engine.store import process_versions, users

USER_ROLES = ("salesperson", "manager", "admin")


class UserService(Service):
    """``engine.users``: who may act, in which role and team."""

    name = "users"

    @operation
    def add(self, name: str, role: str, team: str | None = None, email: str | None = None) -> results.User:
        """Register a user (admins); ``email`` is where their reminders and their role's e-mails go."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            access.require_admin(ctx.actor(conn), "add users")
            name_ = clean_text(name, "user name", 200)
            if not name_:
                raise InvalidInputError("user name must not be empty")
            if role not in USER_ROLES:
                departments = _declared_roles(conn)
                if role not in departments:
                    known = [*USER_ROLES, *sorted(departments)]
                    raise InvalidInputError(
                        f"role '{role}' is neither a user role ({', '.join(USER_ROLES)}) nor a department declared "
                        f"in a loaded process ({', '.join(sorted(departments)) or 'none loaded'})"
                        f"{suggest(role, known)}"
                    )
            if conn.execute(sa.select(users.c.id).where(users.c.name == name_)).first():
                raise RuleViolation(f"user '{name_}' already exists")
            conn.execute(sa.insert(users).values(name=name_, role=role, team=clean_text(team, "team", 200),
                                                 email=check_email(email, f"e-mail of {name_}"),
                                                 created_at=clock.now()))
            return views.user(ctx.user(conn, name_))

    @operation
    def set_email(self, name: str, email: str | None) -> results.User:
        """Set (or, with None or an empty text, remove) a user's e-mail address (admins)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            access.require_admin(ctx.actor(conn), "change users")
            person = ctx.user(conn, name)
            conn.execute(sa.update(users).where(users.c.id == person["id"]).values(
                email=check_email(email, f"e-mail of {person['name']}")))
            return views.user(ctx.user(conn, person["name"]))

    @operation
    def list(self) -> list[results.User]:
        """Every user, by name."""
        with self.ctx.transaction() as conn:
            self.ctx.actor(conn)
            rows = conn.execute(sa.select(users).order_by(users.c.name)).mappings()
            return [views.user(r) for r in rows]

    @operation
    def whoami(self) -> results.User:
        """The acting user."""
        with self.ctx.transaction() as conn:
            return views.user(self.ctx.actor(conn))


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


def add_source(conn: Connection, name: str) -> None:
    """Register an API token's source as a technical user (role ``intake``), the actor of its leads."""
    conn.execute(sa.insert(users).values(name=name, role=access.INTAKE, team=None, created_at=clock.now()))
