"""What ``leadflow find`` returns, and ``leadflow client duplicates``."""

from __future__ import annotations

from typing import TypedDict

from engine.results.leads import ClientContact


class SearchHit(ClientContact):
    """A client the search found, with the lead it shows: the one searched for by id, else its newest open one
    the user may see, else its newest (``lead_id`` and the rest are null for a client with no lead to see)."""

    client_id: int
    match: str  # exact, prefix or partial
    matched: str  # what matched: name, company, email, phone, tax_id, lead or key (partly one, partly another)
    lead_id: int | None
    process: str | None
    stage: str | None
    status: str | None
    owner: str | None
    light: str | None  # green, yellow or red for an open lead, else null


class DuplicateClient(ClientContact):
    """One client of a group of likely duplicates."""

    id: int
    leads: int


class Duplicates(TypedDict):
    """Clients that are likely one person: what they share, and who they are (oldest first)."""

    reason: str  # phone, email, tax_id or name
    value: str
    clients: list[DuplicateClient]
