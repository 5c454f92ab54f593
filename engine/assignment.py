"""Placing new leads that have no owner, by the rules an admin declares in the process (``assignment:``).

The first rule whose ``when`` and ``products`` match the lead names a team; the team's salespeople take
such leads in turn (round robin, in order of name, after the last one who got a lead), skipping anyone who
already holds the cap of open leads (counted over every process). A lead that no rule matches, or whose
team has nobody under the cap, waits unassigned in the manager's queue (with the team when one is known).

``Assigner`` is built once per transaction (or per batch of a bulk import): it reads the salespeople, their
open-lead loads and the round-robin cursors once, decides in memory, and ``save`` writes the cursors back
in the same transaction. The cursors' rows are locked while it works (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's write lock, taken by ``BEGIN IMMEDIATE``), so concurrent writers take turns.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, rules
from engine.policy import Actor
from engine.spec import ProcessSpec
from engine.state import Event, LeadState
from engine.store import assignment_cursors, stage_counts, users
from engine.vocab import Role

QUEUE = "waiting in the manager's queue"


@dataclass(frozen=True)
class Placement:
    """Where a new lead goes: an owner (None: the manager's queue), its team, the rule that decided, and why."""

    owner: str | None
    team: str | None
    rule: int | None  # 1-based, as an admin counts the rules
    why: str

    def record(self) -> dict[str, Any]:
        """What the ``created`` event keeps about the decision."""
        return {"rule": self.rule, "why": self.why}

    def apply_to(self, state: LeadState, created: Event) -> None:
        """Give the new lead (its state and its ``created`` event alike, so a replay agrees) to its owner."""
        state.owner = self.owner
        state.team = self.team
        created.data.update(owner=self.owner, team=self.team, assignment=self.record())


class NewLeadOwner(NamedTuple):
    """Who owns a new lead (None: nobody yet), the team it is in, and the rules' decision when they were asked
    (what its ``created`` event keeps as ``assignment``)."""

    owner: str | None
    team: str | None
    assignment: dict[str, Any] | None


def owner_of_new_lead(actor: Actor, named: Actor | None, spec: ProcessSpec, product: str | None,
                      facts: dict[str, Any], rules_: Callable[[], Assigner]) -> NewLeadOwner:
    """THE decision of who owns a new lead, for ``leads.add`` (and the HTTP intake) and the CSV import alike:
    the named owner (who passed ``policy.require_can_give``); else the process's assignment rules, read through
    ``rules_`` only when a lead needs them (it locks the round-robin cursors); else nobody: the lead waits in the
    team of ``waiting_team``, visible to its manager. ``facts``: the new lead's fields and attributes
    (``rules.facts``), which the rules' conditions read."""
    if named is not None:
        return NewLeadOwner(named.name, named.team, None)
    if spec.assignment is not None:
        placed = rules_().place_values(product, facts, waiting_team(actor, spec))
        return NewLeadOwner(placed.owner, placed.team, placed.record())
    return NewLeadOwner(None, waiting_team(actor, spec), None)


def waiting_team(actor: Actor, spec: ProcessSpec) -> str | None:
    """The team whose manager gets a new lead that no rule places: the token's (its source's team, ``token add
    --team``), else the process's ``default_team``, else the adder's team. So every lead has a team from the
    moment it exists, whenever one is known anywhere."""
    if actor.role == Role.INTAKE and actor.team:
        return actor.team
    return spec.default_team or actor.team


class Assigner:
    """Round robin under a cap, for the leads of one process written in one transaction."""

    def __init__(self, spec: ProcessSpec, teams: dict[str, list[str]], load: dict[str, int],
                 cursors: dict[str, str | None]):
        self.spec = spec
        self.teams = teams  # team -> its salespeople, by name
        self.load = load  # salesperson -> open leads held now (over every process)
        self.cursors = cursors  # team -> the last salesperson who got a lead
        self._moved: set[str] = set()
        self._placed: dict[tuple[int, str], Placement] = {}
        self._products = [frozenset(p.casefold() for p in r.products) for r in spec.assignment.rules] if (
            spec.assignment) else []

    @classmethod
    def load_for(cls, conn: Connection, spec: ProcessSpec) -> Assigner:
        """Read what the rules need: three small queries, whatever the number of leads placed afterwards."""
        names = sorted({r.team for r in spec.assignment.rules}) if spec.assignment else []
        # the lock first: a concurrent writer's leads are committed, and counted below, before we go on
        cursors = _lock_cursors(conn, names)
        teams: dict[str, list[str]] = {name: [] for name in names}
        load: dict[str, int] = {}
        if names:
            for person, team in conn.execute(
                    sa.select(users.c.name, users.c.team).where(users.c.role == Role.SALESPERSON, users.c.active,
                                                                 users.c.team.in_(names)).order_by(users.c.name)):
                teams[team].append(person)
                load[person] = 0
            for owner, count in conn.execute(
                    sa.select(stage_counts.c.owner, sa.func.sum(stage_counts.c.leads))
                    .where(stage_counts.c.owner.in_(list(load))).group_by(stage_counts.c.owner)):
                load[owner] = int(count)
        return cls(spec, teams, load, cursors)

    def place(self, state: LeadState) -> Placement:
        """The owner for a new lead (its fields and product are read; nothing is written)."""
        return self.place_values(state.product, rules.lead_facts(state), state.team)

    def place_values(self, product: str | None, facts: dict[str, Any], team: str | None) -> Placement:
        """``place`` for a lead not built yet (a bulk import): its product, facts (``rules.facts``: its fields and
        attributes) and the team it would wait in."""
        assignment = self.spec.assignment
        if assignment is None:
            return Placement(None, team, None, f"process {self.spec.id} declares no assignment rules; {QUEUE}")
        for number, rule in enumerate(assignment.rules, start=1):
            products = self._products[number - 1]
            if products and (product or "").casefold() not in products:
                continue
            if rule.when is not None and not rules.evaluate(rule.when, facts, self.spec):
                continue
            cap = rule.max_open if rule.max_open is not None else assignment.max_open
            people = self.teams.get(rule.team, [])
            where = f"rule {number} (team {rule.team})"
            if not people:
                return Placement(None, rule.team, number, f"{where}: the team has no salespeople; {QUEUE}")
            owner = self._next(rule.team, people, cap)
            if owner is None:
                return Placement(None, rule.team, number,
                                 f"{where}: every salesperson holds the cap of {cap} open leads; {QUEUE}")
            key = (number, owner)
            if key not in self._placed:  # a bulk import places many leads alike: one object per (rule, owner)
                self._placed[key] = Placement(owner, rule.team, number, f"{where}: round robin")
            return self._placed[key]
        return Placement(None, team, None, f"no assignment rule matches; {QUEUE}")

    def _next(self, team: str, people: list[str], cap: int | None) -> str | None:
        last = self.cursors.get(team)
        start = 0 if last is None else bisect.bisect_right(people, last)  # the first after the last one served
        for i in range(len(people)):
            person = people[(start + i) % len(people)]
            if cap is None or self.load[person] < cap:
                self.cursors[team] = person
                self.load[person] += 1
                self._moved.add(team)
                return person
        return None

    def save(self, conn: Connection) -> None:
        """Write the round-robin cursors that moved (call once, at the end of the transaction's work)."""
        now = clock.now()
        for team in sorted(self._moved):
            conn.execute(sa.update(assignment_cursors).where(assignment_cursors.c.team == team)
                         .values(last_owner=self.cursors[team], updated_at=now))
        self._moved.clear()


class AssignmentRules:
    """A process's assignment rules in one transaction, read (and their cursors locked) only when a lead needs
    them: the ``rules_`` of ``owner_of_new_lead`` for one lead."""

    def __init__(self, conn: Connection, spec: ProcessSpec):
        self._conn = conn
        self._spec = spec
        self._assigner: Assigner | None = None

    def __call__(self) -> Assigner:
        if self._assigner is None:
            self._assigner = Assigner.load_for(self._conn, self._spec)
        return self._assigner

    def save(self) -> None:
        if self._assigner is not None:
            self._assigner.save(self._conn)


def _lock_cursors(conn: Connection, teams: list[str]) -> dict[str, str | None]:
    """The cursors of ``teams``, their rows created if missing and locked until the transaction ends."""
    if not teams:
        return {}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    conn.execute(insert(assignment_cursors).on_conflict_do_nothing(index_elements=["team"]),
                 [{"team": t, "last_owner": None, "updated_at": None} for t in teams])
    rows = conn.execute(sa.select(assignment_cursors.c.team, assignment_cursors.c.last_owner)
                        .where(assignment_cursors.c.team.in_(teams)).order_by(assignment_cursors.c.team)
                        .with_for_update())
    return {row.team: row.last_owner for row in rows}

