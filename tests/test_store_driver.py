"""The driver-level executor writes every value exactly as SQLAlchemy would (engine/store/driver.py)."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


_METADATA = sa.MetaData()
_ROWS = sa.Table("rows", _METADATA, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                 sa.Column("name", sa.String, nullable=False, unique=True), sa.Column("n", sa.Integer),
                 sa.Column("at", sa.DateTime), sa.Column("note", sa.Text))
_NAMES = ("name", "n", "at", "note")
_INSERT = sa.insert(_ROWS).values({name: sa.bindparam(name) for name in _NAMES})


def _rows_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    _METADATA.create_all(engine)
    return engine


def _stored(conn: sa.Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sa.select(_ROWS).order_by(_ROWS.c.id))]


_text = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")  # what either database stores
_values = (st.none() | st.integers(-(2**31), 2**31 - 1),
           st.none() | st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1)),
           st.none() | st.text(_text, max_size=30))
_row = st.tuples(st.text(_text, max_size=12), *_values)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_row, max_size=60, unique_by=lambda r: r[0]), per=st.integers(1, 7))
def test_many_rows_are_inserted_as_one_row_at_a_time_would_insert_them(db_url, rows, per, monkeypatch) -> None:
    """Many rows go to SQLite in INSERTs of several rows each (``driver._run_many``): the same rows, in the same
    order (their ids), the same values, the same count returned, whatever rows a statement holds, through both ways
    in (the write path's tuples and ``insert_rows``' driver values); PostgreSQL runs them as before."""
    monkeypatch.setattr(driver, "ROWS_PER_INSERT", per)
    engine = _rows_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(_ROWS))
            for row in rows:  # one statement a row: what every way of inserting must give
                conn.execute(sa.insert(_ROWS).values(dict(zip(_NAMES, row, strict=True))))
            expected = _stored(conn)
            conn.execute(sa.delete(_ROWS))
            assert driver.driver_executemany_tuples(conn, _INSERT, _NAMES, rows) == len(rows)
            first = _stored(conn)
            conn.execute(sa.delete(_ROWS))
            driver.insert_rows(conn, _ROWS, list(_NAMES), [
                tuple(driver.driver_value(conn, _ROWS.c[name], v) for name, v in zip(_NAMES, row, strict=True))
                for row in rows])
            second = _stored(conn)
            conn.rollback()
    finally:
        engine.dispose()
    assert [r[1:] for r in first] == [r[1:] for r in expected] == [r[1:] for r in second]
    assert [r[0] for r in first] == sorted(r[0] for r in first)  # ids in the order of the rows


_UPSERT = sqlite.insert(_ROWS).values({name: sa.bindparam(name) for name in _NAMES})
_UPSERT = _UPSERT.on_conflict_do_update(index_elements=["name"], set_={
    name: _UPSERT.excluded[name] for name in _NAMES[1:]})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from("abcdefg"), *_values), max_size=40), per=st.integers(1, 7))
def test_many_rows_of_an_upsert_are_written_as_one_row_at_a_time_would_write_them(rows, per, monkeypatch) -> None:
    """An upsert (the leads' spans, ``ON CONFLICT ... DO UPDATE``) goes to SQLite several rows a statement too: a
    row whose key an earlier one has, in the same statement or before, updates that row, as one statement a row
    would; the rows matched are the same."""
    monkeypatch.setattr(driver, "ROWS_PER_INSERT", per)
    engine = _rows_engine("sqlite://")
    try:
        with engine.begin() as conn:
            matched = sum(driver.driver_executemany_tuples(conn, _UPSERT, _NAMES, [row]) for row in rows)
            expected = _stored(conn)
            conn.execute(sa.delete(_ROWS))
            assert driver.driver_executemany_tuples(conn, _UPSERT, _NAMES, rows) == matched
            got = _stored(conn)
    finally:
        engine.dispose()
    assert [r[1:] for r in got] == [r[1:] for r in expected]


def test_a_refused_row_among_many_refuses_the_statement_and_names_the_error(db_url) -> None:
    """A row breaking a constraint in the third statement of a many-row insert raises SQLAlchemy's IntegrityError
    (callers roll back their transaction, leaving nothing), as ``executemany`` did."""
    engine = _rows_engine(db_url)
    rows = [(f"r{k}", k, None, None) for k in range(250)]
    rows[230] = ("r3", 230, None, None)
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            driver.driver_executemany_tuples(conn, _INSERT, _NAMES, rows)
        with engine.connect() as conn:
            assert _stored(conn) == []
    finally:
        engine.dispose()


def test_sqlite_rows_per_statement_stay_within_its_limit_of_parameters(tmp_path) -> None:
    """The rows a statement holds follow SQLite's limit on a statement's parameters (a build may set it lower)."""
    engine = _rows_engine(f"sqlite:///{tmp_path / 'limit.db'}")
    rows = [(f"r{k}", k, dt.datetime(2026, 1, 1) + dt.timedelta(hours=k), "x") for k in range(25)]
    try:
        with engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)  # two rows of four a statement
            seen: list[str] = []
            raw.set_trace_callback(seen.append)
            assert driver.driver_executemany_tuples(conn, _INSERT, _NAMES, rows) == 25
            raw.set_trace_callback(None)
            assert [r[1] for r in _stored(conn)] == [f"r{k}" for k in range(25)]
        inserts = [s for s in seen if s.startswith("INSERT")]
        assert len(inserts) == 13 and all(s.count("), (") <= 1 for s in inserts)
    finally:
        engine.dispose()
