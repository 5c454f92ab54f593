"""The typed results of the engine's API: what every public operation returns, and what ``--json`` prints.

One convention: ``TypedDict``. A result is a plain ``dict`` at run time, so it prints as JSON as it is, and the
type checker knows its keys. The shapes are built in one place, ``engine/views.py`` (the report dicts in
``engine/reports.py``, ``engine/board.py``, ``engine/recovery.py``, ``engine/outbox.py`` and ``engine/intake.py``),
and documented in docs/cli.md and the documents it links; tests/test_results.py checks that these types, the
documented keys and the printed JSON agree.

Conventions: timestamps are ISO-8601 strings (``str``, or ``str | None`` where a value may be missing), amounts
are decimal strings (``Money``). ``JsonValue`` marks the only values that are really arbitrary JSON: a lead's field
values and an event's data.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypedDict

#: A value of a process field or of an event's data: whatever JSON the process declares (text, a number, a
#: boolean, a date as text, a list of choices). The one place where the results hold ``Any``.
JsonValue: TypeAlias = Any
#: An amount as a decimal string with two decimals ("45000.00"), or None when there is none.
Money: TypeAlias = str | None
#: An instant as ISO-8601 without an offset ("2026-03-02T09:00:00").
Timestamp: TypeAlias = str


# -- users, processes, set-up -----------------------------------------------------------------------

class User(TypedDict):
    id: int
    name: str
    role: str
    team: str | None
    email: str | None
    created_at: Timestamp
    active: bool
    password_set: bool
    must_change_password: bool
    deactivated_at: Timestamp | None


class UserChanged(User):
    """``users.set``: the user, and how many open leads they own (a deactivated user's wait for reassignment)."""

    open_leads: int


class OneTimePassword(TypedDict):
    """``auth.one_time_password``: the password, shown this once."""

    user: User
    password: str


class Session(TypedDict):
    """A login's session, never its token (docs/server.md)."""

    id: int
    user: str
    created_at: Timestamp
    last_seen_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None
    revoked_by: str | None
    address: str | None
    user_agent: str | None


class Login(TypedDict):
    """``auth.login``: the session token, shown this once."""

    token: str
    session: Session
    user: User


class SessionUser(TypedDict):
    """``auth.session``: who a live session belongs to."""

    user: User
    session: Session


class SessionsRevoked(TypedDict):
    user: str
    revoked: int


class Swept(TypedDict):
    sessions: int
    counters: int


class ProcessRow(TypedDict):
    """A row of ``process list``: one stored version of a process."""

    process: str
    version: int
    title: str
    hash: str
    loaded_at: Timestamp
    loaded_by: str
    open_leads: int


class FileProblem(TypedDict):
    line: int
    column: int
    path: str
    message: str


class ValidatedFile(TypedDict):
    """One file of ``process validate --json``."""

    file: str
    valid: bool
    problems: list[FileProblem]


class LoadedProcess(TypedDict):
    """What ``process load`` did with one file."""

    process: str
    version: int
    created: bool
    hash: str


class Migration(TypedDict):
    process: str
    to_version: int
    leads: list[int]
    dry_run: bool


class Initialised(TypedDict):
    revision: str | None
    admin_created: str | None


class RebuiltStages(TypedDict):
    rows: int


# -- administration: check, backup, restore (docs/operations.md) --------------------------------------------


class Difference(TypedDict):
    """One thing ``check`` found: ``kind`` database, lead, projection or erasure; the table (or index), the
    lead and column when there is one, the stored and the rebuilt value, and the sentence that says it."""

    kind: str
    table: str
    lead_id: int | None
    column: str | None
    stored: Any
    rebuilt: Any
    message: str


class CheckReport(TypedDict):
    ok: bool
    database: str  # sqlite or postgresql
    leads: int  # leads compared with their event log
    seconds: float
    differences: list[Difference]
    more: int  # differences found beyond those listed


class BackupReport(TypedDict):
    file: str
    database: str
    revision: str | None
    bytes: int
    seconds: float


class RestoreReport(TypedDict):
    file: str
    database: str
    revision: str | None
    leads: int
    seconds: float


# -- leads, tasks, clients, events -------------------------------------------------------------------

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


class Client(TypedDict):
    id: int
    name: str
    company: str | None
    email: str | None
    phone: str | None
    created_at: Timestamp
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


# -- the board and the stand-up --------------------------------------------------------------------

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


class DueLead(TypedDict):
    """A lead in a section of the stand-up, with its open tasks due in that section."""

    lead_id: int
    name: str
    process: str
    stage: str
    due_at: Timestamp
    tasks: list[str]
    value: Money


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


class Unassigned(TypedDict):
    """The manager's queue: open leads without an owner."""

    count: int
    leads: list[UnassignedLead]


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


class _DailyRequired(TypedDict):
    as_of: Timestamp
    people: list[DailyPerson]


class Daily(_DailyRequired, total=False):
    """The stand-up agenda (``daily``); ``reviews`` and ``unassigned`` for a manager's own agenda only."""

    reviews: list[Review]
    unassigned: Unassigned


# -- the recovery loop --------------------------------------------------------------------------------

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


# -- reports --------------------------------------------------------------------------------------------

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


# -- automation: the outbox ------------------------------------------------------------------------------

class OutboxRow(TypedDict):
    """A mail or reminder of ``outbox list``."""

    id: int
    key: str
    lead_id: int
    kind: str
    template: str
    to: str
    stage: str
    state: str
    due_at: Timestamp | None
    attempts: int
    next_attempt_at: Timestamp | None
    last_error: str | None
    to_address: str | None
    subject: str | None
    message_id: str | None
    created_at: Timestamp | None
    sent_at: Timestamp | None


class MailResult(TypedDict):
    """What ``run-due`` did with one mail."""

    id: int
    lead_id: int
    kind: str
    template: str
    to: str
    attempts: int
    state: str
    error: str | None


class RunDue(TypedDict):
    as_of: Timestamp
    sent: int
    retrying: int
    failed: int
    cancelled: int
    smtp_error: str | None
    still_due: int
    queued_later: int
    next_due_at: Timestamp | None
    mails: list[MailResult]


# -- intake: imports, submissions, tokens -------------------------------------------------------------------

class UnknownColumn(TypedDict):
    column: str
    did_you_mean: str | None


class RejectedRow(TypedDict):
    line: int
    reason: str


class ImportCounts(TypedDict):
    """What an import wrote (all 0 when it wrote nothing)."""

    imported: int
    new_clients: int
    existing_clients: int
    repeated_clients: int
    assigned_by_rules: int
    unassigned: int
    mails_queued: int


class ImportReport(ImportCounts):
    """``import``'s report (docs/intake.md#importing-a-csv-file)."""

    status: str  # imported, dry_run or aborted
    file: str
    sha256: str
    process: str
    process_version: int
    encoding: str
    delimiter: str
    columns: dict[str, str]
    ignored_columns: list[str]
    unknown_columns: list[UnknownColumn]
    rows: int
    rejected: int
    rejects: list[RejectedRow]
    rejects_file: str | None
    first_lead_id: int | None
    last_lead_id: int | None
    import_id: int | None


class Submission(TypedDict):
    """A lead sent through the HTTP intake, and whether its client was known."""

    lead: Lead
    client_existed: bool


class Token(TypedDict):
    """An API token as listed: its first characters, never the token itself. ``source`` is the user it acts as
    (an intake source, or a personal token's owner); ``name`` is a personal token's."""

    id: int
    kind: str
    name: str | None
    source: str
    hint: str
    process: str | None
    read: bool
    created_at: Timestamp
    created_by: str
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    rate_limit: int
    revoked_at: Timestamp | None
    revoked_by: str | None


class NewToken(Token):
    """``token add``: the token itself, shown this once."""

    token: str


class TokenSource(TypedDict):
    """Who an API token speaks for (``Engine.authenticate``)."""

    id: int
    source: str
    process: str | None
    read: bool
