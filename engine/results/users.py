"""Users, their sessions and their API tokens (docs/server.md, docs/intake.md#tokens)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.values import Timestamp


class User(TypedDict):
    id: int
    name: str
    role: str
    team: str | None
    email: str | None
    created_at: Timestamp
    active: bool
    password_set: bool
    must_change_password: bool
    deactivated_at: Timestamp | None
    language: str | None  # the language the user reads leadflow in; None: the environment's (LEADFLOW_LANG...)


class UserChanged(User):
    """``users.set``: the user, and how many open leads they own (a deactivated user's wait for reassignment)."""

    open_leads: int


class OneTimePassword(TypedDict):
    """``auth.one_time_password``: the password, shown this once."""

    user: User
    password: str


class Session(TypedDict):
    """A login's session, never its token (docs/server.md)."""

    id: int
    user: str
    created_at: Timestamp
    last_seen_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None
    revoked_by: str | None
    address: str | None
    user_agent: str | None


class Login(TypedDict):
    """``auth.login``: the session token, shown this once."""

    token: str
    session: Session
    user: User


class SessionUser(TypedDict):
    """``auth.session``: who a live session belongs to."""

    user: User
    session: Session


class SessionsRevoked(TypedDict):
    user: str
    revoked: int


class Swept(TypedDict):
    sessions: int
    counters: int


class Token(TypedDict):
    """An API token as listed: its first characters, never the token itself. ``source`` is the user it acts as
    (an intake source, or a personal token's owner); ``name`` is a personal token's."""

    id: int
    kind: str
    name: str | None
    source: str
    hint: str
    process: str | None
    read: bool
    created_at: Timestamp
    created_by: str
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    rate_limit: int
    revoked_at: Timestamp | None
    revoked_by: str | None


class NewToken(Token):
    """``token add``: the token itself, shown this once."""

    token: str


class TokenSource(TypedDict):
    """Who an API token speaks for (``Engine.authenticate``)."""

    id: int
    source: str
    process: str | None
    read: bool
