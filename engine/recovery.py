"""The recovery loop: stalled leads, rotation to a colleague, and the monthly summary of lost leads.

Everything here is a query or a pure plan; ``engine.api`` runs it inside one
transaction and writes through the same events and ``apply`` as every other
change.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import notices, results, rules, store
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.state import ROTATED_COLUMNS, Event, LeadState, SpecLookup, apply
from engine.store import clients, closures, leads, ownerships, stage_counts, users
from engine.vocab import EventKind, LeadStatus, Role

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition, Expr, Record

#: How many of a client's latest owners a rotation never hands the client back to.
DEFAULT_OWNER_MEMORY = 3


def stalled_conditions(spec: ProcessSpec, cycle: float, now: dt.datetime) -> Condition:
    """SQL: an open lead of ``spec`` that is recalled, held beyond the cycle, or idle too long, and not extended.

    A rotation's rest period belongs to nobody: the working period and the idle time both count from the
    end of the rest, when the new owner may first contact the client. ``is_stalled`` is the same rule in
    Python; tests/test_policy.py proves on random leads that the two agree.
    """
    def since(column: sa.Column[dt.datetime], days: float) -> Condition:
        limit = now - dt.timedelta(days=days)
        return sa.and_(column < limit, sa.or_(leads.c.rest_until.is_(None), leads.c.rest_until < limit))

    why = [leads.c.recalled_at.is_not(None), since(leads.c.owner_since, cycle)]
    if spec.stalled_after_days:
        why.append(since(leads.c.last_activity_at, spec.stalled_after_days))
    return sa.and_(
        leads.c.process == spec.id, leads.c.status == LeadStatus.OPEN, leads.c.owner.is_not(None),
        sa.or_(leads.c.extended_until.is_(None), leads.c.extended_until < now),
        sa.or_(*why),
    )


def is_stalled(lead: Record | LeadState, spec: ProcessSpec, cycle: float, now: dt.datetime) -> bool:
    """Python: whether ``stalled_conditions`` selects ``lead`` (a row of ``leads``, or a ``LeadState``)."""
    return (lead.process == spec.id and lead.status == LeadStatus.OPEN and lead.owner is not None
            and (lead.extended_until is None or lead.extended_until < now)
            and _why_stalled(lead, spec, cycle, now) is not None)


def stalled_reason(row: Record | LeadState, spec: ProcessSpec, cycle: float, now: dt.datetime) -> str:
    """Why ``stalled_conditions`` selected ``row``: recalled, held beyond the cycle, or idle."""
    why = _why_stalled(row, spec, cycle, now)
    assert why is not None, f"lead {row.id} is not stalled"
    return why


def _why_stalled(row: Record | LeadState, spec: ProcessSpec, cycle: float, now: dt.datetime) -> str | None:
    if row.recalled_at is not None:
        return "recalled by a manager"
    rest = row.rest_until

    def since(at: dt.datetime, days: float) -> bool:  # the comparison of the SQL rule, not whole days
        limit = now - dt.timedelta(days=days)
        return at < limit and (rest is None or rest < limit)

    if since(row.owner_since, cycle):
        held = now - max(row.owner_since, rest or dt.datetime.min)
        return f"held {held.days} days, longer than the {cycle:.0f}-day sales cycle"
    if spec.stalled_after_days and since(row.last_activity_at, spec.stalled_after_days):
        return f"no activity for {(now - max(row.last_activity_at, rest or dt.datetime.min)).days} days"
    return None


# -- rotation ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Move:
    lead_id: int
    client_id: int
    name: str
    value_minor: int | None
    from_owner: str
    to_owner: str
    team: str | None


@dataclass(frozen=True)
class Unplaced:
    lead_id: int
    from_owner: str
    why: str


def plan_rotation(conn: Connection, stalled: list[Record], *, memory: int = DEFAULT_OWNER_MEMORY
                  ) -> tuple[list[Move], list[Unplaced]]:
    """Who takes over each stalled lead.

    - only salespeople of the lead's team (every salesperson for a lead without a team, which then joins
      its new owner's team); a team with no other salesperson keeps its lead, reported as not placed;
    - never the current owner, nor anyone among the client's ``memory`` latest owners;
    - the least loaded first: current open leads plus the leads given in this plan, ties by name;
    - the most valuable leads are placed first.
    """
    people = conn.execute(sa.select(users.c.name, users.c.team).where(users.c.role == Role.SALESPERSON)).all()
    load = {name: 0 for name, _ in people}
    for owner, n in conn.execute(sa.select(stage_counts.c.owner, sa.func.sum(stage_counts.c.leads))
                                 .group_by(stage_counts.c.owner)):
        if owner in load:
            load[owner] = int(n)
    team_of = dict(people)
    # One heap per team and one for the whole company (for leads without a team). Entries go stale when a
    # load changes; a stale entry is corrected when popped (lazy deletion), so every pop sees true loads.
    heaps: dict[str | None, list[tuple[int, str]]] = {None: []}
    for name, team in people:
        heaps.setdefault(team, []).append((load[name], name))
        heaps[None].append((load[name], name))
    for heap in heaps.values():
        heapq.heapify(heap)

    company = heaps[None]

    def push(name: str) -> None:
        entry = (load[name], name)
        heapq.heappush(company, entry)
        if team_of[name] is not None:
            heapq.heappush(heaps[team_of[name]], entry)

    recent = _recent_owners(conn, {row.client_id for row in stalled}, memory)
    moves: list[Move] = []
    unplaced: list[Unplaced] = []
    for row in sorted(stalled, key=lambda r: (-(r.value_minor or 0), r.id)):
        if row.team is not None and row.team not in heaps:
            unplaced.append(Unplaced(row.id, row.owner, f"team {row.team} has no other salesperson"))
            continue
        heap = heaps[row.team]
        owner, worked = row.owner, recent.get(row.client_id, ())
        skipped: list[tuple[int, str]] = []
        chosen = None
        while heap:
            n, name = heapq.heappop(heap)
            if n != load[name]:
                continue  # stale: the true entry was pushed when the load changed
            if name == owner or name in worked:
                skipped.append((n, name))
                continue
            chosen = name
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        if chosen is None:
            team = f"team {row.team}" if row.team else "the company"
            unplaced.append(Unplaced(row.id, row.owner, f"every salesperson of {team} worked this client recently"))
            continue
        load[chosen] += 1
        push(chosen)
        if row.owner in load:
            load[row.owner] -= 1
            push(row.owner)
        moves.append(Move(row.id, row.client_id, row.name, row.value_minor, row.owner, chosen, team_of[chosen]))
    return moves, unplaced


#: The columns of a stalled lead that a rotation reads, besides those the plan needs.
ROTATION_READS = (leads.c.process_version, leads.c.stage, leads.c.row_version, leads.c.fields_json,
                  leads.c.value_minor, leads.c.source, leads.c.product)


def write_rotation(conn: Connection, moves: list[Move], stalled: dict[int, Record], specs: SpecLookup,
                   at: dt.datetime, actor: str) -> None:
    """Write the planned moves: a ``rotated`` event per lead, applied by ``engine.state.apply``.

    ``apply`` runs once per group of leads that it changes alike (one process version, stage and task
    applicability: see ``ROTATED_COLUMNS``), on the group's first lead read in full; the whole group is then
    written by ``store.write_leads`` with that lead's new columns and tasks and each lead's own new owner.
    ``stalled`` holds each moved lead's row with the ``ROTATION_READS`` columns.
    """
    with store.collector_paused(len(moves)):  # every group's changes are built, then written
        _write_groups(conn, moves, stalled, specs, at, actor)


def _write_groups(conn: Connection, moves: list[Move], stalled: dict[int, Record], specs: SpecLookup,
                  at: dt.datetime, actor: str) -> None:
    groups: dict[tuple[Any, ...], list[Move]] = {}
    for move in moves:
        row = stalled[move.lead_id]
        spec = specs(row.process, row.process_version)
        stage = spec.stage(row.stage)
        assert stage is not None
        conditional = [task for task in stage.all_tasks if task.when is not None]
        facts = rules.facts(store.loads(row.fields_json), value_minor=row.value_minor, source=row.source,
                            product=row.product, team=move.team) if conditional else {}
        applicable = tuple(rules.applies(task, facts, spec) for task in conditional)
        groups.setdefault((row.process, row.process_version, row.stage, applicable), []).append(move)
    data: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for (process, version, stage_id, _), group in groups.items():
        spec = specs(process, version)
        rest_until = (at + dt.timedelta(days=spec.cool_off_days)).isoformat()

        def event(move: Move, rest_until: str = rest_until) -> Event:
            key = (move.from_owner, move.to_owner, move.team)
            shared = data.get(key)
            if shared is None or shared["rest_until"] != rest_until:
                shared = data[key] = {"from": move.from_owner, "to": move.to_owner, "team": move.team,
                                      "rest_until": rest_until}
            return Event(kind=EventKind.ROTATED, at=at, actor=actor, data=shared)

        first = store.read_lead(conn, group[0].lead_id)
        assert first is not None
        after_state = apply(first.clone(), event(group[0]), specs)
        changed = set(store.changed_columns(first, after_state))
        assert changed <= set(ROTATED_COLUMNS), f"a rotation changed {sorted(changed - set(ROTATED_COLUMNS))}"
        stage = spec.stage(stage_id)
        assert stage is not None
        # in the stage's declared order, as entering a stage creates them (lists show ties in that order)
        tasks = {(stage_id, task.id): after_state.tasks[(stage_id, task.id)] for task in stage.all_tasks}
        # what the write path compares: the lead's own identity, owner, team and value; its rotated columns
        # are written whatever they held, its stage's task rows replaced without being read (the fields are the
        # first lead's, read by nothing the write path writes for a rotation)
        template_before = {**first.__dict__, "tasks": {}}
        template_after = {**after_state.__dict__, "tasks": tasks}
        changes = []
        mails: list[dict[str, Any]] = []
        for m in group:
            row = stalled[m.lead_id]
            before = object.__new__(LeadState)
            before.__dict__.update(template_before, id=m.lead_id, client_id=row.client_id,
                                   value_minor=row.value_minor, row_version=row.row_version, owner=row.owner,
                                   team=row.team)
            after = object.__new__(LeadState)
            after.__dict__.update(template_after, id=m.lead_id, client_id=row.client_id,
                                  value_minor=row.value_minor, owner=m.to_owner, team=m.team)
            rotated = [event(m)]
            changes.append(store.LeadChange(before, after, rotated, ROTATED_COLUMNS, stage_id))
            mails.extend(notices.after(before, after, rotated))
        store.write_leads(conn, changes)
        notices.queue(conn, mails)


def _recent_owners(conn: Connection, client_ids: Iterable[int], memory: int) -> dict[int, set[str]]:
    """Each client's ``memory`` latest owners (one query per 500 clients)."""
    ids = sorted(client_ids)
    rank = sa.func.row_number().over(partition_by=ownerships.c.client_id, order_by=ownerships.c.id.desc())
    out: dict[int, set[str]] = {}
    for start in range(0, len(ids), 500):
        ranked = (sa.select(ownerships.c.client_id, ownerships.c.owner, rank.label("n"))
                  .where(ownerships.c.client_id.in_(ids[start : start + 500])).subquery())
        for client_id, owner in conn.execute(
                sa.select(ranked.c.client_id, ranked.c.owner).where(ranked.c.n <= memory)):
            out.setdefault(client_id, set()).add(owner)
    return out


# -- the monthly summary of lost leads ------------------------------------------------------------

def removals(conn: Connection, specs: list[ProcessSpec], start: dt.datetime, end: dt.datetime,
             scope: list[Condition], kinds: tuple[str, ...]) -> results.RemovalCounts:
    """Leads closed without a sale in [start, end) (even if reopened since): counts by reason, salesperson and
    product, and the clients, those worth returning to first (their reason schedules a revisit, their value is
    above the month's median, and nobody has taken them up again yet)."""
    revisit = {(s.id, r.id) for s in specs for r in s.closure_reasons if r.revisit_after_days}
    where = [closures.c.closed_at >= start, closures.c.closed_at < end, closures.c.kind.in_(kinds),
             closures.c.process.in_({s.id for s in specs}), *scope]
    value = sa.func.coalesce(sa.func.sum(closures.c.value_minor), 0)

    def grouped(*columns: Expr) -> list[Record]:
        return list(conn.execute(sa.select(*columns, sa.func.count(), value).where(*where).group_by(*columns)
                                 .order_by(sa.func.count().desc(), *(c.nulls_last() for c in columns))).all())

    total, total_value = conn.execute(sa.select(sa.func.count(), value).where(*where)).one()
    median = _median_value(conn, where, int(total))
    later = leads.alias("later")
    taken_up = sa.or_(closures.c.reopened_at.is_not(None), sa.exists(
        sa.select(later.c.id).where(later.c.client_id == closures.c.client_id,
                                    later.c.created_at > closures.c.closed_at)))
    rows = conn.execute(
        sa.select(closures, clients.c.name, taken_up.label("taken_up"))
        .join(clients, clients.c.id == closures.c.client_id).where(*where)
        .order_by(closures.c.value_minor.desc().nulls_last(), closures.c.id).limit(1000)).all()
    listed: list[results.RemovedClient] = [
        {"lead_id": r.lead_id, "client_id": r.client_id, "name": r.name, "process": r.process, "owner": r.owner,
         "product": r.product, "reason": r.reason, "kind": r.kind, "closed_at": r.closed_at.isoformat(),
         "value": minor_to_money(r.value_minor), "taken_up": bool(r.taken_up),
         "worth_returning": (r.process, r.reason) in revisit and median is not None
         and (r.value_minor or 0) > median and not r.taken_up}
        for r in rows
    ]
    listed.sort(key=lambda c: not c["worth_returning"])  # stable: by value within each group
    return {
        "total": int(total), "value": minor_to_money(int(total_value)),
        "median_value": minor_to_money(median) if median is not None else None,
        "by_reason": [{"process": p, "reason": k, "kind": kind, "count": int(n), "value": minor_to_money(int(v))}
                      for p, k, kind, n, v in grouped(closures.c.process, closures.c.reason, closures.c.kind)],
        "by_salesperson": [{"owner": k, "count": int(n), "value": minor_to_money(int(v))}
                           for k, n, v in grouped(closures.c.owner)],
        "by_product": [{"product": k, "count": int(n), "value": minor_to_money(int(v))}
                       for k, n, v in grouped(closures.c.product)],
        "clients": listed,
    }


def _median_value(conn: Connection, where: list[Condition], total: int) -> int | None:
    if total == 0:
        return None
    value = sa.func.coalesce(closures.c.value_minor, 0)
    middle = conn.execute(sa.select(value).where(*where).order_by(value)
                          .limit(2 - total % 2).offset((total - 1) // 2)).scalars().all()
    return sum(int(v) for v in middle) // len(middle)
