"""Rate limits as fixed-window counters in the database (``rate_limits``), shared by every server process.

A counter is a key (``login:user:anna``, ``login:addr:127.0.0.1``, ``token:17``), the start of its window and a
count. ``hit`` counts one more attempt in one atomic statement (an upsert that only counts while the window has
room), so two processes on one PostgreSQL database can never let more than the limit through between them; a
refused attempt changes nothing. ``retry_after`` tells a refused caller how many seconds to wait.

A counter that a process hits many times a second (a busy token's) need not be written on every hit: ``Leases``
counts a block of attempts in the database at once (``reserve``) and lets them through one by one from memory, so
the limit still holds across every process (each counted all it let through, and more only while there was room)
while a process writes once per block. What a process reserved and did not use is lost when the window ends: the
limit is never exceeded, and may be reached up to a block per process early (docs/server.md, "Rate limits").
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass
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
    if reserve(conn, key, count=1, limit=limit, window=window, now=now) is not None:
        return None
    return retry_after(conn, key, limit=limit, window=window, now=now) or 1


def reserve(conn: Connection, key: str, *, count: int, limit: int, window: dt.timedelta,
            now: dt.datetime) -> dt.datetime | None:
    """Count ``count`` attempts against ``key`` at once if all of them fit in the window: the start of the window
    they were counted in, else None (and nothing is written)."""
    if not 0 < count <= limit:
        return None
    cutoff = now - window
    expired = rate_limits.c.window_start <= cutoff
    statement = _insert(conn).values(key=key, window_start=now, count=count)
    statement = statement.on_conflict_do_update(
        index_elements=[rate_limits.c.key],
        set_={"window_start": sa.case((expired, now), else_=rate_limits.c.window_start),
              "count": sa.case((expired, count), else_=rate_limits.c.count + count)},
        where=sa.or_(expired, rate_limits.c.count + count <= limit),
    ).returning(rate_limits.c.window_start)
    row = conn.execute(statement).first()
    return None if row is None else row[0]


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


@dataclass
class _Lease:
    limit: int
    start: dt.datetime  # of the window the block was counted in
    left: int


class Leases:
    """The blocks of attempts one process has counted in the database ahead of their use (see the module's note),
    by key; thread-safe. A block is ``limit // PARTS`` attempts (at least one, so a small limit is counted attempt
    by attempt, exactly as ``hit`` does)."""

    PARTS = 100

    def __init__(self) -> None:
        self._held: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, limit: int, window: dt.timedelta, now: dt.datetime) -> bool:
        """One attempt from a block held for ``key`` in the current window, without the database; False when
        none is left (then ``hit``)."""
        with self._lock:
            lease = self._held.get(key)
            if lease is None or lease.limit != limit or lease.left <= 0 or not (
                    lease.start <= now < lease.start + window):
                return False
            lease.left -= 1
            return True

    def hit(self, conn: Connection, key: str, *, limit: int, window: dt.timedelta, now: dt.datetime) -> int | None:
        """``take``, else count a new block in the database (one attempt when a block no longer fits): None when
        the attempt may go on, else the seconds to wait (nothing written)."""
        if self.take(key, limit=limit, window=window, now=now):
            return None
        block = max(1, limit // self.PARTS)
        start = reserve(conn, key, count=block, limit=limit, window=window, now=now)
        if start is None and block > 1:
            block, start = 1, reserve(conn, key, count=1, limit=limit, window=window, now=now)
        if start is None:
            return retry_after(conn, key, limit=limit, window=window, now=now) or 1
        if block > 1:
            with self._lock:
                self._held[key] = _Lease(limit, start, block - 1)
        return None
