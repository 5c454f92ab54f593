"""Passwords: the policy a new one must meet, and Argon2id hashes through ``argon2-cffi``.

The hash's parameters are argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes),
which cost about 50 ms here; ``configure`` changes them (the tests make them cheap). A hash made with other
parameters still verifies, and ``needs_rehash`` says to store a new one at the next login.
"""

from __future__ import annotations

import contextlib
import secrets
import unicodedata
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidInputError
from engine.i18n import N_

if TYPE_CHECKING:
    from argon2 import PasswordHasher

#: The password policy (docs/server.md). The maximum bounds what one login attempt may make the server hash.
MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher: list[PasswordHasher] = []
_parameters: dict[str, Any] = {}
_dummy: list[str] = []


def configure(**parameters: Any) -> None:
    """Use these ``argon2.PasswordHasher`` parameters (time_cost, memory_cost, parallelism...) from now on."""
    _parameters.clear()
    _parameters.update(parameters)
    _hasher.clear()
    _dummy.clear()


def hasher() -> PasswordHasher:
    if not _hasher:
        from argon2 import PasswordHasher  # imported on first use: the everyday commands never hash

        _hasher.append(PasswordHasher(**_parameters))
    return _hasher[0]


def normalised(password: str) -> str:
    """The form that is hashed: NFKC, so that one password typed on two keyboards is one password."""
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, user_name: str) -> str:
    """The password to hash, or the refusal saying which rule it breaks (never the password)."""
    if not isinstance(password, str):
        raise InvalidInputError("a password must be a text")
    text = normalised(password)
    if len(text) < MIN_LENGTH:
        raise InvalidInputError(N_("the password is too short: {count} characters, at least {min_length} are "
                                   "needed (a few words make a good one)"), count=len(text), min_length=MIN_LENGTH)
    if len(text) > MAX_LENGTH:
        raise InvalidInputError(N_("the password is too long: {count} characters, at most {max_length} are "
                                   "allowed"), count=len(text), max_length=MAX_LENGTH)
    if "\x00" in text or not text.strip():
        raise InvalidInputError("the password must not be blank or contain NUL characters")
    if text.strip().casefold() == user_name.strip().casefold():
        raise InvalidInputError("the password must not be the user's name")
    return text


def hash_password(password: str) -> str:
    """The Argon2id hash of a password that passed ``check_policy``."""
    return hasher().hash(normalised(password))


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash. Without a hash (an unknown user, a user without a
    password) a dummy hash is checked instead, so that the answer costs the same time either way."""
    from argon2.exceptions import InvalidHashError, VerificationError

    candidate = normalised(password) if isinstance(password, str) else ""
    if len(candidate) > MAX_LENGTH:  # never hash more than a password may be; costs no less than a real check
        candidate = candidate[:MAX_LENGTH]
        stored = None
    if stored is None:
        if not _dummy:
            _dummy.append(hasher().hash(secrets.token_urlsafe(16)))
        stored, candidate = _dummy[0], candidate + "\x00"  # the dummy never matches
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher().verify(stored, candidate)
        return False
    try:
        return hasher().verify(stored, candidate)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with other parameters than today's."""
    return hasher().check_needs_rehash(stored)


def one_time() -> str:
    """A printed one-time password: 16 characters of ``secrets``, to be changed at the first login."""
    return secrets.token_urlsafe(12)
