"""Processes and the installation: ``process list``, ``process load``, ``process migrate``, ``init``."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from engine.results.values import Timestamp


class ProcessRow(TypedDict):
    """A row of ``process list``: one stored version of a process."""

    process: str
    version: int
    title: str
    hash: str
    loaded_at: Timestamp
    loaded_by: str
    open_leads: NotRequired[int]  # absent when not asked for (``processes.list(open_leads=False)``)


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
