"""The recovery loop: refusal reviews, stalled leads, rotation, revisits and removals (docs/recovery.md)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.values import Money, Timestamp


class Review(TypedDict):
    """A refusal review (``review list``)."""

    id: int
    lead_id: int
    name: str
    process: str
    owner: str | None
    team: str | None
    reason: str
    note: str | None
    stage: str | None
    value: Money
    requested_at: Timestamp
    due_at: Timestamp
    state: str
    decided_by: str | None
    decided_at: Timestamp | None
    decision_note: str | None


class StalledLead(TypedDict):
    lead_id: int
    client_id: int
    name: str
    process: str
    stage: str
    owner: str | None
    days_held: int
    last_activity_at: Timestamp | None
    why: str
    latest_report: str | None
    latest_report_at: Timestamp | None
    value: Money


class CycleBasis(TypedDict):
    """The sales cycle that marks a lead stalled, and where it comes from."""

    days: float
    basis: str


class Stalled(TypedDict):
    as_of: Timestamp
    cycles: dict[str, CycleBasis]
    leads: list[StalledLead]


#: A lead rotation gives to a colleague ("from" is a keyword, hence the functional form).
Move = TypedDict("Move", {"lead_id": int, "client_id": int, "name": str, "value": Money, "from": str | None,
                          "to": str, "team": str | None})


class Unplaced(TypedDict):
    """A stalled lead rotation found no colleague for."""

    lead_id: int
    owner: str | None
    why: str


class Rotation(TypedDict):
    as_of: Timestamp
    dry_run: bool
    moves: list[Move]
    unplaced: list[Unplaced]


class Revisit(TypedDict):
    """A lost lead whose revisit date has come (``revisit list``)."""

    lead_id: int
    client_id: int
    name: str
    process: str
    reason: str | None
    closed_at: Timestamp | None
    owner: str | None


class ReasonCount(TypedDict):
    process: str
    reason: str
    kind: str
    count: int
    value: Money


class OwnerCount(TypedDict):
    owner: str | None
    count: int
    value: Money


class ProductCount(TypedDict):
    product: str | None
    count: int
    value: Money


class RemovedClient(TypedDict):
    lead_id: int
    client_id: int
    name: str
    process: str
    owner: str | None
    product: str | None
    reason: str
    kind: str
    closed_at: Timestamp
    value: Money
    taken_up: bool
    worth_returning: bool


class RemovalCounts(TypedDict):
    total: int
    value: Money
    median_value: Money
    by_reason: list[ReasonCount]
    by_salesperson: list[OwnerCount]
    by_product: list[ProductCount]
    clients: list[RemovedClient]


class Removals(RemovalCounts):
    """The monthly summary of leads closed without a sale (``removals``)."""

    month: str
    kind: str
