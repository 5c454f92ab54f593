"""The sales director's reports: refusals, funnel, cycle, salespeople, forecast (docs/reports.md)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.recovery import CycleBasis, OwnerCount, ProductCount
from engine.results.values import Money, Timestamp

#: The period a report covers ("from" is a keyword, hence the functional form).
Period = TypedDict("Period", {"name": str, "from": Timestamp | None, "to": Timestamp | None})


class RefusalReason(TypedDict):
    process: str
    reason: str
    label: str
    bant: str | None
    count: int
    value: Money


class MatrixRow(TypedDict):
    owner: str
    counts: list[int]
    total: int


class Matrix(TypedDict):
    by: str
    columns: list[str]
    rows: list[MatrixRow]
    totals: list[int]
    total: int


class TrendDay(TypedDict):
    day: str
    count: int
    cumulative: int


class TrendWeek(TypedDict):
    week: str
    count: int
    cumulative: int


class Trend(TypedDict):
    days: list[TrendDay]
    weeks: list[TrendWeek]


class _RefusalCounts(TypedDict):
    period: Period
    total: int
    value: Money
    by_reason: list[RefusalReason]
    by_product: list[ProductCount]
    by_salesperson: list[OwnerCount]


class RefusalCounts(_RefusalCounts, total=False):
    """The refusals of a period; ``matrix`` with ``--matrix``, ``trend`` with ``--trend``."""

    matrix: Matrix
    trend: Trend


class RefusalsReport(RefusalCounts):
    as_of: Timestamp
    process: str | None


class FunnelStage(TypedDict):
    stage: str
    name: str
    retired: bool
    reached: int
    share: float | None
    in_stage: int
    moved_on: int
    conversion: float | None
    median_days: float | None
    measured: int


class Funnel(TypedDict):
    process: str
    title: str
    leads: int
    open: int
    won: int
    lost: int
    conversion: float | None
    stages: list[FunnelStage]


class FunnelReport(TypedDict):
    as_of: Timestamp
    period: Period
    funnels: list[Funnel]


class CycleStats(TypedDict):
    """Days from creation to win of a set of won leads."""

    won: int
    mean_days: float | None
    median_days: float | None
    p25_days: float | None
    p75_days: float | None
    min_days: float | None
    max_days: float | None


class ProcessCycle(CycleStats):
    process: str
    declared_days: int
    stalled_cycle: CycleBasis


class GroupCycle(TypedDict):
    won: int
    mean_days: float | None
    median_days: float | None


class OwnerCycle(GroupCycle):
    process: str
    owner: str | None


class SourceCycle(GroupCycle):
    process: str
    source: str | None


class Cycles(TypedDict):
    period: Period
    processes: list[ProcessCycle]
    by_salesperson: list[OwnerCycle]
    by_source: list[SourceCycle]


class CycleReport(Cycles):
    as_of: Timestamp


class Salesperson(TypedDict):
    owner: str
    held: int
    held_value: Money
    won: int
    won_value: Money
    lost: int
    conversion: float | None
    mean_cycle_days: float | None
    red: int
    gave_up: int
    won_by_colleague: int


class Salespeople(TypedDict):
    period: Period
    salespeople: list[Salesperson]


class SalespeopleReport(Salespeople):
    as_of: Timestamp
    process: str | None


class Estimate(TypedDict):
    """How likely a lead in a stage is to be won, and how soon."""

    stage: str
    probability: float
    probability_method: str
    history: int
    won: int
    days_to_win: float
    days_method: str


class Expected(TypedDict):
    """The value of some open leads, and what of it is expected to be won."""

    value: Money
    expected_wins: float
    expected_value: Money


class ForecastStage(Estimate, Expected):
    open: int


class ForecastLater(Expected):
    leads: int


class ForecastMonth(ForecastLater):
    month: str


class Forecast(TypedDict):
    process: str
    title: str
    currency: str
    stages: list[ForecastStage]
    months: list[ForecastMonth]
    later: ForecastLater


class ForecastReport(TypedDict):
    as_of: Timestamp
    months: int
    forecasts: list[Forecast]


class ProductFigures(TypedDict):
    """One product's deals closed in the period (``report products``)."""

    process: str
    product: str | None
    won: int
    lost: int
    conversion: float | None  # won / (won + lost)
    won_value: Money
    mean_cycle_days: float | None  # creation to win, of the won ones
    median_cycle_days: float | None


class Products(TypedDict):
    period: Period
    products: list[ProductFigures]


class ProductsReport(Products):
    as_of: Timestamp
