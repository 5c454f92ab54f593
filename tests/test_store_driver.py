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


def test_a_column_of_datetimes_is_stored_as_value_by_value_whatever_was_converted_before(monkeypatch) -> None:
    """The columns of many rows go through texts kept across statements (``driver._TEXTS``): the same values as
    SQLAlchemy's processor gives each one, aware date-times by their own offset (an instant in two offsets compares
    equal but is stored as two texts), a date as a date, and after the kept texts are replaced."""
    dialect = sqlite.dialect()
    fast = driver._bind_processor(sa.DateTime(), dialect)
    own = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert own is not None
    monkeypatch.setattr(driver, "_TEXTS_KEPT", 50)
    rng = random.Random(21)
    naive = [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randrange(10**6)) for _ in range(40)]
    noon = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    two = noon.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert noon == two and own(noon) != own(two)
    columns: list[list[dt.date | None]] = [[*naive, None, *naive[:5]], [*naive[:10], noon, two, None],
                                           [two, *naive[:3]], [dt.date(2025, 1, 1), naive[0]]]
    for _ in range(5):
        columns.append([rng.choice(naive) if rng.random() < 0.5 else dt.datetime(2030, 1, 1) +
                        dt.timedelta(seconds=rng.randrange(10**8)) for _ in range(30)] + [None])
    for column in columns:
        assert driver._convert_column(column, fast) == [own(v) if v is not None else None for v in column]
    assert len(driver._TEXTS[0]) <= 50 + 31  # replaced once over the limit, never grown without end
