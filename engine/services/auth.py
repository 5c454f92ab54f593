"""People log in (``engine.auth``): passwords, logging in, sessions. API tokens are ``engine.tokens``.

What is stored, the policies and the limits are documented in docs/server.md ("Logging in, sessions and
tokens"); the numbers live here, once. Passwords and session tokens never reach a log line: a login is logged
with the user name, the address and the outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, passwords, policy, ratelimit, results, store, tokens, views
from engine.errors import (
    AuthenticationError,
    InvalidInputError,
    PasswordChangeRequired,
    RateLimited,
    RuleViolation,
)
from engine.i18n import N_, Message
from engine.services.context import Service, operation
from engine.services.tokens import RATE_WINDOW, TOUCH_EVERY, end_tokens, minute
from engine.store import sessions, users
from engine.vocab import Role

if TYPE_CHECKING:
    from engine.policy import Actor
    from engine.store.sqltypes import Mapping

log = logging.getLogger(__name__)

#: Failed logins counted per user name and per client address in one window; one more is refused (429).
LOGIN_WINDOW = dt.timedelta(minutes=15)
LOGIN_FAILURES_PER_USER = 5
LOGIN_FAILURES_PER_ADDRESS = 20
#: A session ends this long after the login whatever happens, or after this long without a request.
SESSION_LIFETIME = dt.timedelta(hours=12)
SESSION_IDLE = dt.timedelta(hours=2)
#: Ended sessions stay this long (who logged in from where), then ``sweep`` deletes them.
KEEP_ENDED = dt.timedelta(days=30)
#: What a refused login says, whether the user is unknown, has no password or typed a wrong one.
WRONG = N_("wrong user name or password")


def session_view(row: Mapping) -> results.Session:
    return {"id": row["id"], "user": row["name"], "created_at": views.iso(row["created_at"]),
            "last_seen_at": views.iso(row["last_seen_at"]), "expires_at": views.iso(row["expires_at"]),
            "revoked_at": views.iso(row["revoked_at"]), "revoked_by": row["revoked_by"], "address": row["address"],
            "user_agent": row["user_agent"]}


def end_sessions(conn: Connection, person: Actor, by: str, now: dt.datetime) -> int:
    """Revoke every live session of a (stored) user; returns how many."""
    user_id = person.id
    assert user_id is not None, "a stored user has an id"
    return int(conn.execute(sa.update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_by=by)).rowcount)


class AuthService(Service):
    """``engine.auth``: passwords, logging in and out, sessions."""

    name = "auth"

    # -- passwords ---------------------------------------------------------------------------------------------
    @operation
    def set_password(self, name: str, password: str, *, old_password: str | None = None) -> results.User:
        """Set a user's password: the user for themselves (with ``old_password`` when they have one), or an admin
        for anyone (without it; the user must then change it at their next login). Ends the user's sessions.
        The old password is not rate-limited here (the acting user is already trusted: the local CLI); a server
        changes a logged-in person's own password with ``change_password``, which is."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            person = ctx.user(conn, name)
            now = clock.now()
            own = person.id == actor.id
            if not own:
                policy.require_admin(actor, Message(N_("set the password of user '{name}'"), name=person.name))
            elif (stored := ctx.user_row(conn, person.name)["password_hash"]) is not None and not passwords.verify(
                    stored, old_password or ""):
                raise AuthenticationError(N_("the old password of user '{name}' is wrong; the password "
                                             "was not changed"), name=person.name)
            self._store_password(conn, person, password, must_change=not own, now=now)
            log.info("password of user %s set by %s", person.name, actor.name)
            return views.user(ctx.user_row(conn, person.name))

    @operation
    def one_time_password(self, name: str) -> results.OneTimePassword:
        """A new random password for a user (admins), to be changed at their first login: ``{"user", "password"}``;
        the password is in the result and nowhere else. Ends the user's sessions."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            person = ctx.user(conn, name)
            policy.require_admin(actor, Message(N_("set the password of user '{name}'"), name=person.name))
            password = passwords.one_time()
            self._store_password(conn, person, password, must_change=True, now=clock.now())
            log.info("one-time password of user %s made by %s", person.name, actor.name)
            return {"user": views.user(ctx.user_row(conn, person.name)), "password": password}

    @operation
    def change_password(self, name: str, old_password: str, new_password: str, *, address: str) -> results.User:
        """Change one's own password without a session, with the old one (a one-time password is changed so);
        refused and rate-limited exactly like ``login``. Returns the user."""
        text = passwords.check_policy(new_password, name if isinstance(name, str) else "")
        if isinstance(old_password, str) and text == passwords.normalised(old_password):
            raise InvalidInputError("the new password must differ from the old one")
        row = self._check_credentials(name, old_password, address, action="password change")
        with self.ctx.transaction() as conn:
            person = self.ctx.user(conn, row["name"])
            self._store_password(conn, person, text, must_change=False, now=clock.now())
            log.info("password of user %s changed by themselves from %s", person.name, address)
            return views.user(self.ctx.user_row(conn, person.name))

    def _store_password(self, conn: Connection, person: Actor, password: str, *, must_change: bool,
                        now: dt.datetime) -> None:
        if person.role == Role.INTAKE:
            raise RuleViolation(N_("'{name}' is the source of integration tokens and never logs in, so it "
                                   "has no password"), name=person.name)
        text = passwords.check_policy(password, person.name)
        conn.execute(sa.update(users).where(users.c.id == person.id).values(
            password_hash=passwords.hash_password(text), must_change_password=must_change, password_changed_at=now))
        end_sessions(conn, person, self.ctx.user_name, now)
        ratelimit.clear(conn, _user_key(person.name))

    # -- logging in ----------------------------------------------------------------------------------------------
    @operation
    def login(self, name: str, password: str, *, address: str, user_agent: str | None = None) -> results.Login:
        """A new session for the user whose name and password these are: ``{"token", "session", "user"}``, the
        token returned this once. Refused with ``AuthenticationError`` (the same message for an unknown user and
        a wrong password), ``PasswordChangeRequired`` for a one-time password, ``RateLimited`` after too many
        failures (per user and per address; ``retry_after`` says how long to wait)."""
        row = self._check_credentials(name, password, address, action="login")
        ctx = self.ctx
        token = tokens.new_session_token()
        now = clock.now()
        with ctx.transaction() as conn:
            agent = (user_agent or "")[:500] or None
            session_id = int(conn.execute(sa.insert(sessions).values(
                token_hash=tokens.token_hash(token), user_id=row["id"], created_at=now, last_seen_at=now,
                expires_at=now + SESSION_LIFETIME, address=address, user_agent=agent).returning(sessions.c.id))
                .scalar_one())
            log.info("login of user %s from %s: session %d", row["name"], address, session_id)
            return {"token": token, "session": self._session(conn, session_id),
                    "user": views.user(ctx.user_row(conn, row["name"]))}

    def _check_credentials(self, name: str, password: str, address: str, *, action: str) -> Mapping:
        """The user row whose password this is; else the refusal, after counting the failure (committed, even
        though the caller's operation fails). A refusal for too many failures counts and changes nothing."""
        ctx = self.ctx
        if ctx.conn is not None:
            raise RuntimeError(f"{action} runs in a transaction of its own; call it outside Engine.transaction()")
        if not isinstance(address, str) or not address or len(address) > 64:
            raise InvalidInputError(N_("the client address must be a text of 1 to 64 characters, got {address!r}"),
                                    address=address)
        name_ = name.strip()[:200] if isinstance(name, str) else ""
        keys = ((_user_key(name_), LOGIN_FAILURES_PER_USER), (f"login:addr:{address}", LOGIN_FAILURES_PER_ADDRESS))
        refusal: AuthenticationError | None = None
        with ctx.transaction() as conn:
            now = clock.now()
            # the attempt is counted before the password is checked, and the counters' rows stay locked until the
            # commit: concurrent attempts (two server processes) wait, and never check more than the limit allows
            waits = [ratelimit.hit(conn, key, limit=limit, window=LOGIN_WINDOW, now=now) for key, limit in keys]
            if any(waits):
                wait = max(w for w in waits if w)
                log.warning("%s of user %s from %s refused: too many failed attempts, retry after %d s",
                            action, name_, address, wait)
                raise RateLimited(N_("too many failed logins for this user or from this address; try again in {wait} "
                                     "seconds"), wait=wait,
                                  retry_after=wait)  # rolls the counting back: nothing changes
            row = conn.execute(sa.select(users).where(users.c.name == name_)).mappings().first() if name_ else None
            if not passwords.verify(row["password_hash"] if row is not None else None, password):
                log.warning("%s of user %s from %s refused: %s", action, name_, address, WRONG)
                refusal = AuthenticationError(WRONG)
            else:
                assert row is not None
                if not row["active"]:
                    log.warning("%s of user %s from %s refused: deactivated", action, name_, address)
                    raise AuthenticationError(N_("user '{name}' is deactivated; an admin may reactivate them"),
                                              name=row['name'])
                if row["must_change_password"] and action == "login":
                    log.info("login of user %s from %s refused: the password must be changed", name_, address)
                    raise PasswordChangeRequired(N_("user '{name}' must change their password before logging "
                                                    "in (it is a one-time password or one an admin set)"),
                                                 name=row['name'])
                if passwords.needs_rehash(row["password_hash"]):
                    conn.execute(sa.update(users).where(users.c.id == row["id"]).values(
                        password_hash=passwords.hash_password(password)))
                ratelimit.clear(conn, keys[0][0])  # only failures count: the user's slate is clean again,
                ratelimit.give_back(conn, keys[1][0])  # and the address's attempt is given back
        if refusal is not None:  # raised after the commit: the failure must stay counted
            raise refusal
        assert row is not None, "without a refusal, the credentials found their user"
        return row

    # -- sessions ------------------------------------------------------------------------------------------------
    @operation
    def session(self, token: str | None) -> results.SessionUser:
        """The user a session token belongs to: ``{"user", "session"}``, while the session has not ended (its
        lifetime, its idle timeout, a logout or revocation, the user's deactivation). Writes only the session's
        last-seen time, at most once a minute (and not while another thread of this process holds SQLite's write
        lock, as a running import does); a refusal writes nothing."""
        now = clock.now()
        # read without the write lock, which a running import holds on SQLite: pages (its progress) answer meanwhile
        with self.ctx.reading() as conn:
            row = _live_session(conn, token, now)
            user = views.user(self.ctx.user_row(conn, row["name"]))
        if now - row["last_seen_at"] >= TOUCH_EVERY and not store.writing_now(self.ctx.db):
            with self.ctx.transaction() as conn:
                conn.execute(sa.update(sessions).where(sessions.c.id == row["id"]).values(last_seen_at=now))
            row = {**row, "last_seen_at": now}
        return {"user": user, "session": session_view(row)}

    @operation
    def logout(self, token: str | None) -> results.Session:
        """End the session of this token (its user logs out); refused as ``session`` is for one that has ended."""
        with self.ctx.transaction() as conn:
            now = clock.now()
            row = _live_session(conn, token, now)
            conn.execute(sa.update(sessions).where(sessions.c.id == row["id"]).values(
                revoked_at=now, revoked_by=row["name"]))
            log.info("logout of user %s: session %d", row["name"], row["id"])
            return self._session(conn, row["id"])

    @operation
    def list_sessions(self, name: str) -> list[results.Session]:
        """A user's live sessions (the user themselves, or an admin)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            person = self.self_or_admin(conn, name, "see the sessions of")
            now = clock.now()
            rows = conn.execute(_SESSIONS.where(sessions.c.user_id == person.id, sessions.c.revoked_at.is_(None),
                                                sessions.c.expires_at > now,
                                                sessions.c.last_seen_at > now - SESSION_IDLE)
                                .order_by(sessions.c.id)).mappings()
            return [session_view(r) for r in rows]

    @operation
    def revoke_sessions(self, name: str) -> results.SessionsRevoked:
        """End every session of a user at once (the user themselves, or an admin): ``{"user", "revoked"}``."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            person = self.self_or_admin(conn, name, "end the sessions of")
            count = end_sessions(conn, person, ctx.user_name, clock.now())
            log.info("%d sessions of user %s revoked by %s", count, person.name, ctx.user_name)
            return {"user": person.name, "revoked": count}

    @operation
    def sweep(self) -> results.Swept:
        """Delete the sessions that ended more than ``KEEP_ENDED`` ago and the rate-limit counters whose window is
        over (admins; for a timer beside ``run-due``): ``{"sessions", "counters"}``, how many went."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("sweep ended sessions")))
            return sweep(conn, clock.now())

    def lock_out(self, conn: Connection, person: Actor, *, by: str, now: dt.datetime) -> None:
        """Revoke every session and API token of a user at once (their deactivation, in its transaction)."""
        sessions_ended = end_sessions(conn, person, by, now)
        tokens_ended = end_tokens(conn, person.name, by, now)
        log.info("user %s locked out by %s: %d sessions and %d tokens revoked", person.name, by, sessions_ended,
                 tokens_ended)

    def _session(self, conn: Connection, session_id: int) -> results.Session:
        return session_view(conn.execute(_SESSIONS.where(sessions.c.id == session_id)).mappings().one())

    def self_or_admin(self, conn: Connection, name: str, what: str) -> Actor:
        """The user ``name`` when the acting user is that user or an admin; else the refusal."""
        actor = self.ctx.actor(conn)
        person = self.ctx.user(conn, name)
        if person.id != actor.id:
            policy.require_admin(actor, Message(N_("{what} user '{name}'"), what=what, name=person.name))
        return person


def sweep(conn: Connection, now: dt.datetime) -> results.Swept:
    """Delete the sessions that ended more than ``KEEP_ENDED`` before ``now`` and the rate-limit counters whose
    window is over (``auth.sweep``, and every ``run-due``: a timer keeps the tables small)."""
    cutoff = now - KEEP_ENDED
    ended = sa.or_(sessions.c.expires_at < cutoff, sessions.c.revoked_at < cutoff,
                   sessions.c.last_seen_at < cutoff - SESSION_IDLE)
    gone = int(conn.execute(sa.delete(sessions).where(ended)).rowcount)
    counters = ratelimit.sweep(conn, older_than=now - max(LOGIN_WINDOW, RATE_WINDOW))
    if gone or counters:
        log.info("swept %d ended sessions and %d rate-limit counters", gone, counters)
    return {"sessions": gone, "counters": counters}


def _user_key(name: str) -> str:
    return f"login:user:{name.casefold()}"


_SESSIONS = sa.select(sessions, users.c.name).join(users, users.c.id == sessions.c.user_id)


def _live_session(conn: Connection, token: str | None, now: dt.datetime) -> Mapping:
    if not token or not isinstance(token, str):
        raise AuthenticationError("not logged in: no session")
    row = conn.execute(sa.select(sessions, users.c.name, users.c.active).join(users, users.c.id == sessions.c.user_id)
                       .where(sessions.c.token_hash == tokens.token_hash(token))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        raise AuthenticationError("the session is not valid (unknown, logged out or revoked); log in again")
    if now >= row["expires_at"]:
        raise AuthenticationError(N_("the session ended {expires_at}, {hours} after "
                                     "its login; log in again"), expires_at=minute(row['expires_at']),
                                  hours=_hours(SESSION_LIFETIME))
    if now - row["last_seen_at"] >= SESSION_IDLE:
        raise AuthenticationError(N_("the session ended after {hours} without a request; log in again"),
                                  hours=_hours(SESSION_IDLE))
    if not row["active"]:
        raise AuthenticationError(N_("user '{name}' is deactivated"), name=row['name'])
    return row


def _hours(span: dt.timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours" if hours != 1 else "1 hour"
