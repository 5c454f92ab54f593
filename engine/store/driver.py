"""The driver-level executor: statements built once, run on the driver's cursor (see the package's note)."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
import sqlalchemy.dialects.sqlite
from sqlalchemy.engine import Connection


def _marker(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _driver_executemany(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        try:
            return _run_many(conn, cursor, sql, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise sqlalchemy_error(conn, sql, exc) from exc
    finally:
        cursor.close()


#: Rows per statement when many rows are inserted into SQLite (``_run_many``).
ROWS_PER_INSERT = 100
_ONE_ROW_INSERT = re.compile(r"(INSERT INTO .+? VALUES )(\([^()]*\))( ON CONFLICT .*)?", re.DOTALL)


def _run_many(conn: Connection, cursor: Any, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run ``sql`` once per row of values on ``cursor``; returns the rows matched. On SQLite an INSERT
    of one row's ``VALUES (?, ...)`` runs as INSERTs of up to ``ROWS_PER_INSERT`` rows each (``VALUES (...),
    (...), ...``): the same rows in the same order, but the driver's per-row work of ``executemany`` (a statement
    reset and stepped for every row) done once per hundred rows, a quarter of the time of a bulk load's inserts
    (docs/performance.md, "Session 14"). An upsert too (``ON CONFLICT ... DO UPDATE`` without parameters of its
    own: SQLite applies it row by row, a row conflicting with an earlier one of the same statement included).
    Anything else (an UPDATE, PostgreSQL, rows by name): ``executemany``."""
    shape = (_multi_row_shape(sql, conn.dialect.name, len(rows[0]))
             if len(rows) > 1 and isinstance(rows[0], (tuple, list)) else None)
    if shape is None:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)
    head, one, tail = shape
    variables = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(ROWS_PER_INSERT, variables // len(rows[0])))
    full = f"{head}{', '.join([one] * per)}{tail}"
    matched = 0
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        cursor.execute(full if len(chunk) == per else f"{head}{', '.join([one] * len(chunk))}{tail}",
                       list(itertools.chain.from_iterable(chunk)))
        matched += int(cursor.rowcount)
    return matched


@functools.lru_cache(maxsize=256)
def _multi_row_shape(sql: str, dialect: str, width: int) -> tuple[str, str, str] | None:
    """``sql``'s head up to ``VALUES``, its one row's ``(?, ...)`` and its ``ON CONFLICT`` clause (or nothing),
    when it is a SQLite INSERT of one row of ``width`` positional parameters, all of them the row's; else None."""
    found = _ONE_ROW_INSERT.fullmatch(sql.strip()) if dialect == "sqlite" and width else None
    if found is None or found.group(2).count("?") != width or sql.count("?") != width:
        return None
    return found.group(1), found.group(2), found.group(3) or ""


def sqlalchemy_error(conn: Connection, sql: str, exc: Exception) -> sa.exc.StatementError:
    """A driver's error as SQLAlchemy raises it (``sa.exc.OperationalError``...), as if run by ``conn.execute``:
    callers and the CLI handle one family of database errors."""
    return sa.exc.DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error)


def _processor(conn: Connection, column: sa.Column[Any]) -> Any:
    return _bind_processor(column.type, conn.dialect)


def _bind_processor(type_: Any, dialect: sa.Dialect) -> Any:
    # the dialect's own type: a generic DateTime has no bind processor, SQLite's DATETIME writes the stored text
    impl = type_.dialect_impl(dialect)
    processor = impl.bind_processor(dialect)
    if isinstance(impl, SQLITE_DATETIME) and impl._storage_format == _SQLITE_DATETIME_FORMAT:
        return functools.partial(_sqlite_datetime, processor)
    return processor


SQLITE_DATETIME = sa.dialects.sqlite.DATETIME
_SQLITE_DATETIME_FORMAT = SQLITE_DATETIME()._storage_format  # type: ignore[no-untyped-call]


def _sqlite_datetime(processor: Callable[[Any], Any], value: Any) -> Any:
    """SQLite DATETIME's stored text of ``value``, as its bind processor writes it (``YYYY-MM-DD HH:MM:SS.ffffff``),
    by ``isoformat`` for a naive datetime: a history import writes millions of distinct instants."""
    if type(value) is dt.datetime and value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    return processor(value)


def driver_value(conn: Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver receives it for ``column`` (a SQLite date-time becomes its stored text)."""
    processor = _processor(conn, column)
    return processor(value) if processor is not None and value is not None else value


class _DriverStatement(NamedTuple):
    sql: str
    positional: bool  # the driver takes the parameters as a sequence in ``params``' order, else by name
    params: tuple[tuple[str, Any], ...]  # (name, the bind processor of its type or None), in order
    keys: tuple[str, ...]  # the selected columns
    results: tuple[Any, ...]  # ... and their result processors (None: as the driver returns it)


@functools.lru_cache(maxsize=1024)
def _driver_statement(statement: sa.Executable, dialect: sa.Dialect) -> _DriverStatement:
    assert isinstance(statement, sa.ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, sa.sql.compiler.SQLCompiler)
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    selected: list[Any] = list(statement.selected_columns) if isinstance(statement, sa.Select) else []
    return _DriverStatement(
        compiled.string, compiled.positional,
        tuple((name, _bind_processor(compiled.binds[name].type, dialect)) for name in names),
        tuple(str(c.key) for c in selected),
        tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected))


def _driver_run(conn: Connection, statement: sa.Executable, params: dict[str, Any]) -> tuple[Any, _DriverStatement]:
    compiled = _driver_statement(statement, conn.dialect)
    values = [p(params[name]) if p is not None else params[name] for name, p in compiled.params]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, values if compiled.positional else dict(zip(
            (name for name, _ in compiled.params), values, strict=True)))
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise sqlalchemy_error(conn, compiled.sql, exc) from exc
    except BaseException:
        cursor.close()
        raise
    return cursor, compiled


def driver_execute(conn: Connection, statement: sa.Executable, params: dict[str, Any]) -> int:
    """Run a statement built once (with bound parameters) on the driver's cursor, as ``conn.execute`` would
    but without its per-call work, which cost more than the database's own for one lead; returns the rows
    matched. Values go through each bound type's processor, exactly as SQLAlchemy stores them."""
    cursor, _ = _driver_run(conn, statement, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def driver_executemany(conn: Connection, statement: sa.Executable, rows: list[dict[str, Any]]) -> int:
    """``driver_execute`` for many parameter sets in one call; returns the rows matched by all of them."""
    if not rows:
        return 0
    names = tuple(dict.fromkeys(name for name, _ in _driver_statement(statement, conn.dialect).params))
    pick = operator.itemgetter(*names)
    return driver_executemany_tuples(conn, statement, names, [pick(row) for row in rows] if len(names) > 1
                                     else [(pick(row),) for row in rows])


def driver_executemany_tuples(conn: Connection, statement: sa.Executable, names: tuple[str, ...],
                              rows: Sequence[tuple[Any, ...]]) -> int:
    """``driver_executemany`` of rows given as tuples, each holding the values of the bound parameters ``names``
    in that order: the write path's statements, whose rows are built without a dict per row. The values of many
    rows are converted a column at a time, each distinct value once (a batch's rows repeat one instant, one
    deadline); one row (a one-lead operation) is run as one ``execute``. Returns the rows matched."""
    if not rows:
        return 0
    compiled = _driver_statement(statement, conn.dialect)
    plan = _tuple_plan(statement, conn.dialect, names)
    values: Sequence[Any]
    if len(rows) == 1:
        row = rows[0]
        values = [[row[i] if p is None or row[i] is None else p(row[i]) for i, p in plan.columns]]
    elif plan.as_given:
        values = rows
    else:
        # a column at a time (``map`` of an item getter, not ``zip(*rows)``, whose one iterator per row is slower)
        values = list(zip(*(list(map(operator.itemgetter(i), rows)) if p is None
                            else _convert_column(list(map(operator.itemgetter(i), rows)), p)
                            for i, p in plan.columns), strict=True))
    if not compiled.positional:
        values = [dict(zip(plan.keys, v, strict=True)) for v in values]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if len(values) == 1:
            cursor.execute(compiled.sql, values[0])
            return int(cursor.rowcount)
        return _run_many(conn, cursor, compiled.sql, values)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sqlalchemy_error(conn, compiled.sql, exc) from exc
    finally:
        cursor.close()


class _TuplePlan(NamedTuple):
    columns: tuple[tuple[int, Any], ...]  # per parameter of the compiled statement: its place in a row, its processor
    as_given: bool  # the rows are the driver's parameters as they are (in order, nothing to convert)
    keys: tuple[str, ...]  # the compiled statement's parameter names (a driver that takes them by name)


@functools.lru_cache(maxsize=1024)
def _tuple_plan(statement: sa.Executable, dialect: sa.Dialect, names: tuple[str, ...]) -> _TuplePlan:
    params = _driver_statement(statement, dialect).params
    missing = {name for name, _ in params} - set(names)
    assert not missing, f"no values for {sorted(missing)}"
    columns = tuple((names.index(name), p) for name, p in params)
    as_given = all(p is None for _, p in columns) and [i for i, _ in columns] == list(range(len(names)))
    return _TuplePlan(columns, as_given, tuple(name for name, _ in params))


#: The stored text of the naive date-times this process wrote lately: one instant of a batch goes to many columns of
#: many tables (an event's time, its tasks', the lead's, its spans' and stays'), converted once for all of them (a
#: history import's batch of 5,000 deals holds some 18,000 instants; converting them column by column was a seventh
#: of a million-deal import's Python). A new dict replaces it once it holds ``_TEXTS_KEPT`` (about 17 MB; a caller
#: on another thread keeps using the one it took, never cleared under it).
_TEXTS: list[dict[Any, str | None]] = [{None: None}]
_TEXTS_KEPT = 100_000


def _datetime_texts(values: Sequence[Any], processor: Any) -> Sequence[Any]:
    """``_convert_column`` of a SQLite DATETIME column (``processor`` its ``_sqlite_datetime``): through
    ``_TEXTS``; a column with an aware date-time (whose text depends on its offset, not only on the instant it
    compares equal by) is converted value by value."""
    texts = _TEXTS[0]
    if len(texts) > _TEXTS_KEPT:
        texts = _TEXTS[0] = {None: None}
    for value in set(values).difference(texts):
        if type(value) is not dt.datetime or value.tzinfo is not None:
            return [processor(v) if v is not None else None for v in values]
        texts[value] = processor(value)
    return list(map(texts.__getitem__, values))


def _convert_column(values: Sequence[Any], processor: Any) -> Sequence[Any]:
    """A column's values through its bind processor, each distinct value converted once."""
    if isinstance(processor, functools.partial) and processor.func is _sqlite_datetime:
        return _datetime_texts(values, processor)
    try:
        table = {value: processor(value) for value in set(values) if value is not None}
    except TypeError:  # an unhashable value: convert every one
        return [processor(value) if value is not None else None for value in values]
    table[None] = None
    return list(map(table.__getitem__, values))


def driver_rows(conn: Connection, statement: sa.Select[Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a select built once, read on the driver's cursor, each value as SQLAlchemy returns it."""
    cursor, compiled = _driver_run(conn, statement, params)
    try:
        rows = cursor.fetchall()
    finally:
        cursor.close()
    keys, results = compiled.keys, compiled.results
    if not any(results):
        return [dict(zip(keys, row, strict=True)) for row in rows]
    return [{k: (p(v) if p is not None else v) for k, p, v in zip(keys, results, row, strict=True)} for row in rows]


def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows with the same keys in one driver-level executemany, each distinct value of a column
    converted once (a batch's rows repeat one instant): the outbox rows of a million imported leads."""
    if not rows:
        return
    names = tuple(rows[0])
    pick = operator.itemgetter(*names)
    driver_executemany_tuples(conn, _insert_statement(table, names), names,
                              [pick(row) for row in rows] if len(names) > 1 else [(pick(row),) for row in rows])


@functools.lru_cache(maxsize=256)
def _insert_statement(table: sa.Table, names: tuple[str, ...]) -> sa.Insert:
    return sa.insert(table).values({name: sa.bindparam(name) for name in names})


def insert_rows(conn: Connection, table: sa.Table, names: list[str],
                rows: list[tuple[Any, ...]] | list[list[Any]]) -> None:
    """Insert rows that already hold driver values (``driver_value``), in one driver-level executemany:
    for bulk loads whose repeated values (the same instant, the same stage) are converted once, not per row."""
    if rows:
        quote = conn.dialect.identifier_preparer.quote
        sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
               f"VALUES ({', '.join([_marker(conn)] * len(names))})")
        _driver_executemany(conn, sql, rows)

#: Leads per statement when a bulk operation reads or writes by lists of ids.
CHUNK = 500


def rows_by_ids(conn: Connection, statement: Callable[[int], sa.Select[Any]], ids: list[int]
                 ) -> list[dict[str, Any]]:
    """``driver_rows`` of a select by a list of ids, ``CHUNK`` ids per statement. The statements take one
    parameter per id: one per list length, built and compiled once, rather than an expanding IN rebuilt for
    every call."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows += driver_rows(conn, statement(len(chunk)), {f"id{k}": i for k, i in enumerate(chunk)})
    return rows




def new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class RecordedWrites:
    """A stand-in for a SQLite connection that records the driver-level statements of a write instead of running
    them: the history import builds a batch's rows in a worker process (``engine.intake.history_parallel``) and
    the process that holds the transaction runs them (``replay``). Only the driver-level paths work on it
    (``driver_executemany_tuples``, ``driver_execute``, ``insert_rows``), with the values converted exactly as for
    a connection of ``dialect``; a write that would read (a stored lead's rows) fails loudly."""

    def __init__(self, dialect: sa.Dialect, variable_limit: int):
        self.dialect = dialect
        self.connection = self  # ``conn.connection.dbapi_connection.cursor()`` and ``cursor.connection.getlimit()``
        self.dbapi_connection = self
        self._limit = variable_limit
        #: (many, sql, parameters): ``executemany`` of rows, or one ``execute``
        self.statements: list[tuple[bool, str, Any]] = []

    def cursor(self) -> _RecordingCursor:
        return _RecordingCursor(self)

    def getlimit(self, category: int) -> int:
        assert category == sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, category
        return self._limit


class _RecordingCursor:
    def __init__(self, recorder: RecordedWrites):
        self.connection = recorder
        self.rowcount = -1

    def execute(self, sql: str, params: Sequence[Any]) -> None:
        self.connection.statements.append((False, sql, params))
        self.rowcount = 1

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.connection.statements.append((True, sql, list(rows)))
        self.rowcount = len(rows)

    def fetchall(self) -> list[Any]:
        raise RuntimeError("a recorded write cannot read the database")

    def close(self) -> None:
        pass


def replay(conn: Connection, statements: Sequence[tuple[bool, str, Any]]) -> None:
    """Run the statements a ``RecordedWrites`` recorded, in order, on ``conn``'s driver cursor."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for many, sql, params in statements:
            try:
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
            except conn.dialect.loaded_dbapi.Error as exc:
                raise sqlalchemy_error(conn, sql, exc) from exc
    finally:
        cursor.close()
