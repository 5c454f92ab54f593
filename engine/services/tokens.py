"""API tokens (``engine.tokens``): integration tokens of the HTTP intake and personal access tokens; making,
listing, revoking them, and checking a request's token (docs/server.md, "Logging in, sessions and tokens").

A token is shown once and stored as its SHA-256 (engine/tokens.py says why that hash); it is never logged:
a log line names a token by its id.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import weakref
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, ratelimit, results, store, tokens, views
from engine.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    RateLimited,
    RuleViolation,
)
from engine.i18n import N_, Message
from engine.rules import one_line_text
from engine.services import users as user_records
from engine.services.context import Service, operation
from engine.store import api_tokens, users
from engine.vocab import NAME_LENGTH, Role, is_id

if TYPE_CHECKING:
    from engine.store.sqltypes import Mapping

log = logging.getLogger(__name__)

#: Personal access tokens always expire: 90 days unless asked, at most a year. Integration tokens may not expire.
PERSONAL_DAYS_DEFAULT = 90
PERSONAL_DAYS_MAX = 365
INTEGRATION_DAYS_MAX = 3650
#: Requests per minute a token may make (each token's own ``rate_limit`` overrides its kind's default).
RATE_WINDOW = dt.timedelta(minutes=1)
RATE_DEFAULTS = {tokens.PERSONAL: 600, tokens.INTEGRATION: 6000}
RATE_MAX = 1_000_000
#: ``last_used_at`` is written at most this often, not on every request.
TOUCH_EVERY = dt.timedelta(minutes=1)


def _expiry(days: int | None, now: dt.datetime, *, maximum: int, what: str) -> dt.datetime:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= maximum:
        raise InvalidInputError(N_("the expiry of {what} must be a whole number of days from 1 to {maximum}, "
                                   "got {days!r}"), what=what, maximum=maximum, days=days)
    return now + dt.timedelta(days=days)


def _rate(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= RATE_MAX:
        raise InvalidInputError(N_("a token's rate limit must be a whole number of requests per minute from 1 to "
                                   "{rate_max}, got {limit!r}"), rate_max=RATE_MAX, limit=limit)
    return limit


def minute(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="minutes")


def token_view(row: Mapping) -> results.Token:
    """A token as ``token list --json`` shows it (docs/cli.md): never the token, only its first characters."""
    return {"id": row["id"], "kind": row["kind"], "name": row["name"], "source": row["source"],
            "hint": row["hint"] + "...", "process": row["process"], "read": row["can_read"],
            "created_at": views.iso(row["created_at"]), "created_by": row["created_by"],
            "expires_at": views.iso(row["expires_at"]), "last_used_at": views.iso(row["last_used_at"]),
            "rate_limit": row["rate_limit"] or RATE_DEFAULTS[row["kind"]],
            "revoked_at": views.iso(row["revoked_at"]), "revoked_by": row["revoked_by"]}


def token_row(conn: Connection, token_id: int) -> Mapping:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first() if (
        is_id(token_id)) else None
    if row is None:
        raise NotFoundError(N_("API token {token} does not exist"), token=token_id)
    return row


def end_tokens(conn: Connection, user_name: str, by: str, now: dt.datetime) -> int:
    """Revoke every live token acting as a user (personal or, for a source, integration); returns how many."""
    return int(conn.execute(sa.update(api_tokens).where(api_tokens.c.source == user_name,
                                                        api_tokens.c.revoked_at.is_(None))
                            .values(revoked_at=now, revoked_by=by)).rowcount)


class TokenService(Service):
    """``engine.tokens``: who may call the API with a token, as whom, how often."""

    name = "tokens"

    @operation
    def add(self, source: str, *, process: str | None = None, read: bool = False, expires_days: int | None = None,
            rate_limit: int | None = None, team: str | None = None) -> results.NewToken:
        """A new integration token for ``source`` (admins). The token is in the result, and nowhere else ever again.

        The source becomes a technical user (role ``intake``): the actor of the leads it sends. ``process`` is
        the default for requests that name none; ``read`` lets the token read leads and boards too;
        ``expires_days`` (default: never) and ``rate_limit`` (requests a minute) are in docs/server.md; ``team``
        (given when the source is new) is the team whose manager gets its leads that no assignment rule places."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("manage API tokens")))
            name = one_line_text(source, "source", NAME_LENGTH)
            if not name or not re.fullmatch(r"[\w][\w.@-]*", name):
                raise InvalidInputError(N_("source {source!r} must be a name of letters, digits and . _ - @, "
                                           "such as website or partner-form"), source=source)
            default = ctx.spec(conn, process).id if process is not None else None
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
            team_ = one_line_text(team, "team", NAME_LENGTH)
            if row is None:
                user_records.add_source(conn, name, team_)
            elif team_ is not None and row["team"] != team_:
                held = Message(N_("team {team}"), team=row["team"]) if row["team"] else Message(N_("no team"))
                raise RuleViolation(N_("source '{name}' sends its leads to {held}, not {team}; a source's team is "
                                       "given once, with its first token"), name=name, held=held, team=team_)
            elif row["role"] != Role.INTAKE:
                raise RuleViolation(N_("'{name}' is already the name of a user ({role}); a source needs a name "
                                       "of its own"), name=name, role=row['role'])
            elif not row["active"]:
                raise RuleViolation(N_("source '{name}' is deactivated; reactivate it first"), name=name)
            now = clock.now()
            expires = None if expires_days is None else _expiry(expires_days, now, maximum=INTEGRATION_DAYS_MAX,
                                                                what="an integration token")
            token = tokens.new_token(tokens.INTEGRATION)
            token_id = self._insert(conn, token, kind=tokens.INTEGRATION, source=name, name=None, process=default,
                                    read=read, expires=expires, rate_limit=_rate(rate_limit), now=now)
            log.info("integration token %d of source %s made by %s", token_id, name, ctx.user_name)
            return {**token_view(token_row(conn, token_id)), "token": token}

    @operation
    def add_personal(self, name: str, *, owner: str | None = None, expires_days: int | None = None,
                     rate_limit: int | None = None) -> results.NewToken:
        """A personal access token that acts as ``owner`` (default: the acting user; an admin may make one for
        anyone): its view with ``token``, which is in this result and nowhere else ever again."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            person = ctx.user(conn, owner) if owner is not None else actor
            if person.id != actor.id:
                policy.require_admin(actor, Message(N_("make tokens for user '{name}'"), name=person.name))
            if person.role == Role.INTAKE:
                raise RuleViolation(N_("'{name}' is a source of the HTTP intake; it gets integration tokens "
                                       "('leadflow token add --source {name}')"), name=person.name)
            if not person.active:
                raise RuleViolation(N_("user '{name}' is deactivated; reactivate them first"), name=person.name)
            label = one_line_text(name, "token name", NAME_LENGTH)
            if not label:
                raise InvalidInputError("a personal token needs a name, such as 'laptop' or 'nightly export'")
            now = clock.now()
            expires = _expiry(PERSONAL_DAYS_DEFAULT if expires_days is None else expires_days, now,
                              maximum=PERSONAL_DAYS_MAX, what="a personal token")
            token = tokens.new_token(tokens.PERSONAL)
            token_id = self._insert(conn, token, kind=tokens.PERSONAL, source=person.name, name=label,
                                    process=None, read=True, expires=expires, rate_limit=_rate(rate_limit), now=now)
            log.info("personal token %d (%s) of user %s made by %s", token_id, label, person.name, actor.name)
            return {**token_view(token_row(conn, token_id)), "token": token}

    def _insert(self, conn: Connection, token: str, *, kind: str, source: str, name: str | None,
                process: str | None, read: bool, expires: dt.datetime | None, rate_limit: int | None,
                now: dt.datetime) -> int:
        return int(conn.execute(sa.insert(api_tokens).values(
            kind=kind, source=source, name=name, token_hash=tokens.token_hash(token), hint=tokens.hint(token),
            process=process, can_read=read, created_at=now, created_by=self.ctx.user_name, expires_at=expires,
            rate_limit=rate_limit).returning(api_tokens.c.id)).scalar_one())

    @operation
    def list(self, *, owner: str | None = None, mine: bool = False) -> list[results.Token]:
        """Every token, revoked ones too, without the tokens themselves (admins); with ``owner`` (or ``mine``: the
        acting user) only that user's personal tokens, which the user may list themselves."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            query = sa.select(api_tokens).order_by(api_tokens.c.id)
            if owner is None and not mine:
                policy.require_admin(actor, Message(N_("manage API tokens")))
            else:
                person = actor if owner is None else self.engine.auth.self_or_admin(conn, owner, "see the tokens of")
                query = query.where(api_tokens.c.kind == tokens.PERSONAL, api_tokens.c.source == person.name)
            return [token_view(r) for r in conn.execute(query).mappings()]

    @operation
    def revoke(self, token_id: int) -> results.Token:
        """Stop accepting a token at once (an admin any token, a user their own personal ones); it stays listed,
        with who revoked it when."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            row = token_row(conn, token_id)
            if not (row["kind"] == tokens.PERSONAL and row["source"] == actor.name):
                policy.require_admin(actor, Message(N_("manage API tokens")))
            if row["revoked_at"] is not None:
                raise RuleViolation(N_("token {token} ({name}) was already revoked on "
                                       "{revoked_at} by {revoked_by}"), token=token_id,
                                    name=row['name'] or row['source'], revoked_at=minute(row['revoked_at']),
                                    revoked_by=row['revoked_by'])
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id)
                         .values(revoked_at=clock.now(), revoked_by=actor.name))
            log.info("token %d revoked by %s", token_id, actor.name)
            return token_view(token_row(conn, token_id))

    @operation
    def authenticate(self, token: str | None, *, read: bool = False) -> results.TokenSource:
        """Who a token acts for: ``{id, source, process, read}`` (``source``: the user it acts as, the intake
        source or the personal token's owner; a personal token reads what its owner may); reads only.

        Raises ``AuthenticationError`` for a missing, unknown, revoked or expired token and for one whose user is
        deactivated, and ``PermissionDenied`` when ``read`` is asked of a token made without it."""
        with self.ctx.transaction() as conn:
            row = _live_token(conn, token, read=read, now=clock.now())
            return _who(row)

    @operation
    def request(self, token: str | None, *, read: bool = False) -> results.TokenSource:
        """``authenticate``, and count the request against the token's rate limit (``RateLimited`` with the
        seconds to wait when its minute is full); what a server calls for every request made with a token.

        The token is read on every request (a revoked or expired one, a deactivated user's, is refused at once),
        in a transaction that writes nothing; the count is written a block of requests at a time
        (``ratelimit.Leases``: a token with a limit under 200 a minute is still counted request by request), and
        ``last_used_at`` at most once a minute."""
        ctx = self.ctx
        now = clock.now()
        with ctx.reading() as conn:
            row = _live_token(conn, token, read=read, now=now)
        limit = row["rate_limit"] or RATE_DEFAULTS[row["kind"]]
        key = f"token:{row['id']}"
        leases = _leases(ctx.db)
        touch = row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY
        if not touch and leases.take(key, limit=limit, window=RATE_WINDOW, now=now):
            return _who(row)
        with ctx.transaction() as conn:
            wait = leases.hit(conn, key, limit=limit, window=RATE_WINDOW, now=now)
            if wait is not None:
                log.warning("token %d (user %s) refused: over its %d requests a minute", row["id"], row["source"],
                            limit)
                raise RateLimited(N_("token {token} made more than its {limit} requests a minute; try again in "
                                     "{wait} seconds"), token=row['id'], limit=limit, wait=wait, retry_after=wait)
            if touch:
                conn.execute(sa.update(api_tokens).where(api_tokens.c.id == row["id"]).values(last_used_at=now))
            return _who(row)


#: Per database (each ``Engine.open``), the blocks of token requests this process has counted ahead.
_LEASES: weakref.WeakKeyDictionary[sa.Engine, ratelimit.Leases] = weakref.WeakKeyDictionary()


def _leases(db: sa.Engine) -> ratelimit.Leases:
    leases = _LEASES.get(db)
    if leases is None:
        leases = _LEASES.setdefault(db, ratelimit.Leases())
    return leases


#: A token by its hash, with whether the user it acts as is active (one query: it runs on every request).
_LIVE_TOKEN = sa.select(api_tokens, users.c.active.label("user_active")).join(
    users, users.c.name == api_tokens.c.source).where(api_tokens.c.token_hash == sa.bindparam("hash"))


def _live_token(conn: Connection, token: str | None, *, read: bool, now: dt.datetime) -> Mapping:
    if not token:
        raise AuthenticationError("no API token: send the header 'Authorization: Bearer <token>'")
    found = store.driver_rows(conn, _LIVE_TOKEN, {"hash": tokens.token_hash(token)})
    row = found[0] if found else None
    if row is None or row["revoked_at"] is not None:
        raise AuthenticationError("the API token is not valid (unknown or revoked)")
    if row["expires_at"] is not None and now >= row["expires_at"]:
        raise AuthenticationError(N_("API token {token} expired on {expires_at}; make a new one"), token=row['id'],
                                  expires_at=minute(row['expires_at']))
    if not row["user_active"]:
        raise AuthenticationError(N_("API token {token} acts for user '{name}', who is deactivated"), token=row['id'],
                                  name=row['source'])
    if read:
        policy.require_token_reads(row["source"], row["can_read"])
    return row


def _who(row: Mapping) -> results.TokenSource:
    """``source`` is the user the token acts as: the intake source, or the personal token's owner."""
    return {"id": row["id"], "source": row["source"], "process": row["process"], "read": row["can_read"]}
