"""Which stages a lead reached and how long it spent in each: the funnel's projection.

``store.lead_stages`` keeps one row per lead and stage reached. A row is created the first time the lead
enters the stage and is never duplicated: a lead reopened into a stage it has seen, or migrated to a new
process version (stage ids stay, see ``Engine.migrate_process``), keeps its one row, so the funnel counts
it once. A *stay* is the time from entering the stage to leaving it: by advancing (the lead moved on), by
being won from it (it moved on too), or by being closed in it. ``seconds`` adds up the finished stays;
``stay_started_at`` is the start of the stay going on now, if any. A rotation or a manager's extension does
not end a stay: the lead is still in the stage.

The moves come from comparing a lead's state before and after a write (every engine operation changes the
stage or the status at most once), so the write path (``engine.store``) and the rebuild from the event log
(``store.rebuild_stages``, which compares the states event by event: ``store.History``) share these two functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.vocab import LeadStatus

ENTER, PASS, LEAVE = "enter", "pass", "leave"

#: A lead's stage and status before a change (``None``: the lead did not exist yet).
Position = tuple[str, str]


class Placed(Protocol):
    """What the moves read of a lead: a ``LeadState``, or a ``Step`` of one change that moves it several times."""

    @property
    def stage(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def stage_entered_at(self) -> dt.datetime: ...
    @property
    def closed_at(self) -> dt.datetime | None: ...


@dataclass(frozen=True, slots=True)
class Step:
    """Where a lead stood after one event of a change that moves it more than once (a history import's deal:
    ``LeadChange.steps``), so that each stay is followed as if the events had been written one by one."""

    stage: str
    status: str
    stage_entered_at: dt.datetime
    closed_at: dt.datetime | None

    @staticmethod
    def of(state: Placed) -> Step:
        return Step(state.stage, state.status, state.stage_entered_at, state.closed_at)


@dataclass
class Visit:
    stage: str
    entered_at: dt.datetime
    stay_started_at: dt.datetime | None
    seconds: int = 0
    moved_on: bool = False


def position(state: Placed | None) -> Position | None:
    return (state.stage, state.status) if state is not None else None


def moves(before: Position | None, after: Placed) -> list[tuple[str, str, dt.datetime]]:
    """How the lead's stays changed between ``before`` and ``after``: (``enter``|``pass``|``leave``, stage, at).

    ``pass`` leaves a stage by moving on (advanced, or won from the won stage); ``leave`` by being closed.
    """
    out: list[tuple[str, str, dt.datetime]] = []
    was_in = before is not None and before[1] == LeadStatus.OPEN
    is_in = after.status == LeadStatus.OPEN
    if before is not None and was_in and (not is_in or after.stage != before[0]):
        if is_in:
            out.append((PASS, before[0], after.stage_entered_at))
        else:
            assert after.closed_at is not None
            out.append((PASS if after.status == LeadStatus.WON else LEAVE, before[0], after.closed_at))
    if is_in and (before is None or not was_in or after.stage != before[0]):
        out.append((ENTER, after.stage, after.stage_entered_at))
    return out


def moves_through(before: Position | None, steps: Sequence[Placed], after: Placed,
                  ) -> list[tuple[str, str, dt.datetime]]:
    """``moves`` from ``before`` through each of ``steps`` to ``after``: a change that moves a lead several times."""
    out: list[tuple[str, str, dt.datetime]] = []
    for step in (*steps, after):
        out += moves(before, step)
        before = position(step)
    return out


def first(state: Placed) -> Visit | None:
    """The stay a new lead begins: what ``follow`` makes of ``moves(None, state)``, without building them
    (an import writes this for every lead)."""
    if state.status != LeadStatus.OPEN:
        return None
    return Visit(state.stage, entered_at=state.stage_entered_at, stay_started_at=state.stage_entered_at)


def follow(visits: dict[str, Visit], changes: list[tuple[str, str, dt.datetime]]) -> set[str]:
    """Apply ``changes`` (from ``moves``) to a lead's visits; returns the stages whose row changed."""
    touched: set[str] = set()
    for kind, stage, at in changes:
        visit = visits.get(stage)
        if kind == ENTER:
            if visit is None:
                visits[stage] = Visit(stage, entered_at=at, stay_started_at=at)
            else:
                visit.stay_started_at = at
        else:
            if visit is None or visit.stay_started_at is None:
                continue  # nothing to end (a row lost to a bulk load); the rebuild puts it right
            visit.seconds += round((at - visit.stay_started_at).total_seconds())
            visit.stay_started_at = None
            visit.moved_on = visit.moved_on or kind == PASS
        touched.add(stage)
    return touched
