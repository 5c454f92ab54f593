"""The SQL the reports share: durations between two instants, and quantiles read by the database (never by
pulling rows into Python), with the rounding every report uses for days and ratios."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.schema import SECONDS_PER_DAY, seconds_between

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition, Expr

__all__ = ["SECONDS_PER_DAY", "grouped_quantiles", "in_days", "quantiles", "ratio", "seconds_between"]


def _interpolate(low: float, high: float | None, fraction: float) -> float:
    return low if high is None or fraction == 0 else low + (high - low) * fraction


def quantiles(conn: Connection, value: Expr, where: list[Condition], count: int,
              qs: Iterable[float] = (0.5,), pair_at: Callable[[int], list[float]] | None = None,
              ) -> list[float | None]:
    """The ``qs`` quantiles of ``value`` over the ``count`` rows matching ``where`` (linear interpolation, as
    PostgreSQL's ``percentile_cont``: the median of an even count is the mean of the middle two).

    Each is one ``ORDER BY value LIMIT 2 OFFSET k`` query: with an index ordered by ``value`` after the
    equality conditions the database walks k index entries and sorts nothing. ``pair_at(k)``: the values at
    positions k and k + 1 (0-based; the one at k when it is the last) read another way instead
    (``asof.Sources.quantiles``: as of a past instant).
    """
    def ordered(low: int) -> list[float]:
        return [float(v) for v in conn.execute(sa.select(value).where(*where).order_by(value)
                                               .limit(2).offset(low)).scalars()]

    read = pair_at or ordered
    out: list[float | None] = []
    for q in qs:
        if count == 0:
            out.append(None)
            continue
        position = q * (count - 1)
        low = math.floor(position)
        pair = read(low)
        out.append(_interpolate(pair[0], pair[1] if len(pair) > 1 else None, position - low))
    return out


def grouped_quantiles(conn: Connection, value: Expr, group: Expr, where: list[Condition],
                      qs: Iterable[float] = (0.5,)) -> dict[Any, tuple[int, list[float]]]:
    """Per value of ``group``: the row count and the ``qs`` quantiles of ``value``, in one query.

    Window functions number each group's rows by ``value`` and only the rows at the quantiles' positions leave
    the database (SQLite >= 3.25 and PostgreSQL).
    """
    qs = list(qs)
    rn = sa.func.row_number().over(partition_by=group, order_by=value).label("rn")
    n = sa.func.count().over(partition_by=group).label("n")
    ranked = sa.select(group.label("g"), value.label("v"), rn, n).where(*where).subquery()
    wanted = []
    for q in qs:
        # the 1-based row of floor(q * (n - 1)), in integer arithmetic: casting a fraction rounds on PostgreSQL
        share = Fraction(q).limit_denominator(1000)
        first = (ranked.c.n - 1) * share.numerator // share.denominator + 1
        wanted += [first, first + 1]
    rows: dict[Any, dict[int, float]] = {}
    sizes: dict[Any, int] = {}
    for g, v, rank, size in conn.execute(sa.select(ranked.c.g, ranked.c.v, ranked.c.rn, ranked.c.n)
                                         .where(sa.or_(*(ranked.c.rn == w for w in wanted)))):
        rows.setdefault(g, {})[int(rank)] = float(v)
        sizes[g] = int(size)
    out: dict[Any, tuple[int, list[float]]] = {}
    for g, at in rows.items():
        size = sizes[g]
        values = []
        for q in qs:
            position = q * (size - 1)
            low = math.floor(position)
            values.append(_interpolate(at[low + 1], at.get(low + 2), position - low))
        out[g] = (size, values)
    return out


def in_days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / SECONDS_PER_DAY, 2)


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
