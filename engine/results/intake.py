"""Intake: what an import did, and a lead sent through the HTTP intake (docs/intake.md)."""

from __future__ import annotations

from typing import Any, TypedDict

from engine.results.leads import Lead


class UnknownColumn(TypedDict):
    column: str
    did_you_mean: str | None


class RejectedRow(TypedDict):
    """A rejected row: its line, why in English (``reason``, an ``i18n.Message`` until it is JSON), and the same as
    ``message_id`` (the template) and ``params``, the same in every language (``i18n.message_text`` shows it in
    the reader's)."""

    line: int
    reason: str
    message_id: str
    params: dict[str, Any]


class ImportCounts(TypedDict):
    """What an import wrote (all 0 when it wrote nothing)."""

    imported: int
    new_clients: int
    existing_clients: int
    repeated_clients: int
    possible_duplicates: int  # rows given a new client beside another's existing one (``client duplicates``)
    assigned_by_rules: int
    unassigned: int
    mails_queued: int


class HistoryCounts(TypedDict):
    """What a history import did besides adding deals (docs/intake.md#migrating-from-another-crm)."""

    updated: int  # deals already imported that moved on
    unchanged: int  # deals already imported where the file has them
    open: int  # of the deals added or updated, those open, won and lost
    won: int
    lost: int


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
    history_columns: list[str]  # of the columns not read, a history's (stage, status, dates): the file is one
    rows: int
    rejected: int
    rejects: list[RejectedRow]
    rejects_file: str | None
    first_lead_id: int | None
    last_lead_id: int | None
    import_id: int | None
    history: HistoryCounts | None  # a history import's counts (None for new inquiries)


class ImportJob(TypedDict):
    """An import running as a job of the server (``intake.start_import``, ``intake.import_job``)."""

    id: int
    status: str  # running, imported, aborted (a bad row with on_error abort) or failed (error, message)
    actor: str
    process: str
    file_name: str
    rows_total: int | None  # the file's rows, once counted
    rows_read: int
    accepted: int  # rows read and not rejected (once imported: the leads imported)
    rejected: int
    bytes_read: int
    bytes_total: int
    percent: int
    started_at: str
    updated_at: str
    finished_at: str | None
    report: ImportReport | None  # once imported or aborted
    error: str | None  # once failed: why, in English
    message: str | None  # the same in the language of whoever started the job


class Submission(TypedDict):
    """A lead sent through the HTTP intake, and whether its client was known."""

    lead: Lead
    client_existed: bool


class ExportTable(TypedDict):
    """``intake.export_table``: the leads a user may see as a typed table (``leadflow export --xlsx``).

    ``types`` names each column's kind (``int``, ``text``, ``phone``, ``money``, ``number``, ``date``, ``datetime``,
    ``bool``); ``currencies`` maps each process to its currency; ``rows`` hold the stored forms (money a decimal
    string, dates and instants ISO)."""

    columns: list[str]
    types: list[str]
    currencies: dict[str, str]
    rows: list[list[Any]]
