"""A lead's rows: ``leads`` and ``lead_tasks`` read into a ``LeadState`` and written back."""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import ConcurrentUpdateError
from engine.state import Event, LeadState, TaskState
from engine.store.codec import dumps
from engine.store.driver import (
    CHUNK,
    driver_executemany,
    driver_rows,
    driver_value,
    insert_rows,
    new_id,
    rows_by_ids,
    run_many,
)
from engine.store.event_log import insert_events_bulk
from engine.store.projections import add_counts, bump_counts, count_deltas, follow_stages
from engine.store.schema import lead_tasks, leads

# -- leads -----------------------------------------------------------------------------------

#: The lead's columns, each the LeadState attribute of the same name (but ``fields_json``).
_COLUMN_ATTRS = tuple(c.key for c in leads.c if c.key not in ("id", "row_version"))


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


def _state_of(row: Any) -> LeadState:
    return LeadState(
        id=row["id"],
        row_version=row["row_version"],
        fields=json.loads(row["fields_json"]),
        **{k: row[k] for k in _LEAD_KEYS},
    )


# Statements run by every operation are built once, with bound parameters: building and hashing a new
# statement per call cost more than the database's own work for a single lead.
_LEAD_BY_ID = sa.select(leads).where(leads.c.id == sa.bindparam("lead_id"))
_TASKS_OF_LEAD = sa.select(lead_tasks).where(lead_tasks.c.lead_id == sa.bindparam("lead_id"))
_TASK_KEY = (lead_tasks.c.lead_id == sa.bindparam("k_lead_id"), lead_tasks.c.stage == sa.bindparam("k_stage"),
             lead_tasks.c.task_id == sa.bindparam("k_task_id"))
_UPDATE_TASK = sa.update(lead_tasks).where(*_TASK_KEY).values(
    {name: sa.bindparam(f"v_{name}") for name in ("state", "due_at", "done_by", "done_at", "note")})
_DELETE_TASK = sa.delete(lead_tasks).where(*_TASK_KEY)
_INSERT_TASK = sa.insert(lead_tasks).values({c.key: sa.bindparam(c.key) for c in lead_tasks.c})


def read_lead(conn: Connection, lead_id: int) -> LeadState | None:
    rows = driver_rows(conn, _LEAD_BY_ID, {"lead_id": lead_id})
    if not rows:
        return None
    state = _state_of(rows[0])
    for t in driver_rows(conn, _TASKS_OF_LEAD, {"lead_id": lead_id}):
        state.tasks[(t["stage"], t["task_id"])] = TaskState(
            stage=t["stage"], id=t["task_id"], state=t["state"], due_at=t["due_at"],
            done_by=t["done_by"], done_at=t["done_at"], note=t["note"],
        )
    return state


_LEAD_KEYS = [c.key for c in leads.c if c.key not in ("id", "row_version", "fields_json")]


def task_row(lead_id: int, t: TaskState) -> dict[str, Any]:
    return {"lead_id": lead_id, "stage": t.stage, "task_id": t.id, "state": t.state, "due_at": t.due_at,
            "done_by": t.done_by, "done_at": t.done_at, "note": t.note}



def insert_lead(conn: Connection, state: LeadState) -> int:
    lead_id = new_id(conn.execute(sa.insert(leads).values(row_version=1, **lead_columns(state))))
    bump_counts(conn, None, state)
    state.id = lead_id
    state.row_version = 1
    follow_stages(conn, [(None, state)])
    if state.tasks:
        conn.execute(sa.insert(lead_tasks), [task_row(lead_id, t) for t in state.tasks.values()])
    return lead_id


def update_lead(conn: Connection, before: LeadState, after: LeadState) -> None:
    """Write ``after`` if nobody changed the row since ``before`` was read (optimistic locking)."""
    update_leads(conn, [(before, after)])


def update_leads(conn: Connection, changes: list[tuple[LeadState, LeadState]]) -> None:
    """Write leads' new states, each ``(before, after)`` of a different lead, in a few statements: leads whose
    changed columns are the same ones share one UPDATE (each with its own values), and so do their task and
    stage rows. Every lead under the optimistic lock: if any changed since ``before`` was read,
    ``ConcurrentUpdateError`` and the caller's transaction rolls back, so nothing is written.
    """
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for before, after in changes:
        assert after.id is not None
        changed = changed_columns(before, after)
        updates.setdefault(tuple(changed), []).append({
            "b_id": after.id, "b_version": before.row_version, "new_version": before.row_version + 1,
            **{f"v_{name}": value for name, value in changed.items()}})
    written = sum(driver_executemany(conn, _update_lead_statement(columns), rows) for columns, rows in updates.items())
    if written != len(changes):
        if len(changes) == 1:
            raise ConcurrentUpdateError(f"lead {changes[0][1].id} changed since you read it; nothing was written, "
                                        "try again")
        raise ConcurrentUpdateError(f"{len(changes) - written} of {len(changes)} leads changed since they were "
                                    "read; nothing was written, try again")
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    inserts: list[dict[str, Any]] = []
    task_updates: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    for before, after in changes:
        assert after.id is not None
        after.row_version = before.row_version + 1
        count_deltas(deltas, before, after)
        old = before.tasks
        for key, task in after.tasks.items():
            if key not in old:
                inserts.append(task_row(after.id, task))
            elif old[key] != task:  # the dataclasses compare every column of the row
                task_updates.append({"k_lead_id": after.id, "k_stage": key[0], "k_task_id": key[1],
                                     **{f"v_{name}": getattr(task, name) for name in _TASK_VALUES}})
        # Task rows are the current-state projection (the history is in events): a stage's rows are overwritten
        # when the lead enters it again, and a migration drops the open tasks its target version no longer has.
        deletes.extend({"k_lead_id": after.id, "k_stage": key[0], "k_task_id": key[1]}
                       for key in old.keys() - after.tasks.keys())
    add_counts(conn, deltas)
    follow_stages(conn, list(changes))
    driver_executemany(conn, _INSERT_TASK, inserts)
    driver_executemany(conn, _UPDATE_TASK, task_updates)
    driver_executemany(conn, _DELETE_TASK, deletes)



@functools.lru_cache(maxsize=16)
def _leads_by_ids(n: int) -> sa.Select[Any]:
    return sa.select(leads).where(leads.c.id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


@functools.lru_cache(maxsize=16)
def _tasks_of_leads(n: int) -> sa.Select[Any]:
    return sa.select(lead_tasks).where(lead_tasks.c.lead_id.in_([sa.bindparam(f"id{k}") for k in range(n)]))

def read_leads(conn: Connection, lead_ids: list[int]) -> dict[int, LeadState]:
    """The stored states of many leads by id (those that exist), a few queries per 500 leads."""
    states: dict[int, LeadState] = {}
    lead_ids = [i for i in lead_ids if 0 < i < 2**63]  # no other id is stored (nor may be bound as BIGINT)
    for start in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[start : start + CHUNK]
        for row in rows_by_ids(conn, _leads_by_ids, chunk):
            states[row["id"]] = _state_of(row)
        for t in rows_by_ids(conn, _tasks_of_leads, chunk):
            states[t["lead_id"]].tasks[(t["stage"], t["task_id"])] = TaskState(
                stage=t["stage"], id=t["task_id"], state=t["state"], due_at=t["due_at"],
                done_by=t["done_by"], done_at=t["done_at"], note=t["note"])
    return states


_TASK_VALUES = ("state", "due_at", "done_by", "done_at", "note")


@functools.lru_cache(maxsize=1024)
def _update_lead_statement(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE of the given lead columns (and the row version) under the optimistic lock."""
    return sa.update(leads).where(leads.c.id == sa.bindparam("b_id"), leads.c.row_version == sa.bindparam("b_version")
                                  ).values({"row_version": sa.bindparam("new_version"),
                                            **{name: sa.bindparam(f"v_{name}") for name in columns}})


class AlikeLead(NamedTuple):
    """One lead of a change written by ``write_alike``: who held it before and who holds it after."""

    id: int
    client_id: int
    row_version: int
    process: str
    value_minor: int | None
    owner_before: str | None
    team_before: str | None
    owner: str | None
    team: str | None


def write_alike(conn: Connection, stage: str, columns: dict[str, Any], tasks: list[TaskState],
                changed: list[AlikeLead], evs: list[tuple[AlikeLead, Event]]) -> None:
    """Many open leads of one stage changed alike, in a few statements (a rotation of 100,000 leads).

    Each lead gets its own owner and team; every other column in ``columns`` takes the same value, and the
    stage's task rows are replaced by ``tasks``. The same optimistic lock as ``update_lead``: if any lead
    changed since it was read, nothing is written (the caller's transaction rolls back).
    """
    if not changed:
        return
    names = list(columns)
    constants = [driver_value(conn, leads.c[name], columns[name]) for name in names]
    sets = ", ".join(f"{name} = {{}}" for name in ["owner", "team", *names])
    written = run_many(
        conn, f"UPDATE leads SET {sets}, row_version = row_version + 1 WHERE id = {{}} AND row_version = {{}}",
        [leads.c.owner, leads.c.team, *([None] * len(names)), None, None],
        [(lead.owner, lead.team, *constants, lead.id, lead.row_version) for lead in changed])
    if written != len(changed):
        raise ConcurrentUpdateError(f"{len(changed) - written} of {len(changed)} leads changed since they "
                                    "were read; nothing was written, try again")
    run_many(conn, "DELETE FROM lead_tasks WHERE lead_id = {} AND stage = {}", [None, None],
                 [(lead.id, stage) for lead in changed])
    t = lead_tasks.c
    task_values = [tuple(driver_value(conn, column, value) for column, value in zip(
        (t.stage, t.task_id, t.state, t.due_at, t.done_by, t.done_at, t.note),
        (task.stage, task.id, task.state, task.due_at, task.done_by, task.done_at, task.note), strict=True))
        for task in tasks]
    insert_rows(conn, lead_tasks, ["lead_id", "stage", "task_id", "state", "due_at", "done_by", "done_at", "note"],
                [(lead.id, *values) for lead in changed for values in task_values])
    # lead_stages repeats the owner and team on each stage row of the lead (the stage and status stay as they were)
    run_many(conn, "UPDATE lead_stages SET owner = {}, team = {} WHERE lead_id = {}", [None, None, None],
                 [(lead.owner, lead.team, lead.id) for lead in changed
                  if (lead.owner, lead.team) != (lead.owner_before, lead.team_before)])
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    for lead in changed:
        for key, sign in (((lead.process, stage, lead.team_before or "", lead.owner_before or ""), -1),
                          ((lead.process, stage, lead.team or "", lead.owner or ""), 1)):
            entry = deltas.setdefault(key, [0, 0])
            entry[0] += sign
            entry[1] += sign * (lead.value_minor or 0)
    add_counts(conn, deltas)
    insert_events_bulk(conn, evs)


