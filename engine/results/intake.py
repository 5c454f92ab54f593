"""Intake: what an import did, and a lead sent through the HTTP intake (docs/intake.md)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.leads import Lead


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
    possible_duplicates: int  # rows given a new client beside another's existing one (``client duplicates``)
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
