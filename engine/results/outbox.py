"""Automation: the outbox's mails and reminders, and what ``run-due`` did (docs/automation.md)."""

from __future__ import annotations

from typing import TypedDict

from engine.results.users import Swept
from engine.results.values import Timestamp


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
    swept: Swept  # ended sessions and spent rate-limit counters deleted first (auth.sweep)
