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
    #: the deal's id in the system it was migrated from (docs/intake.md)
    external_id: str | None


class Lead(LeadRow):
    """The lead object (``lead show --json``, every write command on a lead): a lead row with its contacts,
    tasks and the recovery loop's keys."""

    email: str | None
    phone: str | None
    stage_name: str
    #: the stage's deadline (``stage_due_at``) has passed and the lead is open, as of the answer
    stage_overdue: bool
    currency: str
    #: the label of the option chosen in each set choice field (a list for a ``choices`` field)
    choice_labels: dict[str, JsonValue]
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


class AddedLead(Lead, total=False):
    """``lead add``'s answer: the lead object, and ``possible_duplicate`` when the new lead got a client of its own
    beside an existing client with the same "email" or "phone" that the adder may not join (recorded as
    ``possible_duplicate_of``; ``client duplicates``)."""

    possible_duplicate: str


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


class Contact(TypedDict):
    """One of a company's people (``client show``'s ``contacts``)."""

    id: int
    name: str
    role: str | None
    email: str | None
    phone: str | None


class TaskPage(TypedDict):
    """A page of ``task list`` (``tasks.page``): ``total`` rows in all, these from ``offset`` on, at most ``limit``."""

    total: int
    offset: int
    limit: int
    tasks: list[TaskRow]
    #: the following page's ``after`` (keyset paging), None on the last page
    next: str | None


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
    kind: str  # person (B2C) or company (B2B, with its contacts)
    external_id: str | None
    contacts: list[Contact]
    language: str | None  # the language of the client's mails; None: each lead's process's (docs/i18n.md)
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


class StageChoice(TypedDict):
    id: str
    name: str


class ReasonChoice(TypedDict):
    id: str
    label: str
    kind: str  # refusal or removal


class FieldChoice(TypedDict):
    """A process field as a form shows it: its type (text, number, money, bool, date, choice) and bounds."""

    id: str
    label: str
    type: str
    options: list[str]
    #: each option's label (its id when it has none)
    option_labels: dict[str, str]
    min: float | None
    max: float | None
    required: bool  # required to leave the lead's current stage


class LeadOptions(TypedDict):
    """``leads.options``: what the acting user may do with a lead now (the buttons of its web page); each
    allowed action is still checked again when it is done, and refused with the engine's message."""

    lead_id: int
    version: int
    edit: bool  # set fields, advance, win, close (the owner, or a manager of its team)
    tasks: list[str]  # the open tasks of its stage the user may complete
    advance: list[StageChoice]  # the process's next stages from here, when the user may advance
    win: bool
    close: list[ReasonChoice]  # the catalogue, when the user may close it
    reopen: list[StageChoice]  # the stages a manager may reopen a closed lead into (its own stage first)
    assign: list[str]  # who a manager may give it to
    fields: list[FieldChoice]
