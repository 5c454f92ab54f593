"""The current time, overridable with ``LEADFLOW_NOW`` so demos, tests and backfills are reproducible.

leadflow stores naive date-times meaning UTC. ``LEADFLOW_NOW`` may carry an offset
(it is converted to UTC) or none (it is taken as UTC).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import InvalidInputError


def parse_datetime(text: str, *, what: str = "date-time") -> dt.datetime:
    """An ISO-8601 date or date-time as a naive UTC datetime."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{what} {text!r} is not an ISO-8601 date-time such as 2026-03-02T09:30") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


_override: list[dt.datetime] = []


@contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Within the block, ``now()`` is ``at`` (used to replay or backfill history, e.g. by the demo)."""
    _override.append(at)
    try:
        yield
    finally:
        _override.pop()


def now() -> dt.datetime:
    if _override:
        return _override[-1]
    fixed = os.environ.get("LEADFLOW_NOW")
    if fixed:
        return parse_datetime(fixed, what="LEADFLOW_NOW")
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
