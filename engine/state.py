"""A lead's mutable state and the one function that changes it: ``apply(state, event)``.

Every operation of the engine produces events and applies them with ``apply``;
the store persists the result. Rebuilding a lead from its event log runs the
same ``apply`` from nothing, so the log and the stored state cannot drift apart
without a test noticing (tests/test_rebuild.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine import calendar, rules
from engine.spec import ProcessSpec, StageSpec, TaskSpec
from engine.vocab import ActivityKind, CallOutcome, EventKind, LeadStatus, TaskStatus

#: Events that record what happened to the lead's automatic mail (engine/outbox.py); they change no state.
MAIL_EVENTS = frozenset({EventKind.MAIL_SENT, EventKind.MAIL_FAILED})
#: Events that record a decision about the lead, not work with the client: they do not make it "active".
NOT_ACTIVITY = frozenset({EventKind.MIGRATED, EventKind.REVIEW_CONFIRMED, EventKind.REVIEW_RETURNED,
                          EventKind.RECALLED, EventKind.EXTENDED, EventKind.CLIENT_MERGED,
                          EventKind.CLIENT_EDITED, EventKind.CLIENT_ERASED, *MAIL_EVENTS})

#: Lead attributes that ``field_set`` events may change besides the process's fields.
ATTRIBUTES = ("value", "product", "source")

#: Every lead column a ``rotated`` event sets, whatever the lead held before (and the current stage's tasks,
#: which start afresh). Only owner and team differ between leads of one process version, stage and task
#: applicability rotated at one instant; the rotation's set-based write (engine.recovery.write_rotation)
#: relies on it, checks it on each group's first lead, and tests/test_recovery.py proves it against ``apply``.
ROTATED_COLUMNS = ("owner", "team", "owner_since", "recalled_at", "extended_until", "extension_reason",
                   "rest_until", "last_activity_at", "stage_entered_at", "stage_due_at", "red_at", "next_contact_at")


class OwnedLead(Protocol):
    """What the rules read of a lead: a ``LeadState``, or a row of ``leads`` with these columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def team(self) -> str | None: ...


@dataclass
class TaskState:
    stage: str
    id: str
    state: str
    due_at: dt.datetime | None
    done_by: str | None = None
    done_at: dt.datetime | None = None
    note: str | None = None


@dataclass
class Event:
    kind: str
    at: dt.datetime
    actor: str
    data: dict[str, Any]
    lead_id: int | None = None
    id: int | None = None


@dataclass
class LeadState:
    id: int | None
    client_id: int
    process: str
    process_version: int
    stage: str
    status: str
    owner: str | None
    team: str | None
    source: str | None
    product: str | None
    value_minor: int | None
    fields: dict[str, Any]
    created_at: dt.datetime
    stage_entered_at: dt.datetime
    stage_due_at: dt.datetime | None
    last_activity_at: dt.datetime
    owner_since: dt.datetime
    closed_at: dt.datetime | None = None
    close_reason: str | None = None
    close_note: str | None = None
    closed_from_stage: str | None = None
    #: The lead's earliest open mandatory deadline: it is red after it, yellow within its warning window.
    red_at: dt.datetime | None = None
    #: The recovery loop: the owner's latest report, a manager's extension, a recall, a rotation's rest.
    last_report: str | None = None
    last_report_at: dt.datetime | None = None
    extended_until: dt.datetime | None = None
    extension_reason: str | None = None
    recalled_at: dt.datetime | None = None
    rest_until: dt.datetime | None = None
    #: The contact the owner booked with the client (``activity add --next-contact``): the light turns yellow on
    #: its day and red once it is missed (engine.board); cleared when the lead closes or is rotated.
    next_contact_at: dt.datetime | None = None
    #: Calls that did not reach the client since the last one that did (a closure reason may require N of them).
    unanswered_calls: int = 0
    #: the deal's id in the system it was migrated from (``created``'s ``external_id``), unique among leads
    external_id: str | None = None
    tasks: dict[tuple[str, str], TaskState] = field(default_factory=dict)
    row_version: int = 0

    def clone(self) -> LeadState:
        """An independent copy (the fields and tasks too), far cheaper than ``copy.deepcopy``."""
        new = object.__new__(LeadState)
        new.__dict__.update(self.__dict__)
        new.fields = dict(self.fields)
        new.tasks = {k: TaskState(t.stage, t.id, t.state, t.due_at, t.done_by, t.done_at, t.note)
                     for k, t in self.tasks.items()}
        return new

    def stage_tasks(self, stage: str | None = None) -> dict[str, str]:
        stage = stage or self.stage
        return {tid: t.state for (sid, tid), t in self.tasks.items() if sid == stage}

    def comparable(self) -> dict[str, Any]:
        """Everything the event log determines (not the database's row counter)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("row_version", "tasks")}
        out["tasks"] = {k: t.__dict__ for k, t in sorted(self.tasks.items())}
        return out


SpecLookup = Callable[[str, int], ProcessSpec]


def enter_stage(state: LeadState, stage: StageSpec, spec: ProcessSpec, at: dt.datetime,
                deadlines_from: dt.datetime | None = None) -> None:
    """Put the lead in ``stage`` with fresh tasks: open, or not applicable when their condition is false.

    Deadlines count from ``deadlines_from`` when given (the end of a rotation's rest period), else ``at``.
    """
    start = deadlines_from or at
    facts = rules.lead_facts(state)
    state.stage = stage.id
    state.stage_entered_at = at
    state.stage_due_at = calendar.due_at(start, stage.deadline_days, spec.calendar)
    for task in stage.all_tasks:
        state.tasks[(stage.id, task.id)] = TaskState(
            stage=stage.id,
            id=task.id,
            state=_fresh(task, facts, spec),
            due_at=task_due_at(start, task, stage, spec),
        )


def task_due_at(start: dt.datetime, task: TaskSpec, stage: StageSpec, spec: ProcessSpec) -> dt.datetime:
    """A task's deadline: its business hours (format 2) or business days, else its stage's, from ``start``."""
    if task.deadline_hours is not None:
        return calendar.add_business_hours(start, task.deadline_hours, spec.calendar, *spec.business_hours)
    return calendar.due_at(start, task.deadline_days or stage.deadline_days, spec.calendar)


def _fresh(task: TaskSpec, facts: dict[str, Any], spec: ProcessSpec) -> TaskStatus:
    """A task not done yet: open, or not applicable while its condition is false (``facts``: the lead's
    ``rules.lead_facts``)."""
    return TaskStatus.OPEN if rules.applies(task, facts, spec) else TaskStatus.NOT_APPLICABLE


def refresh_applicability(state: LeadState, spec: ProcessSpec) -> None:
    """After a change of a field or attribute (value, source, product, team), tasks of the current stage that are
    not done follow their conditions."""
    stage = spec.stage(state.stage)
    assert stage is not None
    facts = rules.lead_facts(state)
    for task in stage.all_tasks:
        current = state.tasks.get((stage.id, task.id))
        if current is None or current.state == TaskStatus.DONE:
            continue
        current.state = _fresh(task, facts, spec)


def apply(state: LeadState | None, event: Event, specs: SpecLookup) -> LeadState:
    """The state after ``event``. ``state`` is None only for the ``created`` event."""
    state = _change(state, event, specs)
    refresh_signal(state, specs(state.process, state.process_version))
    return state


def apply_all(state: LeadState | None, events: Iterable[Event], specs: SpecLookup) -> LeadState:
    """The state after ``events`` in order, as ``apply`` of each gives it, the light refreshed once at the end (it
    follows from the state alone, and no event reads it): a history import's run of ``task_done`` at a stage's
    exit."""
    for event in events:
        state = _change(state, event, specs)
    assert state is not None, "apply_all of no events"
    refresh_signal(state, specs(state.process, state.process_version))
    return state


def _change(state: LeadState | None, event: Event, specs: SpecLookup) -> LeadState:
    """``apply`` but the light."""
    d = event.data
    at = event.at
    if event.kind == EventKind.CREATED:
        spec = specs(d["process"], d["process_version"])
        new = LeadState(
            id=event.lead_id,
            client_id=d["client_id"],
            process=d["process"],
            process_version=d["process_version"],
            stage=spec.first_stage.id,
            status=LeadStatus.OPEN,
            owner=d.get("owner"),
            team=d.get("team"),
            source=d.get("source"),
            product=d.get("product"),
            value_minor=d.get("value_minor"),
            fields=dict(d.get("fields") or {}),
            created_at=at,
            stage_entered_at=at,
            stage_due_at=None,
            last_activity_at=at,
            owner_since=at,
            external_id=d.get("external_id"),
            # a deal of a history import: stalled, the working period and revisits count from the import
            rest_until=dt.datetime.fromisoformat(d["rest_until"]) if d.get("rest_until") else None,
        )
        enter_stage(new, spec.first_stage, spec, at)
        return new

    assert state is not None, f"event {event.kind} before created"
    spec = specs(state.process, state.process_version)
    if event.kind not in NOT_ACTIVITY:
        state.last_activity_at = at
    if event.kind == EventKind.ASSIGNED:
        state.owner = d["to"]
        state.team = d.get("team")
        state.owner_since = at
        refresh_applicability(state, spec)  # a condition may test the team
    elif event.kind == EventKind.FIELD_SET:
        name = d["field"]
        if d.get("attribute"):
            setattr(state, "value_minor" if name == "value" else name, d["after"])
        elif d["after"] is None:
            state.fields.pop(name, None)
        else:
            state.fields[name] = d["after"]
        refresh_applicability(state, spec)
    elif event.kind == EventKind.TASK_DONE:
        task = state.tasks[(d["stage"], d["task"])]
        task.state = TaskStatus.DONE
        task.done_by = event.actor
        task.done_at = at
        task.note = d.get("note")
    elif event.kind == EventKind.ADVANCED:
        stage = spec.stage(d["to"])
        assert stage is not None
        enter_stage(state, stage, spec, at)
    elif event.kind == EventKind.WON:
        state.status = LeadStatus.WON
        state.next_contact_at = None
        state.closed_at = at
        state.closed_from_stage = state.stage
    elif event.kind == EventKind.CLOSED:
        state.status = LeadStatus.LOST
        state.next_contact_at = None
        state.closed_at = at
        state.close_reason = d["reason"]
        state.close_note = d.get("note")
        state.closed_from_stage = state.stage
    elif event.kind == EventKind.REOPENED:
        state.status = LeadStatus.OPEN
        state.closed_at = None
        state.close_reason = None
        state.close_note = None
        state.closed_from_stage = None
        if d.get("resume"):
            # Back into the stage it was closed in: work done stays done, the clock restarts.
            stage = spec.stage(state.stage)
            assert stage is not None
            state.stage_entered_at = at
            state.stage_due_at = calendar.due_at(at, stage.deadline_days, spec.calendar)
            for task_spec in stage.all_tasks:
                current = state.tasks[(stage.id, task_spec.id)]
                if current.state != TaskStatus.DONE:
                    current.due_at = task_due_at(at, task_spec, stage, spec)
        else:
            stage = spec.stage(d["to"])
            assert stage is not None
            enter_stage(state, stage, spec, at)
    elif event.kind == EventKind.ACTIVITY:
        if d["kind"] == ActivityKind.CALL and d.get("outcome") == CallOutcome.NO_ANSWER:
            state.unanswered_calls += 1
        elif d.get("outcome") == CallOutcome.REACHED or d["kind"] == ActivityKind.MEETING:
            state.unanswered_calls = 0
    elif event.kind == EventKind.NEXT_CONTACT_SET:
        state.next_contact_at = dt.datetime.fromisoformat(d["at"]) if d.get("at") else None
    elif event.kind == EventKind.REPORTED:
        state.last_report = d["text"]
        state.last_report_at = at
    elif event.kind == EventKind.EXTENDED:
        state.extended_until = dt.datetime.fromisoformat(d["until"])
        state.extension_reason = d["reason"]
    elif event.kind == EventKind.RECALLED:
        state.recalled_at = at
    elif event.kind == EventKind.ROTATED:
        # A colleague takes the client over for a working period; the client rests first, so the stage's
        # deadlines count from the end of the rest. Work done in the stage is the previous owner's: the
        # new owner starts the stage afresh (with the whole history visible).
        state.owner = d["to"]
        state.team = d.get("team")
        state.owner_since = at
        state.recalled_at = None
        state.extended_until = None
        state.extension_reason = None
        state.next_contact_at = None  # the previous owner's appointment
        state.rest_until = dt.datetime.fromisoformat(d["rest_until"]) if d.get("rest_until") else None
        stage = spec.stage(state.stage)
        assert stage is not None
        enter_stage(state, stage, spec, at, deadlines_from=state.rest_until)
    elif event.kind in (EventKind.REVIEW_CONFIRMED, EventKind.REVIEW_RETURNED, EventKind.CLIENT_EDITED,
                        EventKind.CLIENT_ERASED) or event.kind in MAIL_EVENTS:
        pass  # the director's decision is history; returning also reopens the lead (its own event)
    elif event.kind == EventKind.CLIENT_MERGED:
        state.client_id = d["to"]  # the client was merged into another (``client merge``): the lead is now its
    elif event.kind == EventKind.MIGRATED:
        target = specs(state.process, d["to_version"])
        state.process_version = d["to_version"]
        migrate_tasks(state, target)
    else:
        raise ValueError(f"unknown event kind {event.kind!r}")
    return state


def refresh_signal(state: LeadState, spec: ProcessSpec) -> None:
    """Store the lead's earliest open mandatory deadline, from which its light follows at any instant.

    Red after that deadline; yellow within the stage's warning window before it (engine.board); green
    otherwise. Optional tasks never colour a lead (they show as overdue in task lists). Closed leads
    have no light.
    """
    stage = spec.stage(state.stage)
    if state.status != LeadStatus.OPEN or stage is None:
        state.red_at = None
        return
    deadlines = [state.stage_due_at] if state.stage_due_at else []
    for tid in stage.mandatory_ids:  # looked up by key: a lead late in its process holds every stage's tasks
        task = state.tasks.get((stage.id, tid))
        if task is not None and task.state == TaskStatus.OPEN and task.due_at is not None:
            deadlines.append(task.due_at)
    state.red_at = min(deadlines) if deadlines else None


def migrate_tasks(state: LeadState, target: ProcessSpec) -> None:
    """Re-map the current stage's tasks onto the target version: done stays done, new tasks start open."""
    stage = target.stage(state.stage)
    assert stage is not None
    previous = {tid: t for (sid, tid), t in state.tasks.items() if sid == state.stage}
    for tid in list(previous):
        del state.tasks[(state.stage, tid)]
    # deadlines count from the stage's start, or from the end of a rotation's rest (as enter_stage does)
    start = max(state.stage_entered_at, state.rest_until) if state.rest_until else state.stage_entered_at
    for task in stage.all_tasks:
        old = previous.get(task.id)
        due = task_due_at(start, task, stage, target)
        if old is not None and old.state == TaskStatus.DONE:
            old.due_at = due
            state.tasks[(stage.id, task.id)] = old
        else:
            state.tasks[(stage.id, task.id)] = TaskState(
                stage=stage.id, id=task.id,
                state=_fresh(task, rules.lead_facts(state), target), due_at=due)
    state.stage_due_at = calendar.due_at(start, stage.deadline_days, target.calendar)


def rebuild(events: Iterable[Event], specs: SpecLookup) -> LeadState:
    """A lead's state from its complete event log."""
    state: LeadState | None = None
    for event in events:
        state = apply(state, event, specs)
    assert state is not None, "no events"
    return state
