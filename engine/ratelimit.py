"""Rate limits as fixed-window counters in the database (``rate_limits``), shared by every server process.

A counter is a key (``login:user:anna``, ``login:addr:127.0.0.1``, ``token:17``), the start of its window and a
count. ``hit`` counts one more attempt in one atomic statement (an upsert that only counts while the window has
room), so two processes on one PostgreSQL database can never let more than the limit through between them; a
refused attempt changes nothing. ``retry_after`` tells a refused caller how many seconds to wait.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store import rate_limits


def _insert(conn: Connection) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(rate_limits)


def hit(conn: Connection, key: str, *, limit: int, window: dt.timedelta, now: dt.datetime) -> int | None:
    """Count one attempt against ``key``: None when it fits in the window, else the seconds to wait (and
    nothing is written)."""
    cutoff = now - window
    expired = rate_limits.c.window_start <= cutoff
    statement = _insert(conn).values(key=key, window_start=now, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=[rate_limits.c.key],
        set_={"window_start": sa.case((expired, now), else_=rate_limits.c.window_start),
              "count": sa.case((expired, 1), else_=rate_limits.c.count + 1)},
        where=sa.or_(expired, rate_limits.c.count < limit),
    ).returning(rate_limits.c.count)
    if limit > 0 and conn.execute(statement).first() is not None:
        return None
    return retry_after(conn, key, limit=limit, window=window, now=now) or 1


def retry_after(conn: Connection, key: str, *, limit: int, window: dt.timedelta, now: dt.datetime) -> int | None:
    """The seconds to wait before ``key`` may count another attempt, or None when it may now. Reads only."""
    row = conn.execute(sa.select(rate_limits.c.window_start, rate_limits.c.count)
                       .where(rate_limits.c.key == key)).first()
    start, count = (row[0], int(row[1])) if row is not None else (now, 0)
    if limit > 0 and (row is None or start <= now - window or count < limit):
        return None
    end = start + window
    return max(1, math.ceil((end - now).total_seconds()))


def give_back(conn: Connection, key: str) -> None:
    """Uncount one attempt (a login counted before its password was checked, which then succeeded)."""
    conn.execute(sa.update(rate_limits).where(rate_limits.c.key == key, rate_limits.c.count > 0)
                 .values(count=rate_limits.c.count - 1))


def clear(conn: Connection, key: str) -> None:
    """Forget ``key``'s count (a successful login clears the user's failures)."""
    conn.execute(sa.delete(rate_limits).where(rate_limits.c.key == key))


def sweep(conn: Connection, *, older_than: dt.datetime) -> int:
    """Delete the counters whose window started before ``older_than`` (they count nothing any more)."""
    return int(conn.execute(sa.delete(rate_limits).where(rate_limits.c.window_start < older_than)).rowcount)
