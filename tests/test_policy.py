"""The rules written twice agree: each Python predicate and its SQL filter, on random users and leads.

A permission or "stalled" rule decides one lead in Python (``policy.can_view``, ``recovery.is_stalled``) and
many in SQL (``policy.visible_leads``, ``recovery.stalled_conditions``). Each test writes random leads into a
real database (SQLite, and PostgreSQL with LEADFLOW_TEST_PG_URL), asks the SQL form which it selects and the
Python form about every lead read back, and compares; the transaction is rolled back after each example.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from engine import policy, recovery, store
from engine.errors import NotFoundError, PermissionDenied
from engine.loader import load_file
from engine.policy import Actor
from engine.store import clients, leads
from engine.vocab import LeadStatus, Role

NOW = dt.datetime(2026, 3, 2, 9, 0)
NAMES = ["anna", "piotr", "marta", "radu", "olga", "website"]
TEAMS = ["north", "south"]
PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

teams = st.one_of(st.none(), st.sampled_from(TEAMS))
#: every role of the system, and department roles (a process role: analyst, technician)
actors = st.builds(Actor, name=st.sampled_from(NAMES), role=st.sampled_from([*Role, "analyst", "technician"]),
                   team=teams)
#: leads with an owner or none (unassigned), a team or none, some owned across teams
owned = st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(NAMES)), teams), max_size=12)


@pytest.fixture
def db(db_url: str) -> Iterator[sa.Engine]:
    engine = store.create_db_engine(db_url)
    store.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _rolled_back(db: sa.Engine) -> Any:
    """A connection in a transaction that is rolled back at the end (each hypothesis example starts empty)."""
    class Rolled:
        def __enter__(self) -> Connection:
            self.conn = db.connect()
            self.tx = self.conn.begin()
            return self.conn

        def __exit__(self, *exc: object) -> None:
            self.tx.rollback()
            self.conn.close()

    return Rolled()


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> list[Any]:
    """Write ``rows`` (columns of ``leads`` beyond the required ones) and read every lead back."""
    client_id = conn.execute(sa.insert(clients).values(name="client", created_at=NOW)).inserted_primary_key[0]
    for row in rows:
        conn.execute(sa.insert(leads).values(**{
            "client_id": client_id, "process": "photovoltaics", "process_version": 1, "stage": "first_contact",
            "status": LeadStatus.OPEN, "created_at": NOW, "stage_entered_at": NOW, "last_activity_at": NOW,
            "owner_since": NOW, **row}))
    return list(conn.execute(sa.select(leads).order_by(leads.c.id)))


@PROPERTY
@given(actor=actors, lead_owners=owned)
def test_can_view_and_visible_leads_agree(db: sa.Engine, actor: Actor, lead_owners: list[tuple[str | None, str | None]]
                                          ) -> None:
    with _rolled_back(db) as conn:
        rows = _insert(conn, [{"owner": owner, "team": team} for owner, team in lead_owners])
        in_sql = set(conn.execute(policy.visible_leads(actor, sa.select(leads.c.id))).scalars())
        assert in_sql == {row.id for row in rows if policy.can_view(actor, row)}


@PROPERTY
@given(actor=actors, team=teams, lead_owners=owned)
def test_may_join_client_and_joinable_client_agree(db: sa.Engine, actor: Actor, team: str | None,
                                                   lead_owners: list[tuple[str | None, str | None]]) -> None:
    with _rolled_back(db) as conn:
        rows = _insert(conn, [{"owner": owner, "team": its_team} for owner, its_team in lead_owners])
        client_id = conn.execute(sa.select(sa.func.max(clients.c.id))).scalar_one()
        in_sql = conn.execute(policy.joinable_client(actor, team=team), {"client_id": client_id, "team": team}
                              ).scalar_one()
        assert bool(in_sql) == policy.may_join_client(actor, rows, team=team)


def _lookup(name: str) -> Actor:
    """The users a scope may name: one of each role, in both teams."""
    people = {"anna": Actor("anna", Role.SALESPERSON, "north"), "piotr": Actor("piotr", Role.SALESPERSON, "south"),
              "marta": Actor("marta", Role.MANAGER, "north"), "radu": Actor("radu", Role.MANAGER, None),
              "olga": Actor("olga", "analyst", "north")}
    if name not in people:
        raise NotFoundError(f"user '{name}' does not exist")
    return people[name]


@PROPERTY
@given(actor=actors, owner=st.one_of(st.none(), st.sampled_from(NAMES)), team=teams, lead_owners=owned)
def test_a_view_scope_covers_only_visible_leads_in_both_forms(
        db: sa.Engine, actor: Actor, owner: str | None, team: str | None,
        lead_owners: list[tuple[str | None, str | None]]) -> None:
    try:
        scope = policy.view_scope(actor, owner=owner, team=team, lookup=_lookup)
    except (PermissionDenied, NotFoundError):
        return
    with _rolled_back(db) as conn:
        rows = _insert(conn, [{"owner": o, "team": t} for o, t in lead_owners])
        covered = set(conn.execute(sa.select(leads.c.id).where(*scope.on_leads())).scalars())
        assert covered == {row.id for row in rows if scope.covers(row)}
        visible = set(conn.execute(policy.visible_leads(actor, sa.select(leads.c.id))).scalars())
        assert covered <= visible


PROCESSES = Path(__file__).resolve().parent.parent / "processes"


@functools.cache
def shipped(process: str) -> Any:
    return load_file(PROCESSES / f"{process}.yaml")


@st.composite
def stalled_cases(draw: st.DrawFn) -> tuple[float, int | None, list[dict[str, Any]]]:
    """A sales cycle, an idle limit, and leads whose times fall on either side of both, and exactly on them."""
    cycle = draw(st.sampled_from([1.0, 7.5, 30.0, 45.25]))
    idle = draw(st.one_of(st.none(), st.sampled_from([3, 14])))
    marks = [cycle, *([idle] if idle else [])]

    def ago() -> dt.datetime:
        days = draw(st.one_of(st.sampled_from(marks), st.floats(min_value=0, max_value=90)))
        jitter = draw(st.sampled_from([0, 0, 1, -1]))  # microseconds around the limit
        return NOW - dt.timedelta(days=days) + dt.timedelta(microseconds=jitter)

    def maybe(make: Any) -> Any:
        return make() if draw(st.booleans()) else None

    rows = []
    for _ in range(draw(st.integers(min_value=0, max_value=10))):
        rows.append({
            "process": draw(st.sampled_from(["photovoltaics", "photovoltaics", "leasing"])),
            "status": draw(st.sampled_from(list(LeadStatus))),
            "owner": draw(st.one_of(st.none(), st.sampled_from(NAMES[:2]))),
            "owner_since": ago(), "last_activity_at": ago(),
            "recalled_at": maybe(ago), "rest_until": maybe(ago),
            "extended_until": maybe(lambda: NOW + dt.timedelta(days=draw(st.sampled_from([-2.0, 0.0, 3.0])))),
        })
    return cycle, idle, rows


@PROPERTY
@given(case=stalled_cases())
def test_is_stalled_and_stalled_conditions_agree(db: sa.Engine,
                                                  case: tuple[float, int | None, list[dict[str, Any]]]) -> None:
    cycle, idle, lead_rows = case
    spec = dataclasses.replace(shipped("photovoltaics"), stalled_after_days=idle)
    with _rolled_back(db) as conn:
        rows = _insert(conn, lead_rows)
        in_sql = set(conn.execute(sa.select(leads.c.id).where(recovery.stalled_conditions(spec, cycle, NOW)))
                     .scalars())
        assert in_sql == {row.id for row in rows if recovery.is_stalled(row, spec, cycle, NOW)}
        for row in rows:
            if row.id in in_sql:  # every lead the SQL selects has its reason
                assert recovery.stalled_reason(row, spec, cycle, NOW)


#: The users of the task-list test: every role, with and without a team. A lead's team is its owner's, as the
#: engine keeps it (a lead takes its new owner's team), so who may do its tasks is decided by reachable leads.
PEOPLE = [Actor("anna", Role.SALESPERSON, "north"), Actor("sara", Role.SALESPERSON, None),
          Actor("piotr", Role.SALESPERSON, "south"), Actor("marta", Role.MANAGER, "north"),
          Actor("radu", Role.MANAGER, None), Actor("olga", "analyst", "north"), Actor("tomasz", "technician", None),
          Actor("eve", "underwriter", "south"), Actor("website", Role.INTAKE, None), Actor("root", Role.ADMIN, None),
          Actor("ada", Role.ADMIN, "south")]
OWNERS = [p for p in PEOPLE if policy.can_own(p)]


@PROPERTY
@given(who=st.sampled_from(PEOPLE), process=st.sampled_from(sorted(p.stem for p in PROCESSES.glob("*.yaml"))),
       include_all=st.booleans(),
       lead_owners=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(OWNERS)), teams, st.integers(min_value=0)),
                            max_size=10))
def test_a_task_list_holds_exactly_the_tasks_its_owner_may_complete(
        db: sa.Engine, who: Actor, process: str, include_all: bool,
        lead_owners: list[tuple[Actor | None, str | None, int]]) -> None:
    spec = shipped(process)
    rows = []
    for owner, team, stage in lead_owners:
        rows.append({"process": spec.id, "stage": spec.stages[stage % len(spec.stages)].id,
                     "owner": owner.name if owner else None, "team": owner.team if owner else team})
    with _rolled_back(db) as conn:
        all_leads = _insert(conn, rows)
        in_sql = set(conn.execute(sa.select(leads.c.id).where(*policy.task_list_leads(who, include_all=include_all)))
                     .scalars())
        covered = [lead for lead in all_leads if policy.lists_lead(who, lead, include_all=include_all)]
        assert in_sql == {lead.id for lead in covered}

    def tasks(lead: Any) -> list[Any]:
        stage = spec.stage(lead.stage)
        assert stage is not None
        return list(stage.all_tasks)

    def may_complete(lead: Any, task: Any) -> bool:
        try:
            policy.require_can_do_task(who, lead, task, spec)
        except PermissionDenied:
            return False
        return True

    listed = {(lead.id, task.id) for lead in covered for task in tasks(lead)
              if policy.lists_every_task(who) or policy.is_task_of(who, task, spec)}
    if not include_all:  # a manager's list with --all shows other teams' tasks too, to see, not to complete
        assert listed == {(lead.id, task.id) for lead in covered for task in tasks(lead) if may_complete(lead, task)}
