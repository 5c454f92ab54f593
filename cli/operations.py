"""Every engine operation the CLI has, declared once: its service and method, its HTTP route under ``/v1``, its
parameters and whether it changes a lead.

The team server generates its routes from ``OPERATIONS`` (cli/server/), and the remote CLI its requests, so an
operation is declared here and nowhere else. Pure data on the standard library: the remote CLI imports this
module and must not pay for SQLAlchemy, jinja2, transitions or the engine (tests/test_imports.py checks it).

Conventions (docs/server.md):

- A parameter travels in the ``path`` (``/v1/leads/{lead_id}``), the ``query`` (reads: ``GET /v1/leads?owner=anna``)
  or the JSON ``body`` (writes: ``POST /v1/leads/{lead_id}/close {"reason": "bad_timing"}``), named as the engine
  names it unless ``wire`` says otherwise (``from`` for ``date_from``); a ``file`` parameter is the raw request
  body (a CSV to import, a YAML process file), which the server saves to a file and passes as its path (named
  as the query parameter ``filename`` says, for the messages that name it); a ``client`` parameter is filled in
  by the server from the request itself (the caller's address, its token, the file's name), never by the client.
- The answer is the engine's result as JSON: exactly what the CLI's ``--json`` prints (engine/results/), or
  ``text/csv`` for ``media="text/csv"``. ``single_if`` names a parameter that, when given, makes the answer the
  result list's only item (``GET /v1/board?process=x`` is one board, as ``leadflow board --process x --json``).
- An operation that ``changes_lead`` on one lead (its path has ``{lead_id}``) takes the version the client last
  saw: the ``If-Match`` header (the ETag of ``GET /v1/leads/{lead_id}``) or ``if_version`` in the body; a stale
  one is 409 with the current lead.
- ``audience`` says who may call it: ``person`` (a user's personal token or session), ``integration`` (a web
  form's integration token: today's intake), ``anyone`` (no credentials: logging in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: The types a parameter may have on the wire: ``int_list`` is a JSON array of ids, ``str_list`` of names,
#: ``object`` a JSON object, ``file`` the raw request body (or a query parameter's text) saved to a file for the engine.
Kind = Literal["str", "int", "bool", "int_list", "str_list", "object", "file"]
Where = Literal["path", "query", "body", "client"]  # client: the server fills it in (the caller's address)
Audience = Literal["person", "integration", "anyone"]

API_PREFIX = "/v1"
#: A client printing for a person asks for an answer's labels in the reader's language (cli/server/language.py).
LABELS_HEADER = "X-Leadflow-Labels"
READER_LABELS = "reader"


@dataclass(frozen=True)
class Param:
    """One parameter of an operation: the engine's keyword ``name``, where it travels and its type."""

    name: str
    kind: Kind = "str"
    where: Where = "body"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    wire: str | None = None  # its name on the wire, when not the engine's (``from`` for ``date_from``)
    none_value: str | None = None  # a wire value that means None (``state=all`` for every review)
    help: str = ""

    @property
    def key(self) -> str:
        """The name on the wire."""
        return self.wire or self.name


@dataclass(frozen=True)
class Operation:
    """One engine operation: ``engine.<service>.<method>(**params)`` behind ``<http> /v1<path>``."""

    service: str
    method: str
    http: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str  # under /v1, with {placeholders} for the path parameters
    command: str  # the CLI command it serves, e.g. "lead advance"
    summary: str
    params: tuple[Param, ...] = ()
    changes_lead: bool = False  # writes one lead or many (their rows, events and versions)
    status: int = 200
    media: str = "application/json"
    single_if: str | None = None
    audience: Audience = "person"
    body: Literal["json", "file", "intake"] = "json"  # what the request body is
    #: the engine method whose page this route answers (``tasks.page`` for ``GET /v1/tasks``): the answer is the
    #: page's list alone, a plain array as the operation's own method returns it, with ``X-Total-Count`` and a
    #: ``Link: <...after=...>; rel="next"`` header (docs/api.md, "Paged lists")
    paged_by: str | None = None
    paged_items: str = "tasks"  # the page's key that holds the list

    @property
    def name(self) -> str:
        """``leads.advance``: the engine's name of it (and its OpenAPI operationId)."""
        return f"{self.service}.{self.method}"

    @property
    def url(self) -> str:
        return API_PREFIX + self.path

    @property
    def versioned(self) -> bool:
        """True for an operation that changes one lead: it honours ``If-Match`` / ``if_version``."""
        return self.changes_lead and "{lead_id}" in self.path

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def placed(self, where: Where) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.where == where)


def _path(name: str, kind: Kind = "int", **kw: Any) -> Param:
    return Param(name, kind, "path", required=True, **kw)


def _query(name: str, kind: Kind = "str", **kw: Any) -> Param:
    return Param(name, kind, "query", **kw)


def _body(name: str, kind: Kind = "str", **kw: Any) -> Param:
    return Param(name, kind, "body", **kw)


LEAD = _path("lead_id", minimum=1)
ON_REFUSAL = _body("on_refusal", default="abort", choices=("abort", "skip"),
                   help="abort: all or none; skip: write the allowed ones and list the refused")
#: The filters of the director's reports over a period (leadflow report funnel|cycle|salespeople|refusals).
#: A report or view as the leads stood at a past instant (docs/reports.md, "As of a past instant").
AS_OF = _query("as_of", help="YYYY-MM-DD (its end) or YYYY-MM-DDTHH:MM: as the leads stood then")
PERIOD_FILTERS = (
    _query("date_from", wire="from", help="YYYY-MM-DD; overrides period"),
    _query("date_to", wire="to", help="YYYY-MM-DD, included"),
    _query("process"), _query("team"), _query("owner"), AS_OF,
)
PERIODS = ("day", "week", "month", "all")
#: The parameters of an import, whether it runs in the request (``/imports``) or as a job (``/import-jobs``).
IMPORT_PARAMS = (
    _body("path", "file", required=True), _query("process", required=True),
    _query("mapping", "file", help="a mapping file's YAML text"), _query("owner"),
    _query("assign", choices=("auto",)),
    _query("on_error", default="skip", choices=("skip", "abort")), _query("encoding"),
    _query("again", "bool", default=False),
    _query("history", "bool", default=False, help="deals with their stage or status and dates (admins)"),
    _query("map_reason", help="lines of OLD=NEW: an old system's closure reason = the process's"),
)



def _period_report(method: str, summary: str) -> Operation:
    return Operation("reports", method, "GET", f"/reports/{method}", f"report {method}", summary,
                     (_query("period", default="all", choices=PERIODS), *PERIOD_FILTERS))


OPERATIONS: tuple[Operation, ...] = (
    # -- logging in (engine.auth; routes exist once the engine has the service) ---------------------------------
    Operation("auth", "login", "POST", "/auth/login", "login",
              "Log in with a user name and password: a session token (rate-limited per user and address).",
              (_body("name", required=True), _body("password", required=True), Param("address", where="client"),
               Param("user_agent", where="client")), audience="anyone"),
    Operation("auth", "change_password", "POST", "/auth/password", "login",
              "Change one's own password with the old one, without a session (a one-time password at the first "
              "login); refused and rate-limited exactly like a login.",
              (_body("name", required=True), _body("old_password", required=True),
               _body("new_password", required=True), Param("address", where="client")), audience="anyone"),
    Operation("auth", "logout", "POST", "/auth/logout", "logout", "End the session whose token is sent.",
              (Param("token", where="client"),)),
    # -- who am I, users ------------------------------------------------------------------------------------
    Operation("users", "whoami", "GET", "/whoami", "whoami", "The acting user."),
    Operation("users", "permissions", "GET", "/whoami/permissions", "whoami",
              "What the acting user may open (each answered by the rule its operation checks)."),
    Operation("users", "list", "GET", "/users", "user list", "Every user."),
    Operation("users", "add", "POST", "/users", "user add", "Register a user (admins), with a first password.",
              (_body("name", required=True), _body("role", required=True), _body("team"), _body("email"),
               _body("password")), status=201),
    Operation("users", "set_email", "PATCH", "/users/{name}", "user set", "Change a user's e-mail address (admins).",
              (_path("name", "str"), _body("email", required=True))),
    Operation("users", "set", "PATCH", "/users/{name}/account", "user set",
              "Change a user's role or team, or deactivate or reactivate them (admins).",
              (_path("name", "str"), _body("role"), _body("team"), _body("clear_team", "bool", default=False),
               _body("active", "bool"))),
    Operation("auth", "set_password", "POST", "/users/{name}/password", "user passwd",
              "Set one's own password (with the current one), or any user's (admins: changed at their next login).",
              (_path("name", "str"), _body("password", required=True), _body("old_password"))),
    Operation("auth", "one_time_password", "POST", "/users/{name}/one-time-password", "user passwd --one-time",
              "A random password for a user, shown once, to be changed at their next login (admins).",
              (_path("name", "str"),)),
    Operation("users", "set_language", "PATCH", "/users/{name}/language", "user set",
              "Set the language a user reads leadflow in (their own; admins anyone's).",
              (_path("name", "str"), _body("language", required=True))),
    # -- processes --------------------------------------------------------------------------------------------
    Operation("processes", "list", "GET", "/processes", "process list",
              "Every stored process version with its open leads."),
    Operation("processes", "show", "GET", "/processes/{process}", "process show",
              "A stored process version's spec and content hash (newest by default).",
              (_path("process", "str"), _query("version", "int", minimum=1))),
    Operation("processes", "load", "POST", "/processes", "process load",
              "Validate and store a process file (the YAML body); a changed file becomes a new version (admins).",
              (_body("path", "file", required=True),), body="file"),
    Operation("processes", "validate", "POST", "/processes/validate", "process validate",
              "Check a process file (the YAML body): its problems with line and column; stores nothing.",
              (_body("path", "file", required=True), Param("name", where="client")),
              body="file"),
    Operation("processes", "migrate", "POST", "/processes/{process}/migrate", "process migrate",
              "Move every open lead of a process to another version, or refuse moving none (admins).",
              (_path("process", "str"), _body("to_version", "int", required=True, minimum=1),
               _body("dry_run", "bool", default=False)), changes_lead=True),
    # -- leads ------------------------------------------------------------------------------------------------
    Operation("leads", "add", "POST", "/leads", "lead add", "Register an inquiry as a lead at the first stage.",
              (_body("process", required=True), _body("name", help="a person; without it, company makes a company's"),
               _body("company"), _body("email"), _body("phone"), _body("source"), _body("product"),
               _body("value", help="an exact amount"), _body("owner"), _body("fields", "object"),
               _body("client_id", "int", minimum=1), _body("tax_id"), _body("external_id")),
              changes_lead=True, status=201),
    Operation("intake", "submit", "POST", "/leads", "(web forms)",
              "Register a web form's inquiry (an integration token): 201 with the lead's id.",
              changes_lead=True, status=201, audience="integration", body="intake"),
    Operation("leads", "list", "GET", "/leads", "lead list", "Leads the acting user may see.",
              (_query("process"), _query("stage"), _query("owner"), _query("status", choices=("open", "won", "lost")),
               _query("unassigned", "bool", default=False),
               _query("limit", "int", default=1000, minimum=1, maximum=100_000),
               _query("search", help="only leads of the clients this text finds (as 'leadflow find')"))),
    Operation("leads", "get", "GET", "/leads/{lead_id}", "lead show",
              "The lead (with ETag: its version), as 'leadflow lead show ID --json' prints it.", (LEAD,)),
    Operation("leads", "find_external", "GET", "/leads/external/{external_id}", "lead show (ext:ID)",
              "The id of the lead with this external id (its id in the system it was migrated from).",
              (_path("external_id", "str"),)),
    Operation("leads", "history", "GET", "/leads/{lead_id}/history", "lead history",
              "The lead's events, oldest first.", (LEAD,)),
    Operation("leads", "set_fields", "PATCH", "/leads/{lead_id}", "lead set",
              "Set process fields or value/product/source; an empty value clears a field; all or nothing.",
              (LEAD, _body("values", "object", required=True)), changes_lead=True),
    Operation("leads", "assign", "POST", "/leads/{lead_id}/assign", "lead assign",
              "Give the lead to another owner (managers).", (LEAD, _body("to", required=True)), changes_lead=True),
    Operation("leads", "advance", "POST", "/leads/{lead_id}/advance", "lead advance",
              "Move the lead to its next stage (or 'to'), if the process allows it now.",
              (LEAD, _body("to")), changes_lead=True),
    Operation("leads", "win", "POST", "/leads/{lead_id}/win", "lead win", "Win the sale from the won stage.",
              (LEAD,), changes_lead=True),
    Operation("leads", "close", "POST", "/leads/{lead_id}/close", "lead close",
              "Close the lead as lost or removed, for a reason from the catalogue; 'values': fields set with it.",
              (LEAD, _body("reason", required=True), _body("note"), _body("values", "object")), changes_lead=True),
    Operation("leads", "reopen", "POST", "/leads/{lead_id}/reopen", "lead reopen",
              "Reopen a won or lost lead (managers).", (LEAD, _body("stage")), changes_lead=True),
    Operation("leads", "complete_task", "POST", "/leads/{lead_id}/tasks/{task_id}/done", "task done",
              "Mark a task of the lead's current stage done; 'values': fields its doer records with it.",
              (LEAD, _path("task_id", "str"), _body("note"), _body("values", "object")), changes_lead=True),
    Operation("leads", "complete_tasks", "POST", "/leads/{lead_id}/tasks/done", "task done (several)",
              "Mark several tasks of the lead's current stage done in one transaction: all or none.",
              (LEAD, _body("task_ids", "str_list", required=True), _body("note"), _body("values", "object")),
              changes_lead=True),
    # -- activities and the next contact ----------------------------------------------------------------------
    Operation("activities", "add", "POST", "/leads/{lead_id}/activities", "activity add",
              "Log a call, meeting, e-mail or note on the lead; optionally book the next contact.",
              (LEAD, _body("kind", required=True, choices=("call", "meeting", "email", "note")),
               _body("text", required=True),
               _body("outcome", choices=("reached", "no_answer", "left_message", "busy", "wrong_number")),
               _body("next_contact", help="an ISO date-time such as 2026-03-02T09:30")),
              changes_lead=True, status=201),
    Operation("activities", "set_next_contact", "POST", "/leads/{lead_id}/next-contact", "lead next-contact",
              "Book the next contact with the lead's client (an empty 'at' clears it).",
              (LEAD, _body("at", help="an ISO date-time; empty clears the booking")), changes_lead=True),
    Operation("activities", "list", "GET", "/activities", "activity list",
              "Activities, newest first: of one lead, or of every lead the user may see ('mine': logged by the user).",
              (_query("lead_id", "int", wire="lead", minimum=1), _query("mine", "bool", default=False),
               _query("limit", "int", default=100, minimum=1, maximum=100_000))),
    Operation("recovery", "report", "POST", "/leads/{lead_id}/reports", "lead report",
              "The owner's short report on a lead; managers may extend it past the stalled rule.",
              (LEAD, _body("text", required=True), _body("extend_until"), _body("reason")), changes_lead=True),
    Operation("recovery", "recall", "POST", "/leads/{lead_id}/recall", "lead recall",
              "Take a lead back from its owner early (managers).", (LEAD, _body("note")), changes_lead=True),
    # the bulk forms (leadflow lead advance ID ID ..., lead win ID ID ...)
    Operation("bulk", "advance_many", "POST", "/leads/bulk/advance", "lead advance (several)",
              "Advance many leads in one transaction.",
              (_body("lead_ids", "int_list", required=True), _body("to"), ON_REFUSAL), changes_lead=True),
    Operation("bulk", "win_many", "POST", "/leads/bulk/win", "lead win (several)",
              "Win many leads in one transaction.",
              (_body("lead_ids", "int_list", required=True), ON_REFUSAL), changes_lead=True),
    Operation("bulk", "close_many", "POST", "/leads/bulk/close", "lead close (several)",
              "Close many leads for one reason in one transaction.",
              (_body("lead_ids", "int_list", required=True), _body("reason", required=True), _body("note"),
               ON_REFUSAL), changes_lead=True),
    Operation("bulk", "complete_tasks_many", "POST", "/leads/bulk/tasks/{task_id}/done", "task done (several)",
              "Complete one task on many leads in one transaction.",
              (_path("task_id", "str"), _body("lead_ids", "int_list", required=True), _body("note"), ON_REFUSAL),
              changes_lead=True),
    # -- tasks, clients ---------------------------------------------------------------------------------------
    Operation("tasks", "list", "GET", "/tasks", "task list",
              "Open tasks the user is expected to do and the contacts they booked, by time; every one, or "
              "'limit' of them from 'offset' or 'after' (the next page's cursor of the Link header); the whole "
              "list's length in X-Total-Count.",
              (_query("owner"), _query("limit", "int", minimum=1, maximum=100_000),
               _query("offset", "int", default=0, minimum=0), _query("after")), paged_by="page"),
    Operation("search", "find", "GET", "/search", "find",
              "Clients and leads by name, company, e-mail, phone, tax id or lead id, best match first.",
              (_query("text", required=True), _query("limit", "int", default=20, minimum=1, maximum=500))),
    Operation("clients", "duplicates", "GET", "/clients/duplicates", "client duplicates",
              "Groups of likely duplicate clients: same phone, e-mail, tax id, or name and company (managers).",
              (_query("limit", "int", default=200, minimum=1, maximum=10_000),)),
    Operation("clients", "merge", "POST", "/clients/{keep}/merge", "client merge",
              "Merge client 'other' into KEEP: its leads, history and contact data move; nothing is deleted.",
              (_path("keep", "int", minimum=1), _body("other", "int", required=True, minimum=1)),
              changes_lead=True),
    Operation("tasks", "page", "GET", "/tasks/page", "task list",
              "A page of the task list with the number of rows in all: {total, offset, limit, tasks, next}.",
              (_query("owner"), _query("limit", "int", default=20, minimum=1, maximum=100_000),
               _query("offset", "int", default=0, minimum=0), _query("after"))),
    Operation("clients", "get", "GET", "/clients/{client_id}", "client show",
              "A client with all its leads, past and present.", (_path("client_id", minimum=1),)),
    Operation("clients", "add_company", "POST", "/clients/companies", "client company",
              "Add a company as a client (B2B); its people are its contacts.",
              (_body("name", required=True), _body("external_id")), status=201),
    Operation("clients", "add_contact", "POST", "/clients/{client_id}/contacts", "client contact",
              "Add a contact person to a company.",
              (_path("client_id", minimum=1), _body("name", required=True), _body("role"), _body("email"),
               _body("phone")), status=201),
    Operation("clients", "edit", "PATCH", "/clients/{client_id}", "client edit",
              "Correct a client's data (GDPR art. 16): each value given replaces the stored one; the reason is "
              "recorded on each of its leads.",
              (_path("client_id", minimum=1), _body("name"), _body("email"), _body("phone"), _body("company"),
               _body("tax_id"), _body("reason", required=True)), changes_lead=True),
    Operation("clients", "erase", "POST", "/clients/{client_id}/erase", "client erase",
              "Erase a client's personal data (GDPR art. 17, admins); its leads, stages, values and dates stay.",
              (_path("client_id", minimum=1), _body("reason", required=True)), changes_lead=True),
    Operation("clients", "set_language", "PATCH", "/clients/{client_id}/language", "client set",
              "Set the language of a client's mails (anyone who may work one of its leads).",
              (_path("client_id", minimum=1), _body("language", required=True))),
    # -- the board and the stand-up ---------------------------------------------------------------------------
    Operation("boards", "board", "GET", "/board", "board",
              "Open leads by stage with their lights: one board with 'process', else a list.",
              (_query("process"), _query("owner"), _query("team"), _query("light", choices=("red", "yellow", "green")),
               _query("limit", "int", default=20, minimum=0, maximum=10_000), AS_OF), single_if="process"),
    Operation("boards", "daily", "GET", "/daily", "daily", "The stand-up agenda per salesperson.",
              (_query("owner"), _query("team"), AS_OF)),
    # -- recovery ---------------------------------------------------------------------------------------------
    Operation("recovery", "reviews", "GET", "/reviews", "review list",
              "Refusal reviews (managers): open ones, or every one with state=all.",
              (_query("state", default="open", none_value="all"),)),
    Operation("recovery", "review_return", "POST", "/reviews/{lead_id}/return", "review return",
              "Send a refused client back into the funnel: the lead reopens (managers).",
              (LEAD, _body("stage"), _body("note"), _body("to")), changes_lead=True),
    Operation("recovery", "review_confirm", "POST", "/reviews/{lead_id}/confirm", "review confirm",
              "Validate a refusal; the note records what was learned (managers).",
              (LEAD, _body("note", required=True)), changes_lead=True),
    Operation("recovery", "revisits", "GET", "/revisits", "revisit list",
              "Lost leads whose revisit is due and whose client has no newer lead.",
              (_query("process"), _query("owner"), _query("team"))),
    Operation("recovery", "start_revisit", "POST", "/clients/{client_id}/revisits", "revisit start",
              "Open a new lead for a returning client.",
              (_path("client_id", minimum=1), _body("process", required=True), _body("owner")),
              changes_lead=True, status=201),
    Operation("recovery", "removals", "GET", "/removals", "removals",
              "Leads closed without a sale in a month, clients worth returning to first.",
              (_query("month", required=True, help="YYYY-MM"), _query("process"),
               _query("kind", default="all", choices=("all", "refusal", "removal")), _query("team"), _query("owner"))),
    Operation("recovery", "stalled", "GET", "/stalled", "stalled",
              "Leads held longer than the sales cycle, idle too long, or recalled.",
              (_query("process"), _query("owner"), _query("team"), AS_OF)),
    Operation("recovery", "rotate", "POST", "/rotation", "rotate",
              "Give stalled leads to colleagues (managers); with dry_run only the plan.",
              (_body("process"), _body("team"), _body("memory", "int", minimum=0, maximum=100),
               _body("dry_run", "bool", default=False)), changes_lead=True),
    # -- reports ----------------------------------------------------------------------------------------------
    Operation("reports", "refusals", "GET", "/reports/refusals", "report refusals",
              "Refusals received in the period: by reason, product and salesperson; a matrix; the trend.",
              (_query("period", default="month", choices=PERIODS), *PERIOD_FILTERS,
               _query("matrix_by", choices=("reason", "product"), help="the salesperson x reason|product matrix"),
               _query("trend", "bool", default=False))),
    _period_report("funnel", "The cohort funnel per process."),
    _period_report("cycle", "The measured sales cycle per process, salesperson and source."),
    _period_report("salespeople", "Per salesperson: held, won, lost, conversion, cycle, red, given up."),
    _period_report("products", "Per product: won, lost, win rate, value won and cycle of the won leads."),
    Operation("reports", "forecast", "GET", "/reports/forecast", "report forecast",
              "Expected wins and value per month, with each estimate's method.",
              (_query("months", "int", default=3, minimum=1, maximum=60), _query("process"), _query("team"),
               _query("owner"), AS_OF)),
    Operation("reports", "rebuild_stages", "POST", "/reports/rebuild-stages", "(admin)",
              "Rebuild the reports' lead_stages projection from the event log (admins)."),
    # -- import and export ------------------------------------------------------------------------------------
    Operation("intake", "import_csv", "POST", "/imports", "import",
              "Import the leads of a CSV file (the body) in one transaction (managers and admins); dry_run checks "
              "every row and imports nothing.",
              (*IMPORT_PARAMS[:5], _query("dry_run", "bool", default=False), *IMPORT_PARAMS[5:]),
              changes_lead=True, body="file"),
    Operation("intake", "start_import", "POST", "/import-jobs", "(server)",
              "Start importing the leads of a CSV file (the body) as a job of the server (managers and admins): "
              "202 with the job, whose URL (Location) answers its progress, then its report or why it failed.",
              IMPORT_PARAMS, changes_lead=True, status=202, body="file"),
    Operation("intake", "import_job", "GET", "/import-jobs/{job_id}", "(server)",
              "An import job: its progress (rows read of the file's rows, accepted, rejected), then its report or "
              "why it failed (whoever started it and admins).", (_path("job_id", minimum=1),)),
    Operation("intake", "export_csv", "GET", "/export", "export",
              "The leads the user may see as CSV, formulas neutralised.",
              (Param("out", where="client"), _query("process"), _query("excel", "bool", default=False)),
              media="text/csv"),
    Operation("intake", "export_table", "GET", "/export/table", "export",
              "The leads the user may see as a typed table (columns, their types, the currencies, the rows) for "
              "a spreadsheet (leadflow export --xlsx).", (_query("process"),)),
    # -- tokens and the outbox --------------------------------------------------------------------------------
    Operation("tokens", "list", "GET", "/tokens", "token list",
              "Every API token, without the secret (admins); a user's personal tokens (owner, or mine).",
              (_query("owner"), _query("mine", "bool", default=False))),
    Operation("tokens", "add", "POST", "/tokens", "token add",
              "Make an integration token; it is in this answer only (admins).",
              (_body("source", required=True), _body("process"), _body("read", "bool", default=False),
               _body("team", help="where its unplaced leads wait")), status=201),
    Operation("tokens", "add_personal", "POST", "/tokens/personal", "login",
              "Make a personal access token acting as the caller (or, for admins, 'owner'); shown once.",
              (_body("name", required=True), _body("owner"), _body("expires_days", "int", minimum=1),
               _body("rate_limit", "int", minimum=1)), status=201),
    Operation("tokens", "revoke", "DELETE", "/tokens/{token_id}", "token revoke", "Stop accepting a token at once.",
              (_path("token_id", minimum=1),)),
    Operation("outbox", "list", "GET", "/outbox", "outbox list", "Mails of the leads the user may see.",
              (_query("state", choices=("queued", "sending", "sent", "failed", "cancelled")),
               _query("lead_id", "int", wire="lead", minimum=1),
               _query("limit", "int", default=1000, minimum=1, maximum=100_000))),
    Operation("outbox", "retry", "POST", "/outbox/{mail_id}/retry", "outbox retry",
              "Queue a failed or cancelled mail again (managers).", (_path("mail_id", minimum=1),)),
    Operation("outbox", "run_due", "POST", "/outbox/run-due", "run-due",
              "Send the due mails and reminders (admins).", (_body("limit", "int", minimum=1, maximum=1_000_000),)),
)

#: The operations by their engine name (``leads.advance``).
BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
#: The routes that answer a page's list, by the engine name of the page (``tasks.page``: ``GET /v1/tasks``): the
#: remote CLI asks them for a page, so that ``task list`` is one request whatever its form.
PAGED: dict[str, Operation] = {f"{op.service}.{op.paged_by}": op for op in OPERATIONS if op.paged_by}


def route(op: Operation, **values: Any) -> str:
    """The operation's URL path with its path parameters filled in: ``route(leads.get, lead_id=7)``."""
    from urllib.parse import quote

    path = op.url
    for p in op.placed("path"):
        path = path.replace("{" + p.name + "}", quote(str(values[p.name]), safe=""))
    return path


def query_text(value: Any) -> str:
    """A value as a query parameter's text (``true`` for True, as the server parses it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def markdown_table() -> str:
    """The routes as docs/api.md's table (``The HTTP API``)."""
    rows = ["| method | path | engine operation | CLI command | changes a lead |", "| --- | --- | --- | --- | --- |"]
    for op in OPERATIONS:
        changes = "yes, If-Match" if op.versioned else ("yes" if op.changes_lead else "")
        rows.append(f"| {op.http} | `{op.url}` | `{op.name}` | `{op.command}` | {changes} |")
    return "\n".join(rows)
