"""API tokens of the HTTP intake (``engine.tokens``): make, list, revoke, and authenticate a request."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import access, clock, results, store, views
from engine.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDenied, RuleViolation
from engine.rules import clean_text
from engine.services import users as user_records
from engine.services.context import Service, operation
from engine.store import api_tokens, users


class TokenService(Service):
    """``engine.tokens``: who may send (and read) leads over HTTP."""

    name = "tokens"

    @operation
    def add(self, source: str, *, process: str | None = None, read: bool = False) -> results.NewToken:
        """A new API token for ``source`` (admins). The token is in the result, and nowhere else ever again.

        The source becomes a technical user (role ``intake``): the actor of the leads it sends. ``process`` is
        the default for requests that name none; ``read`` lets the token read leads and boards too."""
        from engine import tokens

        ctx = self.ctx
        with ctx.transaction() as conn:
            access.require_admin(ctx.actor(conn), "manage API tokens")
            name = clean_text(source, "source", 200)
            if not name or not re.fullmatch(r"[\w][\w.@-]*", name):
                raise InvalidInputError(f"source {source!r} must be a name of letters, digits and . _ - @, "
                                        "such as website or partner-form")
            default = ctx.spec(conn, process).id if process is not None else None
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
            if row is None:
                user_records.add_source(conn, name)
            elif row["role"] != access.INTAKE:
                raise RuleViolation(f"'{name}' is already the name of a user ({row['role']}); a source needs a name "
                                    "of its own")
            token = tokens.new_token()
            token_id = store.new_id(conn.execute(sa.insert(api_tokens).values(
                source=name, token_hash=tokens.token_hash(token), hint=tokens.hint(token), process=default,
                can_read=read, created_at=clock.now(), created_by=ctx.user_name)))
            return {**_token_view(conn, token_id), "token": token}

    @operation
    def list(self) -> list[results.Token]:
        """Every API token, revoked ones too, without the tokens themselves (admins)."""
        with self.ctx.transaction() as conn:
            access.require_admin(self.ctx.actor(conn), "manage API tokens")
            ids = conn.execute(sa.select(api_tokens.c.id).order_by(api_tokens.c.id)).scalars().all()
            return [_token_view(conn, i) for i in ids]

    @operation
    def revoke(self, token_id: int) -> results.Token:
        """Stop accepting a token (admins); it stays listed, with who revoked it when."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            access.require_admin(ctx.actor(conn), "manage API tokens")
            view = _token_view(conn, token_id)
            if view["revoked_at"] is not None:
                raise RuleViolation(f"token {token_id} ({view['source']}) was already revoked on "
                                    f"{view['revoked_at'][:16].replace('T', ' ')} by {view['revoked_by']}")
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id)
                         .values(revoked_at=clock.now(), revoked_by=ctx.user_name))
            return _token_view(conn, token_id)

    @operation
    def authenticate(self, token: str | None, *, read: bool = False) -> results.TokenSource:
        """The source a token belongs to: ``{id, source, process, read}``; reads only, writes nothing.

        Raises ``AuthenticationError`` for a missing, unknown or revoked token, and ``PermissionDenied`` when
        ``read`` is asked of a token made without it."""
        from engine import tokens

        if not token:
            raise AuthenticationError("no API token: send the header 'Authorization: Bearer <token>'")
        with self.ctx.transaction() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == tokens.token_hash(token),
                                                           api_tokens.c.revoked_at.is_(None))).mappings().first()
        if row is None:
            raise AuthenticationError("the API token is not valid (unknown or revoked)")
        if read and not row["can_read"]:
            raise PermissionDenied(f"the token of source '{row['source']}' may send leads but not read them; "
                                   "reading needs a token made with --read")
        return {"id": row["id"], "source": row["source"], "process": row["process"], "read": row["can_read"]}


def _token_view(conn: Connection, token_id: int) -> results.Token:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first() if (
        isinstance(token_id, int) and 0 < token_id < 2**63) else None
    if row is None:
        raise NotFoundError(f"API token {token_id} does not exist")
    return {"id": row["id"], "source": row["source"], "hint": row["hint"] + "...", "process": row["process"],
            "read": row["can_read"], "created_at": views.iso(row["created_at"]), "created_by": row["created_by"],
            "revoked_at": views.iso(row["revoked_at"]), "revoked_by": row["revoked_by"]}
