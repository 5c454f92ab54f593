"""The names of what SQL hands over and takes, for annotations.

A database row's column values are whatever its columns hold (int, str, datetime, None...): the one place where
``Any`` is honest is the column tuple of a row, named here once. Everything else in the engine annotates rows and
SQL expressions with these names, so a reader sees what a value is (a row read by attribute, a row read by key,
a WHERE term) rather than ``Any``.
"""

from __future__ import annotations

from collections import abc
from typing import Any, TypeAlias

import sqlalchemy as sa

#: A result row read by attribute (``row.name``), as ``conn.execute(...).all()`` gives.
Record: TypeAlias = "sa.Row[*tuple[Any, ...]]"
#: A result row read by key (``row["name"]``), as ``conn.execute(...).mappings()`` gives, or a dict made of one.
Mapping: TypeAlias = "sa.RowMapping | abc.Mapping[str, Any]"
#: A term of a WHERE clause.
Condition: TypeAlias = "sa.ColumnElement[bool]"
#: A column or SQL expression of any type (a grouping key, a value to aggregate).
Expr: TypeAlias = "sa.ColumnElement[Any]"
#: A SELECT statement of any columns.
Query: TypeAlias = "sa.Select[Any]"
#: One row's column values, in a statement's parameter order (the driver-level executor's rows).
Values: TypeAlias = "tuple[Any, ...]"
