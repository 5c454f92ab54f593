"""API tokens of the HTTP intake: made once, shown once, stored as a hash.

A token is 32 random bytes (``secrets``), so a plain SHA-256 is enough to store it: nobody can guess one
from its hash, and checking a request costs one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "lf_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hint(token: str) -> str:
    """The first characters, to tell tokens apart in a list without showing them."""
    return token[: len(PREFIX) + 4]
