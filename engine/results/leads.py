"""Leads, their tasks, clients and events, and what the bulk calls did (docs/cli.md#the-lead-object)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.values import JsonValue, Money, Timestamp


class LeadTask(TypedDict):
    """A task of the lead object: every task of every stage the lead has been in."""

    id: str
    stage: str
    name: str
    owner: str | None
    mandatory: bool
    state: str
    due_at: Timestamp | None
    done_by: str | None
    done_at: Timestamp | None
    note: str | None


class LeadRow(TypedDict):
    """A row of ``lead list``: a lead without its tasks and contacts."""

    id: int
    # the client
    client_id: int
    name: str
    company: str | None
    # where the lead stands in its process
    process: str
    process_version: int
    stage: str
    status: str
    # whose it is (the team, and the owner in it), and what it is about
    team: str | None
    owner: str | None
    source: str | None
    product: str | None
    value: Money
    fields: dict[str, JsonValue]
    # when
    created_at: Timestamp
    stage_entered_at: Timestamp
    stage_due_at: Timestamp | None
    closed_at: Timestamp | None
    close_reason: str | None
    #: the contact the owner booked with the client (a date and time), if any
    next_contact: Timestamp | None


class Lead(LeadRow):
    """The lead object (``lead show --json``, every write command on a lead): a lead row with its contacts,
    tasks and the recovery loop's keys."""

    email: str | None
    phone: str | None
    stage_name: str
    currency: str
    tasks: list[LeadTask]
    last_activity_at: Timestamp
    close_note: str | None
    last_report: str | None
    last_report_at: Timestamp | None
    extended_until: Timestamp | None
    extension_reason: str | None
    recalled_at: Timestamp | None
    rest_until: Timestamp | None
    #: calls that did not reach the client since the last call that did (activity add --outcome no_answer)
    unanswered_calls: int
    #: the lead's row version: every write adds one (GET /v1/leads/{id} sends it as the ETag; --if-version)
    version: int


class ClientLead(TypedDict):
    """One of the client's other leads, as ``lead show`` lists them (``client_leads``)."""

    id: int
    process: str
    status: str
    stage: str
    owner: str | None
    created_at: Timestamp
    closed_at: Timestamp | None
    close_reason: str | None


class LeadShown(Lead):
    """``lead show``: the lead object and the client's other leads."""

    client_leads: list[ClientLead]


class HistoryEvent(TypedDict):
    """An event of ``lead history``; ``data``'s keys depend on ``kind`` (docs/cli.md#history-events)."""

    id: int | None
    lead_id: int | None
    at: Timestamp
    actor: str
    kind: str
    data: dict[str, JsonValue]


class TaskRow(TypedDict):
    """A row of ``task list``: an open task, or a refusal review on a director's list."""

    lead_id: int
    name: str
    process: str
    stage: str | None  # None only for a review whose lead was reopened without deciding it
    task: str
    task_name: str
    owner: str | None
    lead_owner: str | None
    mandatory: bool
    due_at: Timestamp | None
    overdue: bool
    #: how to reach the client, and the next contact booked on the lead
    phone: str | None
    email: str | None
    next_contact: Timestamp | None


class TaskPage(TypedDict):
    """A page of ``task list`` (``tasks.page``): ``total`` rows in all, these from ``offset`` on, at most ``limit``."""

    total: int
    offset: int
    limit: int
    tasks: list[TaskRow]


class Activity(TypedDict):
    """An activity logged on a lead (``activity list``): an ``activity`` event of the lead's history."""

    id: int | None
    lead_id: int | None
    name: str
    at: Timestamp
    actor: str
    kind: str
    outcome: str | None
    text: str


class ClientContact(TypedDict):
    """Who a client is, as ``client show``, ``find`` and ``client duplicates`` print it."""

    name: str
    company: str | None
    email: str | None
    phone: str | None  # E.164
    tax_id: str | None


class Client(ClientContact):
    id: int
    created_at: Timestamp
    merged_into: int | None  # the client this one was merged into (``client merge``), whose leads it lists
    leads: list[Lead]


class Refused(TypedDict):
    """A lead a bulk call refused, and why."""

    lead_id: int
    error: str
    reason: str


class BulkResult(TypedDict):
    """``advance_many``, ``win_many``, ``complete_tasks_many``: the leads changed and those refused."""

    action: str
    done: list[int]
    refused: list[Refused]
