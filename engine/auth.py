"""People log in (``engine.auth``): passwords, login, sessions, personal access tokens, and the tokens' checks.

What is stored, the policies and the limits are documented in docs/server.md ("Logging in, sessions and
tokens"); the numbers live here, once. Tokens and passwords never reach a log line: a login is logged with the
user name, the address and the outcome; a token by its id.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import access, clock, passwords, ratelimit, tokens, views
from engine.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PasswordChangeRequired,
    PermissionDenied,
    RateLimited,
    RuleViolation,
)
from engine.rules import clean_text
from engine.store import api_tokens, sessions, users

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: Failed logins counted per user name and per client address in one window; one more is refused (429).
LOGIN_WINDOW = dt.timedelta(minutes=15)
LOGIN_FAILURES_PER_USER = 5
LOGIN_FAILURES_PER_ADDRESS = 20
#: A session ends this long after the login whatever happens, or after this long without a request.
SESSION_LIFETIME = dt.timedelta(hours=12)
SESSION_IDLE = dt.timedelta(hours=2)
#: Ended sessions stay this long (who logged in from where), then ``sweep`` deletes them.
KEEP_ENDED = dt.timedelta(days=30)
#: ``last_seen_at`` / ``last_used_at`` are written at most this often, not on every request.
TOUCH_EVERY = dt.timedelta(minutes=1)
#: Personal access tokens always expire: 90 days unless asked, at most a year. Integration tokens may not expire.
PERSONAL_DAYS_DEFAULT = 90
PERSONAL_DAYS_MAX = 365
INTEGRATION_DAYS_MAX = 3650
#: Requests per minute a token may make (each token's own ``rate_limit`` overrides its kind's default).
RATE_WINDOW = dt.timedelta(minutes=1)
RATE_DEFAULTS = {tokens.PERSONAL: 600, tokens.INTEGRATION: 6000}
RATE_MAX = 1_000_000
#: What a refused login says, whether the user is unknown, has no password or typed a wrong one.
WRONG = "wrong user name or password"


def _expiry(days: int | None, now: dt.datetime, *, maximum: int, what: str) -> dt.datetime:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= maximum:
        raise InvalidInputError(f"the expiry of {what} must be a whole number of days from 1 to {maximum}, "
                                f"got {days!r}")
    return now + dt.timedelta(days=days)


def _rate(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= RATE_MAX:
        raise InvalidInputError(f"a token's rate limit must be a whole number of requests per minute from 1 to "
                                f"{RATE_MAX}, got {limit!r}")
    return limit


def _when(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="minutes")


def session_view(row: Any) -> Json:
    return {"id": row["id"], "user": row["name"], "created_at": views.iso(row["created_at"]),
            "last_seen_at": views.iso(row["last_seen_at"]), "expires_at": views.iso(row["expires_at"]),
            "revoked_at": views.iso(row["revoked_at"]), "revoked_by": row["revoked_by"], "address": row["address"],
            "user_agent": row["user_agent"]}


def token_view(row: Any) -> Json:
    """A token as ``token list --json`` shows it (docs/cli.md): never the token, only its first characters."""
    return {"id": row["id"], "kind": row["kind"], "name": row["name"], "source": row["source"],
            "hint": row["hint"] + "...", "process": row["process"], "read": row["can_read"],
            "created_at": views.iso(row["created_at"]), "created_by": row["created_by"],
            "expires_at": views.iso(row["expires_at"]), "last_used_at": views.iso(row["last_used_at"]),
            "rate_limit": row["rate_limit"] or RATE_DEFAULTS[row["kind"]],
            "revoked_at": views.iso(row["revoked_at"]), "revoked_by": row["revoked_by"]}


def token_row(conn: Connection, token_id: int) -> Any:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first() if (
        isinstance(token_id, int) and not isinstance(token_id, bool) and 0 < token_id < 2**63) else None
    if row is None:
        raise NotFoundError(f"API token {token_id} does not exist")
    return row


def end_sessions(conn: Connection, user_id: int, by: str, now: dt.datetime) -> int:
    """Revoke every live session of a user; returns how many."""
    return int(conn.execute(sa.update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_by=by)).rowcount)


def end_tokens(conn: Connection, user_name: str, by: str, now: dt.datetime) -> int:
    """Revoke every live token acting as a user (personal or, for a source, integration); returns how many."""
    return int(conn.execute(sa.update(api_tokens).where(api_tokens.c.source == user_name,
                                                        api_tokens.c.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_by=by)).rowcount)


class AuthService:
    """``engine.auth``: passwords, logging in and out, sessions, and every API token (personal and integration)."""

    name = "auth"

    def __init__(self, engine: Engine):
        self.engine = engine

    # -- passwords ---------------------------------------------------------------------------------------------
    def set_password(self, name: str, password: str, *, old_password: str | None = None) -> Json:
        """Set a user's password: the user for themselves (with ``old_password`` when they have one), or an admin
        for anyone (without it; the user must then change it at their next login). Ends the user's sessions.
        The old password is not rate-limited here (the acting user is already trusted: the local CLI); a server
        changes a logged-in person's own password with ``change_password``, which is."""
        eng = self.engine
        with eng.transaction() as conn:
            actor = eng._actor(conn)
            person = eng._user(conn, name)
            now = clock.now()
            own = person["id"] == actor["id"]
            if not own:
                access.require_admin(actor, f"set the password of user '{person['name']}'")
            elif person["password_hash"] is not None and not passwords.verify(person["password_hash"],
                                                                               old_password or ""):
                raise AuthenticationError(f"the old password of user '{person['name']}' is wrong; the password "
                                          "was not changed")
            self._store_password(conn, person, password, must_change=not own, now=now)
            log.info("password of user %s set by %s", person["name"], actor["name"])
            return views.user(eng._user(conn, person["name"]))

    def one_time_password(self, name: str) -> Json:
        """A new random password for a user (admins), to be changed at their first login: ``{"user", "password"}``;
        the password is in the result and nowhere else. Ends the user's sessions."""
        eng = self.engine
        with eng.transaction() as conn:
            actor = eng._actor(conn)
            person = eng._user(conn, name)
            access.require_admin(actor, f"set the password of user '{person['name']}'")
            password = passwords.one_time()
            self._store_password(conn, person, password, must_change=True, now=clock.now())
            log.info("one-time password of user %s made by %s", person["name"], actor["name"])
            return {"user": views.user(eng._user(conn, person["name"])), "password": password}

    def change_password(self, name: str, old_password: str, new_password: str, *, address: str) -> Json:
        """Change one's own password without a session, with the old one (a one-time password is changed so);
        refused and rate-limited exactly like ``login``. Returns the user."""
        text = passwords.check_policy(new_password, name if isinstance(name, str) else "")
        if isinstance(old_password, str) and text == passwords.normalised(old_password):
            raise InvalidInputError("the new password must differ from the old one")
        row = self._check_credentials(name, old_password, address, action="password change")
        with self.engine.transaction() as conn:
            person = self.engine._user(conn, row["name"])
            self._store_password(conn, person, text, must_change=False, now=clock.now())
            log.info("password of user %s changed by themselves from %s", person["name"], address)
            return views.user(self.engine._user(conn, person["name"]))

    def _store_password(self, conn: Connection, person: Any, password: str, *, must_change: bool,
                        now: dt.datetime) -> None:
        if person["role"] == access.INTAKE:
            raise RuleViolation(f"'{person['name']}' is the source of integration tokens and never logs in, so it "
                                "has no password")
        text = passwords.check_policy(password, person["name"])
        conn.execute(sa.update(users).where(users.c.id == person["id"]).values(
            password_hash=passwords.hash_password(text), must_change_password=must_change, password_changed_at=now))
        end_sessions(conn, person["id"], self.engine.user_name, now)
        ratelimit.clear(conn, _user_key(person["name"]))

    # -- logging in ----------------------------------------------------------------------------------------------
    def login(self, name: str, password: str, *, address: str, user_agent: str | None = None) -> Json:
        """A new session for the user whose name and password these are: ``{"token", "session", "user"}``, the
        token returned this once. Refused with ``AuthenticationError`` (the same message for an unknown user and
        a wrong password), ``PasswordChangeRequired`` for a one-time password, ``RateLimited`` after too many
        failures (per user and per address; ``retry_after`` says how long to wait)."""
        row = self._check_credentials(name, password, address, action="login")
        eng = self.engine
        token = tokens.new_session_token()
        now = clock.now()
        with eng.transaction() as conn:
            agent = (user_agent or "")[:500] or None
            session_id = int(conn.execute(sa.insert(sessions).values(
                token_hash=tokens.token_hash(token), user_id=row["id"], created_at=now, last_seen_at=now,
                expires_at=now + SESSION_LIFETIME, address=address, user_agent=agent).returning(sessions.c.id))
                .scalar_one())
            log.info("login of user %s from %s: session %d", row["name"], address, session_id)
            return {"token": token, "session": self._session(conn, session_id),
                    "user": views.user(eng._user(conn, row["name"]))}

    def _check_credentials(self, name: str, password: str, address: str, *, action: str) -> Any:
        """The user row whose password this is; else the refusal, after counting the failure (committed, even
        though the caller's operation fails). A refusal for too many failures counts and changes nothing."""
        eng = self.engine
        if eng._conn is not None:
            raise RuntimeError(f"{action} runs in a transaction of its own; call it outside Engine.transaction()")
        if not isinstance(address, str) or not address or len(address) > 64:
            raise InvalidInputError(f"the client address must be a text of 1 to 64 characters, got {address!r}")
        name_ = name.strip()[:200] if isinstance(name, str) else ""
        keys = ((_user_key(name_), LOGIN_FAILURES_PER_USER), (f"login:addr:{address}", LOGIN_FAILURES_PER_ADDRESS))
        refusal: AuthenticationError | None = None
        with eng.transaction() as conn:
            now = clock.now()
            # the attempt is counted before the password is checked, and the counters' rows stay locked until the
            # commit: concurrent attempts (two server processes) wait, and never check more than the limit allows
            waits = [ratelimit.hit(conn, key, limit=limit, window=LOGIN_WINDOW, now=now) for key, limit in keys]
            if any(waits):
                wait = max(w for w in waits if w)
                log.warning("%s of user %s from %s refused: too many failed attempts, retry after %d s",
                            action, name_, address, wait)
                raise RateLimited(f"too many failed logins for this user or from this address; try again in {wait} "
                                  "seconds", retry_after=wait)  # rolls the counting back: nothing changes
            row = conn.execute(sa.select(users).where(users.c.name == name_)).mappings().first() if name_ else None
            if not passwords.verify(row["password_hash"] if row is not None else None, password):
                log.warning("%s of user %s from %s refused: %s", action, name_, address, WRONG)
                refusal = AuthenticationError(WRONG)
            else:
                assert row is not None
                if not row["active"]:
                    log.warning("%s of user %s from %s refused: deactivated", action, name_, address)
                    raise AuthenticationError(f"user '{row['name']}' is deactivated; an admin may reactivate them")
                if row["must_change_password"] and action == "login":
                    log.info("login of user %s from %s refused: the password must be changed", name_, address)
                    raise PasswordChangeRequired(f"user '{row['name']}' must change their password before logging "
                                                 "in (it is a one-time password or one an admin set)")
                if passwords.needs_rehash(row["password_hash"]):
                    conn.execute(sa.update(users).where(users.c.id == row["id"]).values(
                        password_hash=passwords.hash_password(password)))
                ratelimit.clear(conn, keys[0][0])  # only failures count: the user's slate is clean again,
                ratelimit.give_back(conn, keys[1][0])  # and the address's attempt is given back
        if refusal is not None:  # raised after the commit: the failure must stay counted
            raise refusal
        return row

    # -- sessions ------------------------------------------------------------------------------------------------
    def session(self, token: str | None) -> Json:
        """The user a session token belongs to: ``{"user", "session"}``, while the session has not ended (its
        lifetime, its idle timeout, a logout or revocation, the user's deactivation). Writes only the session's
        last-seen time, at most once a minute; a refusal writes nothing."""
        with self.engine.transaction() as conn:
            row = _live_session(conn, token, clock.now())
            return {"user": views.user(self.engine._user(conn, row["name"])), "session": session_view(row)}

    def logout(self, token: str | None) -> Json:
        """End the session of this token (its user logs out); refused as ``session`` is for one that has ended."""
        with self.engine.transaction() as conn:
            now = clock.now()
            row = _live_session(conn, token, now)
            conn.execute(sa.update(sessions).where(sessions.c.id == row["id"]).values(
                revoked_at=now, revoked_by=row["name"]))
            log.info("logout of user %s: session %d", row["name"], row["id"])
            return self._session(conn, row["id"])

    def list_sessions(self, name: str) -> list[Json]:
        """A user's live sessions (the user themselves, or an admin)."""
        eng = self.engine
        with eng.transaction() as conn:
            person = self._self_or_admin(conn, name, "see the sessions of")
            now = clock.now()
            rows = conn.execute(_SESSIONS.where(sessions.c.user_id == person["id"], sessions.c.revoked_at.is_(None),
                                                sessions.c.expires_at > now,
                                                sessions.c.last_seen_at > now - SESSION_IDLE)
                                .order_by(sessions.c.id)).mappings()
            return [session_view(r) for r in rows]

    def revoke_sessions(self, name: str) -> Json:
        """End every session of a user at once (the user themselves, or an admin): ``{"user", "revoked"}``."""
        eng = self.engine
        with eng.transaction() as conn:
            person = self._self_or_admin(conn, name, "end the sessions of")
            count = end_sessions(conn, person["id"], eng.user_name, clock.now())
            log.info("%d sessions of user %s revoked by %s", count, person["name"], eng.user_name)
            return {"user": person["name"], "revoked": count}

    def sweep(self) -> Json:
        """Delete the sessions that ended more than ``KEEP_ENDED`` ago and the rate-limit counters whose window is
        over (admins; for a timer beside ``run-due``): ``{"sessions", "counters"}``, how many went."""
        eng = self.engine
        with eng.transaction() as conn:
            access.require_admin(eng._actor(conn), "sweep ended sessions")
            now = clock.now()
            cutoff = now - KEEP_ENDED
            ended = sa.or_(sessions.c.expires_at < cutoff, sessions.c.revoked_at < cutoff,
                           sessions.c.last_seen_at < cutoff - SESSION_IDLE)
            gone = int(conn.execute(sa.delete(sessions).where(ended)).rowcount)
            counters = ratelimit.sweep(conn, older_than=now - max(LOGIN_WINDOW, RATE_WINDOW))
            log.info("swept %d ended sessions and %d rate-limit counters", gone, counters)
            return {"sessions": gone, "counters": counters}

    def _session(self, conn: Connection, session_id: int) -> Json:
        return session_view(conn.execute(_SESSIONS.where(sessions.c.id == session_id)).mappings().one())

    def _self_or_admin(self, conn: Connection, name: str, what: str) -> Any:
        actor = self.engine._actor(conn)
        person = self.engine._user(conn, name)
        if person["id"] != actor["id"]:
            access.require_admin(actor, f"{what} user '{person['name']}'")
        return person

    # -- tokens ---------------------------------------------------------------------------------------------------
    def add_personal_token(self, name: str, *, owner: str | None = None, expires_days: int | None = None,
                           rate_limit: int | None = None) -> Json:
        """A personal access token that acts as ``owner`` (default: the acting user; an admin may make one for
        anyone): its view with ``token``, which is in this result and nowhere else ever again."""
        eng = self.engine
        with eng.transaction() as conn:
            actor = eng._actor(conn)
            person = eng._user(conn, owner) if owner is not None else actor
            if person["id"] != actor["id"]:
                access.require_admin(actor, f"make tokens for user '{person['name']}'")
            if person["role"] == access.INTAKE:
                raise RuleViolation(f"'{person['name']}' is a source of the HTTP intake; it gets integration tokens "
                                    f"('leadflow token add --source {person['name']}')")
            if not person["active"]:
                raise RuleViolation(f"user '{person['name']}' is deactivated; reactivate them first")
            label = clean_text(name, "token name", 200)
            if not label:
                raise InvalidInputError("a personal token needs a name, such as 'laptop' or 'nightly export'")
            now = clock.now()
            expires = _expiry(PERSONAL_DAYS_DEFAULT if expires_days is None else expires_days, now,
                              maximum=PERSONAL_DAYS_MAX, what="a personal token")
            token = tokens.new_token(tokens.PERSONAL)
            token_id = self._insert_token(conn, token, kind=tokens.PERSONAL, source=person["name"], name=label,
                                          process=None, read=True, expires=expires, rate_limit=_rate(rate_limit),
                                          now=now)
            log.info("personal token %d (%s) of user %s made by %s", token_id, label, person["name"], actor["name"])
            return {**token_view(token_row(conn, token_id)), "token": token}

    def add_integration_token(self, conn: Connection, source: str, *, process: str | None, read: bool,
                              expires_days: int | None, rate_limit: int | None) -> Json:
        """An integration token of an intake source (the caller checked the admin and made the source)."""
        now = clock.now()
        expires = None if expires_days is None else _expiry(expires_days, now, maximum=INTEGRATION_DAYS_MAX,
                                                            what="an integration token")
        token = tokens.new_token(tokens.INTEGRATION)
        token_id = self._insert_token(conn, token, kind=tokens.INTEGRATION, source=source, name=None,
                                      process=process, read=read, expires=expires, rate_limit=_rate(rate_limit),
                                      now=now)
        log.info("integration token %d of source %s made by %s", token_id, source, self.engine.user_name)
        return {**token_view(token_row(conn, token_id)), "token": token}

    def _insert_token(self, conn: Connection, token: str, *, kind: str, source: str, name: str | None,
                      process: str | None, read: bool, expires: dt.datetime | None, rate_limit: int | None,
                      now: dt.datetime) -> int:
        return int(conn.execute(sa.insert(api_tokens).values(
            kind=kind, source=source, name=name, token_hash=tokens.token_hash(token), hint=tokens.hint(token),
            process=process, can_read=read, created_at=now, created_by=self.engine.user_name, expires_at=expires,
            rate_limit=rate_limit).returning(api_tokens.c.id)).scalar_one())

    def list_tokens(self, *, owner: str | None = None, mine: bool = False) -> list[Json]:
        """Every token, revoked ones too, without the tokens themselves (admins); with ``owner`` (or ``mine``: the
        acting user) only that user's personal tokens, which the user may list themselves."""
        eng = self.engine
        with eng.transaction() as conn:
            actor = eng._actor(conn)
            query = sa.select(api_tokens).order_by(api_tokens.c.id)
            if owner is None and not mine:
                access.require_admin(actor, "manage API tokens")
            else:
                person = self._self_or_admin(conn, owner, "see the tokens of") if owner is not None else actor
                query = query.where(api_tokens.c.kind == tokens.PERSONAL, api_tokens.c.source == person["name"])
            return [token_view(r) for r in conn.execute(query).mappings()]

    def revoke_token(self, token_id: int) -> Json:
        """Stop accepting a token at once (an admin any token, a user their own personal ones); it stays listed,
        with who revoked it when."""
        eng = self.engine
        with eng.transaction() as conn:
            actor = eng._actor(conn)
            row = token_row(conn, token_id)
            if not (row["kind"] == tokens.PERSONAL and row["source"] == actor["name"]):
                access.require_admin(actor, "manage API tokens")
            if row["revoked_at"] is not None:
                raise RuleViolation(f"token {token_id} ({row['name'] or row['source']}) was already revoked on "
                                    f"{_when(row['revoked_at'])} by {row['revoked_by']}")
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id)
                         .values(revoked_at=clock.now(), revoked_by=actor["name"]))
            log.info("token %d revoked by %s", token_id, actor["name"])
            return token_view(token_row(conn, token_id))

    def authenticate(self, token: str | None, *, read: bool = False) -> Json:
        """Who a token acts for: ``{id, source, process, read}`` (``source``: the user it acts as, the intake
        source or the personal token's owner; a personal token reads what its owner may); reads only.

        Raises ``AuthenticationError`` for a missing, unknown, revoked or expired token and for one whose user is
        deactivated, and ``PermissionDenied`` when ``read`` is asked of a token made without it."""
        with self.engine.transaction() as conn:
            row = _live_token(conn, token, read=read, now=clock.now())
            return _who(row)

    def request(self, token: str | None, *, read: bool = False) -> Json:
        """``authenticate``, and count the request against the token's rate limit (``RateLimited`` with the
        seconds to wait when its minute is full); what a server calls for every request made with a token."""
        with self.engine.transaction() as conn:
            now = clock.now()
            row = _live_token(conn, token, read=read, now=now)
            limit = row["rate_limit"] or RATE_DEFAULTS[row["kind"]]
            wait = ratelimit.hit(conn, f"token:{row['id']}", limit=limit, window=RATE_WINDOW, now=now)
            if wait is not None:
                log.warning("token %d (user %s) refused: over its %d requests a minute", row["id"], row["source"],
                            limit)
                raise RateLimited(f"token {row['id']} made more than its {limit} requests a minute; try again in "
                                  f"{wait} seconds", retry_after=wait)
            if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY:
                conn.execute(sa.update(api_tokens).where(api_tokens.c.id == row["id"]).values(last_used_at=now))
            return _who(row)


def _user_key(name: str) -> str:
    return f"login:user:{name.casefold()}"


_SESSIONS = sa.select(sessions, users.c.name).join(users, users.c.id == sessions.c.user_id)


def _live_session(conn: Connection, token: str | None, now: dt.datetime) -> Any:
    if not token or not isinstance(token, str):
        raise AuthenticationError("not logged in: no session")
    row = conn.execute(sa.select(sessions, users.c.name, users.c.active).join(users, users.c.id == sessions.c.user_id)
                       .where(sessions.c.token_hash == tokens.token_hash(token))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        raise AuthenticationError("the session is not valid (unknown, logged out or revoked); log in again")
    if now >= row["expires_at"]:
        raise AuthenticationError(f"the session ended {_when(row['expires_at'])}, {_hours(SESSION_LIFETIME)} after "
                                  "its login; log in again")
    if now - row["last_seen_at"] >= SESSION_IDLE:
        raise AuthenticationError(f"the session ended after {_hours(SESSION_IDLE)} without a request; log in again")
    if not row["active"]:
        raise AuthenticationError(f"user '{row['name']}' is deactivated")
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        conn.execute(sa.update(sessions).where(sessions.c.id == row["id"]).values(last_seen_at=now))
        return {**row, "last_seen_at": now}
    return row


def _hours(span: dt.timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours" if hours != 1 else "1 hour"


def _live_token(conn: Connection, token: str | None, *, read: bool, now: dt.datetime) -> Any:
    if not token:
        raise AuthenticationError("no API token: send the header 'Authorization: Bearer <token>'")
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == tokens.token_hash(token))
                       ).mappings().first()
    if row is None or row["revoked_at"] is not None:
        raise AuthenticationError("the API token is not valid (unknown or revoked)")
    if row["expires_at"] is not None and now >= row["expires_at"]:
        raise AuthenticationError(f"API token {row['id']} expired on {_when(row['expires_at'])}; make a new one")
    user = conn.execute(sa.select(users).where(users.c.name == row["source"])).mappings().one()
    if not user["active"]:
        raise AuthenticationError(f"API token {row['id']} acts for user '{user['name']}', who is deactivated")
    if read and not row["can_read"]:
        raise PermissionDenied(f"the token of source '{row['source']}' may send leads but not read them; "
                               "reading needs a token made with --read")
    return row


def _who(row: Any) -> Json:
    """``source`` is the user the token acts as: the intake source, or the personal token's owner."""
    return {"id": row["id"], "source": row["source"], "process": row["process"], "read": row["can_read"]}
