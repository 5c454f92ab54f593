"""API tokens and session tokens: made once, shown once, stored as a hash.

A token is 32 random bytes (``secrets``, 256 bits), so a plain SHA-256 is the right way to store it: with that
much entropy nobody can find a token from its hash by guessing, which is what a slow password hash (Argon2)
defends against, and checking a request costs one indexed lookup instead of 50 ms of hashing. The prefix tells
the kind at a glance (and lets secret scanners find a leaked one): ``lf_`` integration, ``lfp_`` personal,
``lfs_`` a browser session.
"""

from __future__ import annotations

import hashlib
import secrets

#: The kinds of API token (``api_tokens.kind``): a web form's source, or a person's program or CLI.
INTEGRATION = "integration"
PERSONAL = "personal"

PREFIXES = {INTEGRATION: "lf_", PERSONAL: "lfp_"}
SESSION_PREFIX = "lfs_"
PREFIX = PREFIXES[INTEGRATION]


def new_token(kind: str = INTEGRATION) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hint(token: str) -> str:
    """The prefix and four characters, to tell tokens apart in a list without showing them."""
    return token[: token.index("_") + 5]
