"""A lead's rows: ``leads`` and ``lead_tasks`` read into a ``LeadState``, and the statements of the write path
(``engine.store.writes``) that write them back."""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import ConcurrentUpdateError
from engine.i18n import N_
from engine.state import Event, LeadState, TaskState
from engine.store.codec import dumps
from engine.store.driver import CHUNK, driver_executemany_tuples, driver_rows, rows_by_ids
from engine.store.schema import lead_tasks, leads

if TYPE_CHECKING:
    from engine.store.sqltypes import Mapping

#: The lead's columns, each the LeadState attribute of the same name (but ``fields_json``).
_COLUMN_ATTRS = tuple(c.key for c in leads.c if c.key not in ("id", "row_version"))
_LEAD_KEYS = [c.key for c in leads.c if c.key not in ("id", "row_version", "fields_json")]


def lead_columns(state: LeadState) -> dict[str, Any]:
    return {name: getattr(state, name) if name != "fields_json" else dumps(state.fields) for name in _COLUMN_ATTRS}


def changed_columns(before: LeadState, after: LeadState) -> dict[str, Any]:
    """The ``lead_columns`` whose values differ between two states of a lead, with ``after``'s values (in
    ``lead_columns``' order), without building both rows: the fields are serialised only when they changed."""
    out: dict[str, Any] = {}
    for name in _COLUMN_ATTRS:
        if name == "fields_json":
            old, new = before.fields, after.fields
            # equal dicts may still serialise apart (1 == True == 1.0): compare the types too
            if old != new or any(type(v) is not type(new[k]) for k, v in old.items()):
                out[name] = dumps(new)
        elif (value := getattr(after, name)) != getattr(before, name):
            out[name] = value
    return out


def _state_of(row: Mapping) -> LeadState:
    return LeadState(
        id=row["id"],
        row_version=row["row_version"],
        fields=json.loads(row["fields_json"]),
        **{k: row[k] for k in _LEAD_KEYS},
    )


def _task_of(row: Mapping) -> TaskState:
    return TaskState(stage=row["stage"], id=row["task_id"], state=row["state"], due_at=row["due_at"],
                     done_by=row["done_by"], done_at=row["done_at"], note=row["note"])


def task_row(lead_id: int, t: TaskState) -> dict[str, Any]:
    return {"lead_id": lead_id, "stage": t.stage, "task_id": t.id, "state": t.state, "due_at": t.due_at,
            "done_by": t.done_by, "done_at": t.done_at, "note": t.note}


class LeadChange(NamedTuple):
    """One lead's change as the write path (``engine.store.writes.write_leads``) writes it."""

    before: LeadState | None  # as read (None: a new lead, whose id is reserved: ``writes.reserve_lead_ids``)
    after: LeadState
    events: Sequence[Event]  # the events that made ``after`` from ``before``, appended to the log
    #: the columns set whatever they held (a rotation, which does not read them); None: those that differ
    columns: tuple[str, ...] | None = None
    #: a stage whose stored task rows are replaced by ``after``'s without being read (``before`` need not hold them)
    restarted_stage: str | None = None
    #: where the lead stood after each event that moved it, when ``events`` move it more than once (a history
    #: import's deal, ``visits.Step``): ``lead_stages`` follows every stay, not only the first and the last
    steps: Sequence[Any] = ()
    #: the lead's ``history.span_values`` after each event before the last, with the event's instant, when
    #: ``events`` span several instants (a history import's deal): ``lead_spans`` keeps each, not only the last
    spans: Sequence[tuple[Any, ...]] = ()


class NewLeads(NamedTuple):
    """New leads alike, written by the write path as one group (an import's leads of one first-stage outcome):
    each is ``template`` but for the attributes named in ``attrs`` (``"id"`` first; only ``GROUP_ATTRS``), whose
    values it gives in ``values``, with its events in ``events``. Their rows are built once from the template and
    patched per lead, with no state per lead."""

    template: LeadState
    attrs: tuple[str, ...]
    values: Sequence[tuple[Any, ...]]
    events: Sequence[Sequence[Event]]


#: The attributes a lead of a ``NewLeads`` group may have of its own: none of them moves its stage or deadlines.
GROUP_ATTRS = frozenset({"id", "client_id", "owner", "team", "source", "product", "value_minor", "fields"})


def patcher(names: Sequence[str], template: tuple[Any, ...], own: dict[str, int]) -> Callable[[tuple[Any, ...]], Any]:
    """A row of ``names`` per lead of a group: ``pick(lead_values + template)`` is ``template`` (a row of
    ``names``) with the values whose index in the lead's tuple ``own`` gives by name, in one C call."""
    width = max(own.values(), default=-1) + 1
    pick = operator.itemgetter(*(own[name] if name in own else width + i for i, name in enumerate(names)))
    return lambda values: pick(values + template)


# -- reading -------------------------------------------------------------------------------------

# Statements run by every operation are built once, with bound parameters: building and hashing a new
# statement per call cost more than the database's own work for a single lead.
_LEAD_BY_ID = sa.select(leads).where(leads.c.id == sa.bindparam("lead_id"))
_TASKS_OF_LEAD = sa.select(lead_tasks).where(lead_tasks.c.lead_id == sa.bindparam("lead_id"))


@functools.lru_cache(maxsize=16)
def _leads_by_ids(n: int) -> sa.Select[Any]:
    return sa.select(leads).where(leads.c.id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


@functools.lru_cache(maxsize=16)
def _tasks_of_leads(n: int) -> sa.Select[Any]:
    return sa.select(lead_tasks).where(lead_tasks.c.lead_id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


def read_lead(conn: Connection, lead_id: int) -> LeadState | None:
    rows = driver_rows(conn, _LEAD_BY_ID, {"lead_id": lead_id})
    if not rows:
        return None
    state = _state_of(rows[0])
    for t in driver_rows(conn, _TASKS_OF_LEAD, {"lead_id": lead_id}):
        state.tasks[(t["stage"], t["task_id"])] = _task_of(t)
    return state


def read_leads(conn: Connection, lead_ids: list[int]) -> dict[int, LeadState]:
    """The stored states of many leads by id (those that exist), a few queries per 500 leads."""
    states: dict[int, LeadState] = {}
    lead_ids = [i for i in lead_ids if 0 < i < 2**63]  # no other id is stored (nor may be bound as BIGINT)
    for start in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[start : start + CHUNK]
        for row in rows_by_ids(conn, _leads_by_ids, chunk):
            states[row["id"]] = _state_of(row)
        for t in rows_by_ids(conn, _tasks_of_leads, chunk):
            states[t["lead_id"]].tasks[(t["stage"], t["task_id"])] = _task_of(t)
    return states


# -- writing (called by engine.store.writes.write_leads only) --------------------------------------

# The statements take their rows as tuples (``driver_executemany_tuples``), in the order of these names.
_PLAIN_ATTRS = tuple(name for name in _COLUMN_ATTRS if name != "fields_json")
_plain_values = operator.attrgetter(*_PLAIN_ATTRS)
_LEAD_NAMES = ("id", "row_version", *_PLAIN_ATTRS, "fields_json")
_INSERT_LEAD = sa.insert(leads).values({name: sa.bindparam(name) for name in _LEAD_NAMES})
_TASK_VALUES = ("state", "due_at", "done_by", "done_at", "note")
_task_values = operator.attrgetter("stage", "id", *_TASK_VALUES)  # a task row less its lead
_TASK_NAMES = ("lead_id", "stage", "task_id", *_TASK_VALUES)
_INSERT_TASK = sa.insert(lead_tasks).values({name: sa.bindparam(name) for name in _TASK_NAMES})
_TASK_KEY = (lead_tasks.c.lead_id == sa.bindparam("k_lead_id"), lead_tasks.c.stage == sa.bindparam("k_stage"),
             lead_tasks.c.task_id == sa.bindparam("k_task_id"))
_TASK_KEY_NAMES = ("k_lead_id", "k_stage", "k_task_id")
_UPDATE_TASK = sa.update(lead_tasks).where(*_TASK_KEY).values(
    {name: sa.bindparam(f"v_{name}") for name in _TASK_VALUES})
_UPDATE_TASK_NAMES = (*_TASK_KEY_NAMES, *(f"v_{name}" for name in _TASK_VALUES))
_DELETE_TASK = sa.delete(lead_tasks).where(*_TASK_KEY)
_DELETE_STAGE_TASKS = sa.delete(lead_tasks).where(lead_tasks.c.lead_id == sa.bindparam("k_lead_id"),
                                                  lead_tasks.c.stage == sa.bindparam("k_stage"))


class _LeadUpdate(NamedTuple):
    statement: sa.Update
    names: tuple[str, ...]
    values: Callable[[LeadState], tuple[Any, ...]] | None  # the columns' values of a state (None: not by attribute)


@functools.lru_cache(maxsize=1024)
def _lead_update(columns: tuple[str, ...]) -> _LeadUpdate:
    """UPDATE of the given lead columns (and the row version) under the optimistic lock."""
    statement = sa.update(leads).where(
        leads.c.id == sa.bindparam("b_id"), leads.c.row_version == sa.bindparam("b_version")).values(
        {"row_version": sa.bindparam("new_version"), **{name: sa.bindparam(f"v_{name}") for name in columns}})
    getter = None
    if "fields_json" not in columns and columns:
        pick = operator.attrgetter(*columns)
        getter = pick if len(columns) > 1 else (lambda state: (pick(state),))
    return _LeadUpdate(statement, ("b_id", "b_version", "new_version", *(f"v_{name}" for name in columns)), getter)


def write_lead_rows(conn: Connection, writes: Sequence[LeadChange], groups: Sequence[NewLeads] = ()) -> None:
    """INSERT the new leads (a group's rows patched copies of its template's), UPDATE the others under the
    optimistic lock: leads whose changed columns are the same ones share one statement (each with its own
    values). If any lead changed since ``before`` was read, ``ConcurrentUpdateError`` and the caller's
    transaction rolls back, so nothing is written."""
    inserts: list[tuple[Any, ...]] = []
    updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for w in writes:
        before, after = w.before, w.after
        assert after.id is not None
        if before is None:
            after.row_version = 1
            inserts.append((after.id, 1, *_plain_values(after), dumps(after.fields)))
            continue
        version = before.row_version
        if w.columns is None:
            changed = changed_columns(before, after)
            updates.setdefault(tuple(changed), []).append((after.id, version, version + 1, *changed.values()))
        else:
            values = _lead_update(w.columns).values
            row = values(after) if values is not None else tuple(lead_columns(after)[n] for n in w.columns)
            updates.setdefault(w.columns, []).append((after.id, version, version + 1, *row))
    expected = len(writes) - len(inserts)
    written = 0
    for columns, rows in updates.items():
        update = _lead_update(columns)
        written += driver_executemany_tuples(conn, update.statement, update.names, rows)
    if written != expected:
        if expected == 1:
            lead = next(w.after.id for w in writes if w.before is not None)
            raise ConcurrentUpdateError(N_("lead {lead} changed since you read it; nothing was written, try again"),
                                        lead=lead)
        raise ConcurrentUpdateError(N_("{changed} of {expected} leads changed since they were read; "
                                       "nothing was written, try again"), changed=expected - written, expected=expected)
    for w in writes:
        if w.before is not None:
            w.after.row_version = w.before.row_version + 1
    for group in groups:
        inserts += _group_lead_rows(group)
    driver_executemany_tuples(conn, _INSERT_LEAD, _LEAD_NAMES, inserts)


def _group_lead_rows(group: NewLeads) -> list[tuple[Any, ...]]:
    template, attrs = group.template, group.attrs
    assert attrs[0] == "id" and GROUP_ATTRS.issuperset(attrs), attrs
    own = {name: k for k, name in enumerate(attrs)}
    row = (None, 1, *_plain_values(template), dumps(template.fields))
    if "fields" not in own:
        return list(map(patcher(_LEAD_NAMES, row, own), group.values))
    at = own["fields"]
    own["fields_json"] = len(attrs)
    patch = patcher(_LEAD_NAMES, row, own)
    return [patch((*values, dumps(values[at]))) for values in group.values]


def write_task_rows(conn: Connection, changes: Sequence[LeadChange], groups: Sequence[NewLeads] = ()) -> None:
    """The task rows of leads written: rows ``after`` has and
    ``before`` has not are inserted, changed ones updated, gone ones deleted. A restarted stage's stored rows
    are not compared (``before`` need not hold them): they are deleted and ``after``'s rows of it inserted.

    Task rows are the current-state projection (the history is in events): a stage's rows are overwritten
    when the lead enters it again, and a migration drops the open tasks its target version no longer has."""
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    deletes: list[tuple[Any, ...]] = []
    restarts: list[tuple[Any, ...]] = []
    # leads changed alike (a rotated group, an import's leads of one first-stage outcome) share one dict of tasks
    shared: dict[int, list[tuple[Any, ...]]] = {}
    for before, after, _, _, restarted, *_ in changes:
        lead_id = after.id
        assert lead_id is not None
        old = before.tasks if before is not None else {}
        if restarted is not None:
            restarts.append((lead_id, restarted))
        if not old:  # every task of ``after`` is new
            values = shared.get(id(after.tasks))
            if values is None:
                values = shared[id(after.tasks)] = [_task_values(task) for task in after.tasks.values()]
            inserts += [(lead_id, *v) for v in values]
            continue
        for key, task in after.tasks.items():
            if key[0] == restarted or key not in old:
                inserts.append((lead_id, *_task_values(task)))
            elif old[key] != task:  # the dataclasses compare every column of the row
                updates.append((lead_id, *_task_values(task)))
        if old:
            deletes.extend((lead_id, *key) for key in old.keys() - after.tasks.keys() if key[0] != restarted)
    for group in groups:  # a group's leads share the template's tasks
        values = [_task_values(task) for task in group.template.tasks.values()]
        inserts += [(own[0], *v) for own in group.values for v in values]
    driver_executemany_tuples(conn, _DELETE_STAGE_TASKS, ("k_lead_id", "k_stage"), restarts)
    driver_executemany_tuples(conn, _DELETE_TASK, _TASK_KEY_NAMES, deletes)
    driver_executemany_tuples(conn, _UPDATE_TASK, _UPDATE_TASK_NAMES, updates)
    driver_executemany_tuples(conn, _INSERT_TASK, _TASK_NAMES, inserts)
