"""The current time, overridable with ``LEADFLOW_NOW`` so demos, tests and backfills are reproducible.

Whether ``LEADFLOW_NOW`` is honoured at all is one switch per process, ``honour_environment``: on by default (the
local CLI, the tests), off in the team server unless it was started with ``--test-clock`` (or
``LEADFLOW_TEST_MODE=1``), so that nobody who can set a variable can date events in the past or the future.

leadflow stores naive date-times: wall-clock time in the installation's time zone, ``LEADFLOW_TZ`` (an
IANA name such as Europe/Warsaw; default: the system's zone). Business days and "end of the day" are
those of that zone, so a lead registered at 00:30 in Warsaw counts from that Warsaw day. Input with an
offset (``LEADFLOW_NOW=2026-03-02T00:30+01:00``) is converted into the zone; input without one is
taken as already in it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from engine.errors import InvalidInputError
from engine.i18n import N_


def zone() -> dt.tzinfo:
    """The installation's time zone: ``LEADFLOW_TZ``, else the system's."""
    name = os.environ.get("LEADFLOW_TZ", "").strip()
    if not name:
        local = dt.datetime.now().astimezone().tzinfo
        return local if local is not None else dt.UTC
    return _named_zone(name)


@cache
def _named_zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(N_("LEADFLOW_TZ {name!r} is not a time zone name such as Europe/Warsaw"),
                                name=name) from None


def parse_datetime(text: str, *, what: str = "date-time") -> dt.datetime:
    """An ISO-8601 date or date-time as a naive date-time in the installation's zone."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(N_("{what} {text!r} is not an ISO-8601 date-time such as 2026-03-02T09:30"), what=what,
                                text=text) from None
    if value.tzinfo is not None:
        value = value.astimezone(zone()).replace(tzinfo=None)
    return value


_override: list[dt.datetime] = []
_environment = [True]  # whether LEADFLOW_NOW is honoured (one switch for the process)


def honour_environment(enabled: bool) -> None:
    """Honour ``LEADFLOW_NOW`` (True, the default) or ignore it and read the real clock (the team server)."""
    _environment[0] = enabled


def pinned() -> str | None:
    """``LEADFLOW_NOW`` as this process honours it (None: the real clock): what the server announces."""
    fixed = os.environ.get("LEADFLOW_NOW") if _environment[0] else None
    return parse_datetime(fixed, what="LEADFLOW_NOW").isoformat() if fixed else None


@contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Within the block, ``now()`` is ``at`` (used to replay or backfill history, e.g. by the demo)."""
    _override.append(at)
    try:
        yield
    finally:
        _override.pop()


def is_frozen() -> bool:
    """True inside ``frozen``: a program backfilling or replaying history, which may write it out of order."""
    return bool(_override)


def now() -> dt.datetime:
    if _override:
        return _override[-1]
    fixed = os.environ.get("LEADFLOW_NOW") if _environment[0] else None
    if fixed:
        return parse_datetime(fixed, what="LEADFLOW_NOW")
    if not os.environ.get("LEADFLOW_TZ", "").strip():  # the system's zone: its local time, read once
        return dt.datetime.now().replace(microsecond=0)
    return dt.datetime.now(zone()).replace(tzinfo=None, microsecond=0)
