"""The board and the stand-up agenda (docs/board.md)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.recovery import Review
from engine.results.values import Money, Timestamp


class Lights(TypedDict):
    green: int
    yellow: int
    red: int


class Card(TypedDict):
    """A lead on the board."""

    id: int
    name: str
    owner: str | None
    value: Money
    light: str
    days_in_stage: int
    days_in_process: int
    too_long: bool
    due_at: Timestamp | None
    next_contact: Timestamp | None


class BoardStage(TypedDict):
    id: str
    name: str
    count: int
    value: Money
    lights: Lights
    too_long: int
    leads: list[Card]


class BoardTotals(TypedDict):
    count: int
    value: Money
    green: int
    yellow: int
    red: int
    too_long: int


class Board(TypedDict):
    process: str
    title: str
    currency: str
    as_of: Timestamp
    totals: BoardTotals
    stages: list[BoardStage]
    limit: int
    #: the leads waiting for an owner (a team's or everyone's board; null on one person's board)
    unassigned: Unassigned | None


class DueLead(TypedDict):
    """A lead in a section of the stand-up, with its open tasks due in that section."""

    lead_id: int
    name: str
    process: str
    stage: str
    due_at: Timestamp | None
    tasks: list[str]
    value: Money
    #: the contact the owner booked, when it is what puts the lead in this section (or beside it)
    next_contact: Timestamp | None


class DueLeads(TypedDict):
    count: int
    leads: list[DueLead]


class RevisitDue(TypedDict):
    lead_id: int
    client_id: int
    name: str
    process: str
    reason: str | None
    closed_at: Timestamp


class NewLead(TypedDict):
    lead_id: int
    name: str
    process: str
    stage: str
    assigned_at: Timestamp


class DoneItem(TypedDict):
    lead_id: int
    name: str
    kind: str
    at: Timestamp
    detail: str


class DailyPerson(TypedDict):
    """One salesperson's stand-up agenda."""

    salesperson: str
    calendar: str
    since: Timestamp
    red: DueLeads
    due_today: DueLeads
    due_next_business_day: DueLeads
    revisits_due: list[RevisitDue]
    new_leads: list[NewLead]
    done: list[DoneItem]


class UnassignedLead(TypedDict):
    lead_id: int
    name: str
    process: str
    stage: str
    team: str | None
    created_at: Timestamp
    waiting_days: int
    overdue: bool
    value: Money
    #: the deactivated user who still owns it, or null for a lead that never had an owner
    deactivated_owner: str | None


class Unassigned(TypedDict):
    """The manager's queue: open leads without an owner, or whose owner was deactivated."""

    count: int
    leads: list[UnassignedLead]


class _DailyRequired(TypedDict):
    as_of: Timestamp
    people: list[DailyPerson]


class Daily(_DailyRequired, total=False):
    """The stand-up agenda (``daily``); ``reviews`` and ``unassigned`` for a manager's own agenda only."""

    reviews: list[Review]
    unassigned: Unassigned
