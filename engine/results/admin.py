"""Administration: what ``check``, ``backup`` and ``restore`` report (docs/operations.md)."""

from __future__ import annotations

from typing import Any, TypedDict


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
    message_id: str
    params: dict[str, Any]


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
