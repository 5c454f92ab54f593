"""The driver-level executor writes every value exactly as SQLAlchemy would (engine/store/driver.py)."""

from __future__ import annotations

import datetime as dt
import random

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from engine.store import driver


def test_sqlite_datetimes_are_stored_as_sqlalchemys_own_processor_writes_them() -> None:
    dialect = sqlite.dialect()
    fast = driver._bind_processor(sa.DateTime(), dialect)
    own = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert own is not None and fast is not own
    rng = random.Random(20)
    values: list[dt.date] = [
        dt.datetime(1, 1, 1), dt.datetime(999, 12, 31, 23, 59, 59, 999_999), dt.datetime(2026, 3, 2, 9, 0),
        dt.datetime(2026, 3, 2, 9, 0, 0, 5), dt.date(2025, 1, 1), dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC),
        dt.datetime(2025, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    values += [dt.datetime(2000, 1, 1) + dt.timedelta(seconds=rng.randrange(10**9), microseconds=rng.randrange(10**6))
               for _ in range(10_000)]
    assert [fast(v) for v in values] == [own(v) for v in values]
    assert fast(dt.datetime(2026, 3, 2, 9, 0)) == "2026-03-02 09:00:00.000000"
