"""The projections every write keeps in its transaction: ``stage_counts``, ``lead_stages`` and ``ownerships``, and
through ``history`` the leads' past (``lead_spans``, ``lead_stays``); ``leads.red_at`` is a column of the lead,
computed by ``state.refresh_signal`` and written with the lead's row.

``keep_projections`` is called by the write path (``engine.store.writes.write_leads``) only. The rebuilds
(``recount``, ``rebuild_stages``) rewrite a projection wholesale from the leads or the event log, with the same
row-building code and the same statements as the write path."""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import visits
from engine.state import Event, LeadState, SpecLookup
from engine.store.driver import driver_execute, driver_executemany_tuples, driver_rows, rows_by_ids
from engine.store.history import History, StayLog, rebuild_rows, write_history
from engine.store.lead_rows import LeadChange, NewLeads, patcher
from engine.store.schema import events, lead_stages, leads, ownerships, stage_counts
from engine.vocab import EventKind, LeadStatus

CountKey = tuple[str, str, str, str]


def count_key(state: LeadState) -> CountKey | None:
    """The ``stage_counts`` row an open lead counts in: (process, stage, team, owner), '' for no team or owner."""
    if state.status != LeadStatus.OPEN:
        return None
    return (state.process, state.stage, state.team or "", state.owner or "")


def count_deltas(deltas: dict[CountKey, list[int]], before: LeadState | None,
                 after: LeadState) -> None:
    """Add a lead's move in ``stage_counts`` to ``deltas`` (``add_counts`` writes them, summed per key)."""
    old, new = (count_key(before) if before else None), count_key(after)
    old_value = (before.value_minor or 0) if before else 0
    new_value = after.value_minor or 0
    if old == new and old_value == new_value:
        return
    for key, sign, value in ((old, -1, old_value), (new, 1, new_value)):
        if key is not None:
            entry = deltas.setdefault(key, [0, 0])
            entry[0] += sign
            entry[1] += sign * value


def _add_count(conn: Connection, key: CountKey, leads_: int, value: int) -> None:
    process, stage, team, owner = key
    driver_execute(conn, _count_upsert(conn.dialect.name), {
        "process": process, "stage": stage, "team": team, "owner": owner, "d_leads": leads_, "d_value": value})


@functools.cache
def _count_upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(stage_counts).values(
        process=sa.bindparam("process"), stage=sa.bindparam("stage"), team=sa.bindparam("team"),
        owner=sa.bindparam("owner"), leads=sa.bindparam("d_leads"), value_minor=sa.bindparam("d_value"))
    return statement.on_conflict_do_update(
        index_elements=["process", "stage", "team", "owner"],
        set_={"leads": stage_counts.c.leads + sa.bindparam("d_leads"),
              "value_minor": stage_counts.c.value_minor + sa.bindparam("d_value")})


def add_counts(conn: Connection, deltas: dict[CountKey, list[int]]) -> None:
    """Apply the summed ``stage_counts`` changes of a bulk write, ``{(process, stage, team, owner): [n, value]}``."""
    for count_key, (n, value) in deltas.items():
        if n or value:
            _add_count(conn, count_key, n, value)


def recount(conn: Connection) -> None:
    """Rebuild ``stage_counts`` from the leads (after a bulk load that bypassed the engine): the open leads
    grouped in SQL, written by the write path's own ``add_counts``."""
    conn.execute(sa.delete(stage_counts))
    team = sa.func.coalesce(leads.c.team, "")
    owner = sa.func.coalesce(leads.c.owner, "")
    grouped = conn.execute(
        sa.select(leads.c.process, leads.c.stage, team, owner, sa.func.count(),
                  sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
        .where(leads.c.status == LeadStatus.OPEN).group_by(leads.c.process, leads.c.stage, team, owner))
    add_counts(conn, {(process, stage, t, o): [int(n), int(value)] for process, stage, t, o, n, value in grouped})


# -- the stages each lead reached (engine.visits) ------------------------------------------------

#: The lead's own columns that ``lead_stages`` repeats on each of its rows.
_STAGE_LEAD_KEYS = ("team", "owner", "status", "closed_at")
_stage_lead_values = operator.attrgetter(*_STAGE_LEAD_KEYS)
_VISIT_NAMES = ("lead_id", "stage", "process", "created_at", *_STAGE_LEAD_KEYS, "entered_at", "stay_started_at",
                "seconds", "moved_on")


def _visit_values(state: LeadState, visit: visits.Visit) -> tuple[Any, ...]:
    return (state.id, visit.stage, state.process, state.created_at, *_stage_lead_values(state), visit.entered_at,
            visit.stay_started_at, visit.seconds, visit.moved_on)


def visit_row(state: LeadState, visit: visits.Visit) -> dict[str, Any]:
    return dict(zip(_VISIT_NAMES, _visit_values(state, visit), strict=True))


_VISITS_OF_LEAD = sa.select(lead_stages.c.stage, lead_stages.c.entered_at, lead_stages.c.stay_started_at,
                            lead_stages.c.seconds, lead_stages.c.moved_on).where(
    lead_stages.c.lead_id == sa.bindparam("lead_id"))
_UPDATE_VISIT = sa.update(lead_stages).where(
    lead_stages.c.lead_id == sa.bindparam("k_lead_id"), lead_stages.c.stage == sa.bindparam("k_stage")).values(
    {name: sa.bindparam(f"v_{name}") for name in ("stay_started_at", "seconds", "moved_on")})
_UPDATE_VISIT_NAMES = ("k_lead_id", "k_stage", "v_stay_started_at", "v_seconds", "v_moved_on")
_INSERT_VISIT = sa.insert(lead_stages).values({name: sa.bindparam(name) for name in _VISIT_NAMES})


@functools.lru_cache(maxsize=16)
def _visits_of_leads(n: int) -> sa.Select[Any]:
    return sa.select(lead_stages.c.lead_id, *_VISITS_OF_LEAD.selected_columns).where(
        lead_stages.c.lead_id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


def _read_visits(conn: Connection, lead_ids: list[int]) -> dict[int, dict[str, visits.Visit]]:
    """The stages each lead reached (one row per stage, a short range of the primary key per lead)."""
    if len(lead_ids) == 1:
        rows = driver_rows(conn, _VISITS_OF_LEAD, {"lead_id": lead_ids[0]})
        for row in rows:
            row["lead_id"] = lead_ids[0]
    else:
        rows = rows_by_ids(conn, _visits_of_leads, lead_ids)
    out: dict[int, dict[str, visits.Visit]] = {}
    for r in rows:
        out.setdefault(r["lead_id"], {})[r["stage"]] = visits.Visit(
            r["stage"], r["entered_at"], r["stay_started_at"], int(r["seconds"]), bool(r["moved_on"]))
    return out


@functools.lru_cache(maxsize=64)
def _update_stage_leads_statement(columns: tuple[str, ...]) -> sa.Update:
    return sa.update(lead_stages).where(lead_stages.c.lead_id == sa.bindparam("k_lead_id")).values(
        {name: sa.bindparam(f"v_{name}") for name in columns})


def follow_stages(conn: Connection, changes: Sequence[tuple[LeadState | None, LeadState, Sequence[Any]]],
                  ) -> list[StayLog]:
    """Keep ``lead_stages`` in step with a write of leads, each as (before, after, steps); before is None for a
    new lead; ``steps`` where the lead stood in between, when the change moves it more than once
    (``LeadChange.steps``). Rows changed alike are written by one statement. Returns the stays the moves began
    and ended (``lead_stays``, written by ``history.write_history``)."""
    updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    moved: list[tuple[LeadState, list[tuple[str, str, dt.datetime]]]] = []
    new_rows: list[tuple[Any, ...]] = []
    logs: list[StayLog] = []
    for before, after, steps in changes:
        assert after.id is not None
        if before is None and steps:  # a new lead with a history: every stay it made
            stays: dict[str, visits.Visit] = {}
            moves = visits.moves_through(None, steps, after)
            visits.follow(stays, moves)
            new_rows.extend(_visit_values(after, v) for v in stays.values())
            logs.append(StayLog(after.id))
            logs[-1].follow(moves)
            continue
        if before is None:
            visit = visits.first(after)
            if visit is not None:
                new_rows.append(_visit_values(after, visit))
                logs.append(StayLog(after.id))
                logs[-1].follow([(visits.ENTER, visit.stage, visit.entered_at)])
            continue
        old, new = _stage_lead_values(before), _stage_lead_values(after)
        if old != new:
            changed = [(name, value) for name, was, value in zip(_STAGE_LEAD_KEYS, old, new, strict=True)
                       if was != value]
            updates.setdefault(tuple(name for name, _ in changed), []).append(
                (after.id, *(value for _, value in changed)))
        if before.stage == after.stage and before.status == after.status and not steps:
            continue  # no stay began or ended (visits.moves would find none)
        moves = visits.moves_through(visits.position(before), steps, after)
        if moves:
            moved.append((after, moves))
    for columns, rows in updates.items():
        driver_executemany_tuples(conn, _update_stage_leads_statement(columns),
                                  ("k_lead_id", *(f"v_{name}" for name in columns)), rows)
    changed_rows: list[tuple[Any, ...]] = []
    current = _read_visits(conn, [after.id for after, _ in moved if after.id is not None]) if moved else {}
    for after, moves in moved:
        assert after.id is not None
        stays = current.get(after.id, {})
        existing = set(stays)
        logs.append(StayLog(after.id, {stage: v.stay_started_at for stage, v in stays.items()
                                       if v.stay_started_at is not None}))
        logs[-1].follow(moves)
        for stage in sorted(visits.follow(stays, moves)):
            visit = stays[stage]
            if stage in existing:
                changed_rows.append((after.id, stage, visit.stay_started_at, visit.seconds, visit.moved_on))
            else:
                new_rows.append(_visit_values(after, visit))
    driver_executemany_tuples(conn, _UPDATE_VISIT, _UPDATE_VISIT_NAMES, changed_rows)
    driver_executemany_tuples(conn, _INSERT_VISIT, _VISIT_NAMES, new_rows)
    return logs


def rebuild_stages(conn: Connection, specs: SpecLookup, *, batch: int = 2000) -> int:
    """Rebuild ``lead_stages`` and the leads' past (``lead_spans``, ``lead_stays``) from the event log (after an
    upgrade, or a bulk load that bypassed the engine).

    Returns the ``lead_stages`` rows written. Every lead's events are replayed through ``state.apply``, ``batch``
    leads at a time.
    """
    conn.execute(sa.delete(lead_stages))
    written = 0
    last = 0
    while True:
        ids = [r[0] for r in conn.execute(sa.select(leads.c.id).where(leads.c.id > last).order_by(leads.c.id)
                                          .limit(batch))]
        if not ids:
            return written
        last = ids[-1]
        logs = read_logs(conn, events.c.lead_id >= ids[0], events.c.lead_id <= last)
        rows: list[tuple[Any, ...]] = []
        histories: list[History] = []
        for lead_id, log in logs.items():
            history = History(log, specs, lead_id)
            history.state.id = lead_id
            histories.append(history)
            rows.extend(_visit_values(history.state, v) for v in history.stays.values())
        driver_executemany_tuples(conn, _INSERT_VISIT, _VISIT_NAMES, rows)
        rebuild_rows(conn, ids, histories)
        written += len(rows)


def read_logs(conn: Connection, *where: Any) -> dict[int, list[Event]]:
    """The event logs of the leads that ``where`` selects (conditions on ``events``), by lead, in order."""
    logs: dict[int, list[Event]] = {}
    for r in conn.execute(sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.actor,
                                    events.c.data_json, events.c.id)
                          .where(*where).order_by(events.c.lead_id, events.c.id)):
        logs.setdefault(r[0], []).append(Event(kind=r[1], at=r[2], actor=r[3], data=json.loads(r[4]),
                                               lead_id=r[0], id=r[5]))
    return logs

# -- who worked which client when --------------------------------------------------------------------

#: The events that give a lead an owner, and the key of their data that names them.
OWNERSHIP_EVENTS: dict[str, str] = {EventKind.CREATED: "owner", EventKind.ASSIGNED: "to", EventKind.ROTATED: "to"}
_OWNERSHIP_NAMES = ("client_id", "lead_id", "owner", "started_at", "how")
_INSERT_OWNERSHIP = sa.insert(ownerships).values({name: sa.bindparam(name) for name in _OWNERSHIP_NAMES})


def _ownership_values(lead_id: int, client_id: int, evs: Sequence[Event]) -> list[tuple[Any, ...]]:
    return [(client_id, lead_id, ev.data[key], ev.at, ev.kind)
            for ev in evs for key in [OWNERSHIP_EVENTS.get(ev.kind)] if key and ev.data.get(key)]


def ownership_rows(lead_id: int, client_id: int, evs: Sequence[Event]) -> list[dict[str, Any]]:
    return [dict(zip(_OWNERSHIP_NAMES, row, strict=True)) for row in _ownership_values(lead_id, client_id, evs)]


def _group_projections(group: NewLeads, deltas: dict[CountKey, list[int]], new_visits: list[tuple[Any, ...]],
                       ) -> list[tuple[Any, ...]]:
    """A group's ``stage_counts`` moves (into ``deltas``) and ``lead_stages`` rows (onto ``new_visits``), what
    ``count_deltas`` and ``follow_stages`` make of each lead; returns its ``ownerships`` rows."""
    template, attrs = group.template, group.attrs
    own = {name: k for k, name in enumerate(attrs)}
    ids = map(operator.itemgetter(0), group.values)
    clients = map(operator.itemgetter(own["client_id"]), group.values) if "client_id" in own else None
    owners = [row for lead_id, client_id, evs in zip(ids, clients or [template.client_id] * len(group.values),
                                                     group.events, strict=True)
              for row in _ownership_values(lead_id, client_id, evs)]
    key = count_key(template)
    if key is None:  # not open: no count, no stay (visits.first)
        return owners
    counted = patcher(("team", "owner", "value_minor"), (template.team, template.owner, template.value_minor), own)
    for team, owner, value in map(counted, group.values):
        entry = deltas.setdefault((key[0], key[1], team or "", owner or ""), [0, 0])
        entry[0] += 1
        entry[1] += value or 0
    visit = visits.first(template)
    assert visit is not None
    own["lead_id"] = own.pop("id")
    new_visits += map(patcher(_VISIT_NAMES, _visit_values(template, visit), own), group.values)
    return owners


# -- the write path's entry --------------------------------------------------------------------------

def keep_projections(conn: Connection, changes: Sequence[LeadChange], groups: Sequence[NewLeads] = ()) -> None:
    """Keep every projection in step with a write of leads (``write_leads`` only): the leads' moves in
    ``stage_counts``, their ``lead_stages`` rows, an ``ownerships`` row for each event that gives an owner, and
    their past (``history.write_history``: the spans and stays the changes begin and end). A group of new leads
    alike (``NewLeads``) has its template's rows, patched per lead."""
    deltas: dict[CountKey, list[int]] = {}
    owners: list[tuple[Any, ...]] = []
    for change in changes:
        count_deltas(deltas, change.before, change.after)
        if change.events:
            assert change.after.id is not None
            owners += _ownership_values(change.after.id, change.after.client_id, change.events)
    new_visits: list[tuple[Any, ...]] = []
    for group in groups:
        owners += _group_projections(group, deltas, new_visits)
    if len(groups) > 1 or (groups and changes):  # in order of the leads, as one list of changes would be
        owners.sort(key=operator.itemgetter(1))
    add_counts(conn, deltas)
    stays = follow_stages(conn, [(change.before, change.after, change.steps) for change in changes])
    driver_executemany_tuples(conn, _INSERT_VISIT, _VISIT_NAMES, new_visits)
    write_history(conn, changes, stays, groups)
    driver_executemany_tuples(conn, _INSERT_OWNERSHIP, _OWNERSHIP_NAMES, owners)
