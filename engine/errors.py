"""The one exception hierarchy of leadflow.

Every error a user can cause is a ``LeadflowError``; the CLI and the HTTP intake
turn it into a message and an exit code or status, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine import i18n
from engine.i18n import N_
from engine.results import Refused


class LeadflowError(Exception):
    """Root of every error a user can cause.

    It keeps its English template and the parameters that fill it (``RuleViolation(N_("lead {lead} is
    closed"), lead=42)``), so ``str(err)`` is English and an interface shows it in the reader's language with
    ``engine.i18n.error_text(err)``. A message already formatted (an f-string) is its own template without
    parameters: shown as it is until it is written as a template."""

    def __init__(self, template: str = "", /, **params: Any):
        self.template = template
        self.params = params
        super().__init__(template.format(**{k: i18n.localized(v, i18n.SOURCE) for k, v in params.items()})
                         if params else template)


class NotFoundError(LeadflowError):
    """An id, name or stage that does not exist."""


class InvalidInputError(LeadflowError):
    """A value of the wrong type or shape."""


class RuleViolation(LeadflowError):
    """A move the process does not allow (open mandatory tasks, closed lead, unknown reason...)."""


class PermissionDenied(LeadflowError):
    """The acting user may not do this."""


class AuthenticationError(LeadflowError):
    """A failed login, or a missing, unknown, expired or revoked session or token (the server answers 401)."""


class PasswordChangeRequired(AuthenticationError):
    """The right password, but a one-time one (or one an admin set): it must be changed before logging in."""


class RateLimited(LeadflowError):
    """Too many attempts (failed logins, a token's requests); ``retry_after`` is the seconds to wait (429)."""

    def __init__(self, message: str, /, *, retry_after: int, **params: Any):
        self.retry_after = retry_after
        super().__init__(message, **params)


class DatabaseBusy(LeadflowError):
    """Another writer (an import, a bulk job) held the database's write lock for longer than this one waits;
    nothing was written. ``retry_after`` is the seconds a program waits before trying again (HTTP 503)."""

    def __init__(self, message: str, /, retry_after: int = 5, **params: Any):
        self.retry_after = retry_after
        super().__init__(message, **params)


class ConcurrentUpdateError(LeadflowError):
    """Someone else changed the record between our read and our write, or since the version the client last saw
    (``if_version``); then ``lead_id`` and ``current_version`` say which lead and where it is now."""

    def __init__(self, message: str, *, lead_id: int | None = None, current_version: int | None = None,
                 **params: Any):
        self.lead_id = lead_id
        self.current_version = current_version
        super().__init__(message, **params)


class BatchRefused(RuleViolation):
    """A bulk operation (``Engine.advance_many`` ...) refused some of its leads and so wrote nothing.

    ``refused`` lists each refused lead: ``{"lead_id", "error" (the one-lead call's error class), "reason"}``.
    """

    def __init__(self, verb: str, leads: int, refused: list[Refused]):
        self.refused = refused
        shown = "; ".join(r["reason"] for r in refused[:5])
        more = i18n.Message(N_("; and {count} more"), count=len(refused) - 5) if len(refused) > 5 else ""
        super().__init__(N_("can't {verb} {count} of {leads} leads, so none was written: {shown}{more}"),
                         verb=verb, count=len(refused), leads=leads, shown=shown, more=more)


@dataclass(frozen=True)
class Problem:
    """One located problem in a process file."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str  # e.g. stages[2].tasks[0].owner ("" for the whole document)
    #: English; an ``i18n.Message`` (a ``str``) when it is written as a template, which other languages translate
    message: str

    def __str__(self) -> str:
        return self.in_language(i18n.SOURCE)

    def in_language(self, code: str) -> str:
        """``file:line:col: path: message``, the message in ``code`` (the located place is the same in all)."""
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{self.column}:{where} {i18n.localized(self.message, code)}"


class ProcessFileError(LeadflowError):
    """A process file that cannot be loaded; ``problems`` lists every problem found, best first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def in_language(self, code: str) -> str:
        """Every problem, one a line, in ``code`` (``i18n.error_text`` shows it so)."""
        return "\n".join(p.in_language(code) for p in self.problems)


def suggest(word: str, choices: Iterable[str]) -> str:
    """A "did you mean" clause, or an empty string."""
    return str(did_you_mean(word, choices))


def did_you_mean(word: str, choices: Iterable[str]) -> i18n.Message | str:
    """A "did you mean" clause in the reader's language (a parameter of an error's template), or an empty
    string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return i18n.Message(N_("; did you mean '{word}'?"), word=close[0]) if close else ""


def either(words: Iterable[str]) -> str:
    """``a or b or c`` (a part of a message), the "or" in the reader's language."""
    first, *rest = words
    for word in rest:
        first = i18n.Message(N_("{first} or {second}"), first=first, second=word)
    return first


def joined(parts: Iterable[str]) -> str:
    """Parts of a message (each an ``i18n.Message`` or a text) one after the other, each in the reader's
    language."""
    out = ""
    for part in parts:
        out = i18n.Message("{first}{second}", first=out, second=part)
    return out


def unknown_user(name: str, known: Sequence[str]) -> NotFoundError:
    """The error for a user name that is not one of ``known`` (every user's)."""
    return NotFoundError(N_("user '{name}' does not exist{suggestion}"), name=name,
                         suggestion=did_you_mean(name, known))
