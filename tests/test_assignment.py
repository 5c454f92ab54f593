"""Assignment rules: new leads without an owner are placed by the admin's rules, on SQLite and PostgreSQL.

Round robin within the team of the first matching rule, a cap on open leads per salesperson (counted over
every process), and the manager's queue for what no rule can place; the round-robin cursor lives in the
database, so it survives a new process and serialises concurrent writers.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import Engine
from engine.assignment import Assigner
from engine.errors import InvalidInputError
from engine.loader import check_bytes
from engine.state import LeadState
from tests.conftest import Team, at_once, snapshot

RULES = """
assignment:
  max_open: 3
  rules:
    - team: north
      when: {field: region, op: in, value: [pomorskie, warminsko_mazurskie]}
    - team: south
      products: [PV Business]
      max_open: 1
    - team: east
      when: {field: region, op: eq, value: podlaskie}
"""
REGION = ("  - {id: region, label: Region (voivodeship), type: choice, "
          "options: [pomorskie, warminsko_mazurskie, malopolskie, podlaskie]}\n")


def ruled_text(processes_dir: Path, rules: str = RULES) -> str:
    """photovoltaics with a region field and assignment rules, as an admin would write it."""
    text = (processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8")
    marker = "  - {id: offer_value,"
    assert marker in text
    return text.replace(marker, REGION + marker) + rules


def with_rules(processes_dir: Path, tmp_path: Path, rules: str = RULES) -> Path:
    path = tmp_path / "photovoltaics.yaml"
    path.write_text(ruled_text(processes_dir, rules), encoding="utf-8")
    return path


@pytest.fixture
def ruled(team: Team, processes_dir: Path, tmp_path: Path) -> Team:
    result = team.admin.load_process(with_rules(processes_dir, tmp_path))
    assert (result["process"], result["version"], result["created"]) == ("photovoltaics", 2, True)
    return team


def add(eng: Engine, region: str | None = None, product: str | None = None, **extra: Any) -> dict[str, Any]:
    fields = {"region": region} if region else {}
    return eng.add_lead(process="photovoltaics", name="Zofia Wiśniewska", product=product, fields=fields, **extra)


def assignment_of(eng: Engine, lead_id: int) -> dict[str, Any]:
    created = eng.history(lead_id)[0]
    assert created["kind"] == "created"
    return created["data"]["assignment"]  # type: ignore[no-any-return]


def test_round_robin_within_the_team_of_the_first_matching_rule(ruled: Team) -> None:
    marta = ruled.as_("marta")

    leads = [add(marta, "pomorskie"), add(marta, "warminsko_mazurskie"), add(marta, "pomorskie"),
             add(marta, "pomorskie")]

    assert [(lead["owner"], lead["team"]) for lead in leads] == [
        ("anna", "north"), ("piotr", "north"), ("anna", "north"), ("piotr", "north")]
    assert assignment_of(marta, leads[0]["id"]) == {"rule": 1, "why": "rule 1 (team north): round robin"}
    # the leads reach their owners at once: they are in the stand-up's new leads
    daily = ruled.as_("anna").daily()
    assert [n["lead_id"] for n in daily["people"][0]["new_leads"]] == [leads[0]["id"], leads[2]["id"]]


def test_the_cap_counts_open_leads_over_every_process_and_then_the_manager_queues(ruled: Team) -> None:
    anna, marta = ruled.as_("anna"), ruled.as_("marta")
    anna.add_lead(process="mortgage", name="Jan Kowalski")  # anna's own lead in another process
    anna.add_lead(process="photovoltaics", name="Ewa Nowak")

    owners = [add(marta, "pomorskie")["owner"] for _ in range(5)]

    # anna holds 2 open leads and piotr 0; the cap is 3
    assert owners == ["anna", "piotr", "piotr", "piotr", None]
    queued = marta.list_leads(unassigned=True)
    assert [(r["owner"], r["team"], r["stage"]) for r in queued] == [(None, "north", "register_lead")]
    assert assignment_of(marta, queued[0]["id"]) == {
        "rule": 1, "why": "rule 1 (team north): every salesperson holds the cap of 3 open leads; "
                          "waiting in the manager's queue"}

    # a closed lead frees a place under the cap
    lead_id = marta.list_leads(owner="anna", process="mortgage")[0]["id"]
    anna.close_lead(lead_id, "duplicate")
    assert add(marta, "pomorskie")["owner"] == "anna"


def test_product_rule_with_its_own_cap(ruled: Team) -> None:
    radu = ruled.as_("radu")

    first = add(radu, product="pv business")  # products compare without regard to case
    second = add(radu, product="PV Business")

    assert (first["owner"], first["team"]) == ("ioana", "south")
    assert (second["owner"], second["team"]) == (None, "south")
    assert "cap of 1 open leads" in assignment_of(radu, second["id"])["why"]


def test_leads_no_rule_places_wait_in_the_manager_queue_and_daily(ruled: Team) -> None:
    marta = ruled.as_("marta")
    nobody = add(marta, "malopolskie")
    no_region = add(marta)
    empty_team = add(marta, "podlaskie")

    assert (nobody["owner"], nobody["team"]) == (None, "north")  # the manager's own team
    assert assignment_of(marta, nobody["id"]) == {"rule": None,
                                                  "why": "no assignment rule matches; waiting in the manager's queue"}
    assert (no_region["owner"], no_region["team"]) == (None, "north")
    assert (empty_team["owner"], empty_team["team"]) == (None, "east")
    assert assignment_of(ruled.admin, empty_team["id"])["why"] == (
        "rule 3 (team east): the team has no salespeople; waiting in the manager's queue")

    queue = marta.daily()["unassigned"]
    assert queue["count"] == 2  # marta manages north; east is not hers
    assert [q["lead_id"] for q in queue["leads"]] == [nobody["id"], no_region["id"]]
    assert queue["leads"][0] == {"lead_id": nobody["id"], "name": "Zofia Wiśniewska", "process": "photovoltaics",
                                 "stage": "register_lead", "team": "north", "created_at": "2026-03-02T09:00:00",
                                 "waiting_days": 0, "overdue": False, "value": None, "deactivated_owner": None}
    everything = ruled.admin.daily()["unassigned"]
    assert everything["count"] == 3
    assert "unassigned" not in ruled.as_("anna").daily()  # a salesperson's agenda has no queue

    # the manager gives a queued lead to someone: it leaves the queue
    marta.assign(nobody["id"], "piotr")
    assert [r["id"] for r in marta.list_leads(unassigned=True)] == [no_region["id"]]


def test_people_who_add_their_own_lead_or_name_the_owner_bypass_the_rules(ruled: Team) -> None:
    own = add(ruled.as_("ioana"), "pomorskie")
    named = add(ruled.as_("marta"), "pomorskie", owner="piotr")

    assert (own["owner"], own["team"]) == ("ioana", "south")
    assert (named["owner"], named["team"]) == ("piotr", "north")
    assert "assignment" not in ruled.admin.history(own["id"])[0]["data"]
    # and the round robin did not move: the next placed lead goes to the first in turn
    assert add(ruled.as_("marta"), "pomorskie")["owner"] == "anna"


def test_a_process_without_rules_keeps_leads_in_the_adding_managers_team(team: Team) -> None:
    lead = team.as_("marta").add_lead(process="photovoltaics", name="Ewa Nowak")

    assert (lead["owner"], lead["team"]) == (None, "north")
    assert "assignment" not in team.admin.history(lead["id"])[0]["data"]


def test_the_cursor_survives_a_new_engine_and_the_state_replays(ruled: Team) -> None:
    assert add(ruled.as_("marta"), "pomorskie")["owner"] == "anna"
    other = Engine.open(ruled.url, user="marta")  # another program on the same database
    try:
        lead = add(other, "pomorskie")
        assert lead["owner"] == "piotr"
        assert other.rebuild_lead(lead["id"]).comparable() == other.stored_lead(lead["id"]).comparable()
    finally:
        other.close()
    assert add(ruled.as_("marta"), "pomorskie")["owner"] == "anna"


def test_concurrent_writers_take_turns(team: Team, processes_dir: Path, tmp_path: Path) -> None:
    """Eight writers add five leads each at once: the cursor is read and moved under a lock, so the
    round robin stays exact (20 each)."""
    team.admin.load_process(with_rules(processes_dir, tmp_path, RULES.replace("max_open: 3", "max_open: 1000")))
    at_once(team.url, "marta", lambda eng, _i: [add(eng, "warminsko_mazurskie") for _ in range(5)], 8)
    owners = Counter(r["owner"] for r in team.admin.list_leads(process="photovoltaics"))
    assert owners == {"anna": 20, "piotr": 20}


def test_user_email_is_checked_and_a_refusal_changes_nothing(team: Team) -> None:
    user = team.admin.add_user("ewa", "salesperson", "north", email=" Ewa.Nowak@example.pl ")
    assert user["email"] == "Ewa.Nowak@example.pl"
    assert team.admin.set_user_email("ewa", "")["email"] is None

    before = snapshot(team.url)
    for bad in ("ewa at example.pl", "ewa@example", "a@b.c\x1b[31m", "x" * 400 + "@example.pl"):
        with pytest.raises(InvalidInputError):
            team.admin.add_user("nowy", "salesperson", "north", email=bad)
        with pytest.raises(InvalidInputError):
            team.admin.set_user_email("anna", bad)
    assert snapshot(team.url) == before


# -- the in-memory decision, as a property -------------------------------------------------------------

@functools.cache
def _spec() -> Any:
    root = Path(__file__).resolve().parent.parent / "processes"
    spec, problems = check_bytes(ruled_text(root, RULES.replace("max_open: 3", "max_open: 4")).encode(),
                                 str(root / "photovoltaics.yaml"))
    assert problems == []
    return spec


@settings(max_examples=200, deadline=None, database=None)
@given(
    people=st.lists(st.sampled_from(["ala", "bartek", "celina", "darek", "ewa"]), min_size=1, unique=True),
    start=st.lists(st.integers(0, 6), min_size=5, max_size=5),
    cursor=st.sampled_from([None, "ala", "bartek", "zenon"]),
    regions=st.lists(st.sampled_from(["pomorskie", "malopolskie", None]), max_size=60),
)
def test_placement_is_fair_and_never_passes_the_cap(people: list[str], start: list[int], cursor: str | None,
                                                   regions: list[str | None]) -> None:
    spec = _spec()
    load = {p: start[i] for i, p in enumerate(sorted(people))}
    assigner = Assigner(spec, {"north": sorted(people), "south": [], "east": []}, dict(load), {"north": cursor})
    given_to: Counter[str] = Counter()
    for region in regions:
        state = LeadState(id=None, client_id=1, process="photovoltaics", process_version=2, stage="register_lead",
                          status="open", owner=None, team="north", source=None, product=None, value_minor=None,
                          fields={"region": region} if region else {}, created_at=None, stage_entered_at=None,
                          stage_due_at=None, last_activity_at=None, owner_since=None)
        placement = assigner.place(state)
        if region != "pomorskie":
            assert (placement.owner, placement.rule) == (None, None)
            continue
        assert placement.team == "north"
        if placement.owner is None:
            # queued only when everybody is at the cap
            assert all(assigner.load[p] >= 4 for p in people)
        else:
            given_to[placement.owner] += 1
            assert assigner.load[placement.owner] <= max(4, load[placement.owner])
    # round robin: among those never at the cap, the counts differ by at most one
    free = [p for p in people if load[p] + given_to[p] < 4]
    if free:
        counts = [given_to[p] for p in free]
        assert max(counts) - min(counts) <= 1
