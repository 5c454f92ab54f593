"""A lead's event log rebuilds its stored state exactly, on SQLite and PostgreSQL.

Hand-written histories that touch every kind of event: a full journey to a won sale, closing and
reopening (into the same and into another stage), a migration to a new process version, a field set
and then cleared, and reassignment. After every step the state replayed from the log must equal the
stored state (``LeadState.comparable()``: everything but the row counter).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import clock
from engine.errors import PermissionDenied, RuleViolation
from tests.conftest import Team

PV = "photovoltaics"
DEPARTMENT_USERS = {"analyst": "olga", "technician": "tomasz"}


class Timeline:
    """Moves the clock forward between steps, so events carry different times (weekends included)."""

    def __init__(self, start: str = "2026-03-02T09:00:00") -> None:
        self.now = dt.datetime.fromisoformat(start)

    def at(self, **delta: float) -> Any:
        self.now += dt.timedelta(**delta)
        return clock.frozen(self.now)


def assert_rebuilds(team: Team, lead_id: int) -> None:
    rebuilt = team.admin.rebuild_lead(lead_id).comparable()
    stored = team.admin.stored_lead(lead_id).comparable()
    assert rebuilt == stored
    # the funnel's projection, kept by the writes, equals the one replayed from the event log
    kept = stage_rows(team)
    assert team.admin.rebuild_stages()["rows"] == len(kept)
    assert stage_rows(team) == kept


def stage_rows(team: Team) -> list[tuple[Any, ...]]:
    import sqlalchemy as sa

    from engine.store import lead_stages

    with team.admin.transaction() as conn:
        return [tuple(r) for r in conn.execute(sa.select(lead_stages).order_by(lead_stages.c.lead_id,
                                                                               lead_stages.c.stage))]


def finish_stage(team: Team, lead_id: int, owner: str = "anna") -> dict[str, Any]:
    """Complete every open mandatory task of the current stage as the person it belongs to."""
    lead = team.as_(owner).get_lead(lead_id)
    for task in lead["tasks"]:
        if task["stage"] == lead["stage"] and task["state"] == "open" and task["mandatory"]:
            doer = owner if task["owner"] == "salesperson" else DEPARTMENT_USERS.get(task["owner"], "marta")
            team.as_(doer).complete_task(lead_id, task["id"], note=f"done by {doer}")
            assert_rebuilds(team, lead_id)
    return team.as_(owner).get_lead(lead_id)


def task_states(lead: dict[str, Any], stage: str) -> dict[str, str]:
    return {t["id"]: t["state"] for t in lead["tasks"] if t["stage"] == stage}


@pytest.fixture
def timeline() -> Iterator[Timeline]:
    yield Timeline()


def test_a_full_journey_to_a_won_sale(team: Team, timeline: Timeline) -> None:
    anna = team.as_("anna")
    with timeline.at(minutes=0):
        lead = anna.add_lead(process=PV, name="Łukasz Żółć", email="lukasz@example.pl", value="45 000,50",
                             source="web", fields={"roof_type": "pitched"})
    lead_id = lead["id"]
    assert_rebuilds(team, lead_id)
    with timeline.at(hours=2):
        anna.complete_task(lead_id, "check_history")  # the optional one too
    steps = [(1, {}), (3, {"roof_area_m2": "35,5", "financing": "loan", "wants_insurance": "tak"}),
             (2, {"offer_value": "38 000", "budget": "40000"}), (4, {})]
    for days, fields in steps:
        with timeline.at(days=days):
            if fields:
                anna.set_fields(lead_id, fields)
                assert_rebuilds(team, lead_id)
            finish_stage(team, lead_id)
            anna.advance(lead_id)
        assert_rebuilds(team, lead_id)
    with timeline.at(days=5):  # a Saturday or later: weekends do not count for the deadlines
        anna.set_fields(lead_id, {"value": "38 000", "product": "PV 6 kWp"})
        finish_stage(team, lead_id)
        won = anna.win(lead_id)
    assert won["status"] == "won"
    assert_rebuilds(team, lead_id)
    kinds = [e["kind"] for e in anna.history(lead_id)]
    assert kinds.count("advanced") == 4
    assert kinds[0] == "created"
    assert kinds[-1] == "won"
    stored = team.admin.stored_lead(lead_id)
    assert stored.closed_from_stage == "close_contract"
    assert stored.fields["roof_area_m2"] == 35.5
    assert stored.fields["wants_insurance"] is True
    assert stored.value_minor == 3_800_000
    assert stored.tasks[("send_offer", "pricing")].done_by == "olga"
    ats = [e["at"] for e in anna.history(lead_id)]
    assert ats == sorted(ats)


def test_closed_then_reopened_into_the_same_and_into_another_stage(team: Team, timeline: Timeline) -> None:
    anna, marta = team.as_("anna"), team.as_("marta")
    with timeline.at():
        lead_id = anna.add_lead(process=PV, name="Жанна Смирнова")["id"]
    with timeline.at(hours=1):
        finish_stage(team, lead_id)
        anna.advance(lead_id)
        anna.complete_task(lead_id, "call_client")
    with timeline.at(days=1):
        anna.close_lead(lead_id, "bad_timing", note="call back in autumn")
    assert_rebuilds(team, lead_id)
    with timeline.at(days=6):  # reopened where it was closed: the call stays done, the clock restarts
        resumed = marta.reopen(lead_id)
    assert resumed["stage"] == "first_contact"
    assert task_states(resumed, "first_contact")["call_client"] == "done"
    assert_rebuilds(team, lead_id)
    with timeline.at(hours=3):
        anna.close_lead(lead_id, "unreachable")
    with timeline.at(days=30):
        fresh = marta.reopen(lead_id, stage="register_lead")
    assert fresh["stage"] == "register_lead"
    assert task_states(fresh, "register_lead")["record_contact"] == "open"
    assert_rebuilds(team, lead_id)
    with timeline.at(hours=1):
        finish_stage(team, lead_id)
        anna.advance(lead_id)  # back in first_contact: its tasks start fresh again
    stored = team.admin.stored_lead(lead_id)
    assert stored.tasks[("first_contact", "call_client")].state == "open"
    assert stored.close_reason is None
    assert stored.closed_from_stage is None
    assert_rebuilds(team, lead_id)
    # a won lead reopened by a manager, then won again
    with timeline.at(minutes=5):
        saas = anna.add_lead(process="saas_trial", name="Ștefan Lăcătuș",
                             fields={"company_name": "Lăcătuș SRL", "seats": "4", "plan": "team",
                                     "use_case": "wiki", "activated": "yes", "trial_end": "2026-04-01",
                                     "billing_period": "monthly", "mrr": "49", "lifetime_value": "1176"})
    for _ in range(4):
        with timeline.at(days=1):
            finish_stage(team, saas["id"])
            anna.advance(saas["id"])
    assert team.admin.stored_lead(saas["id"]).stage == "convert_to_paid"
    with timeline.at(hours=2):
        finish_stage(team, saas["id"])
        anna.win(saas["id"])
    with timeline.at(days=2):
        marta.reopen(saas["id"])
    assert_rebuilds(team, saas["id"])
    with timeline.at(hours=1):
        assert anna.win(saas["id"])["status"] == "won"
    assert_rebuilds(team, saas["id"])


def test_migrated_to_a_new_version(team: Team, timeline: Timeline, tmp_path: Path,
                                   processes_dir: Path) -> None:
    anna = team.as_("anna")
    with timeline.at():
        waiting = anna.add_lead(process=PV, name="Waiting in register_lead")["id"]
        moving = anna.add_lead(process=PV, name="Moving on")["id"]
    with timeline.at(hours=1):
        anna.complete_task(waiting, "record_contact")
        finish_stage(team, moving)
        anna.advance(moving)
        anna.complete_task(moving, "call_client")
    text = (processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8")
    edited = (text
              .replace("Înregistrează lead-ul}\n    deadline_days: 1",
                       "Înregistrează lead-ul}\n    deadline_days: 3")
              .replace("      - {id: check_history, name: {en: \"Check the client's earlier leads\", pl: Sprawdź "
                       "wcześniejsze leady klienta, ro: Verifică lead-urile anterioare ale clientului}, "
                       "owner: salesperson, mandatory: false}\n", "")
              .replace("prima întâlnire}, owner: salesperson}\n",
                       "prima întâlnire}, owner: salesperson}\n"
                       "      - {id: send_brochure, name: Send the brochure, owner: salesperson}\n"))
    assert edited.count("send_brochure") == 1 and "check_history" not in edited
    changed = tmp_path / "photovoltaics.yaml"
    changed.write_text(edited, encoding="utf-8")
    with timeline.at(days=1):
        assert team.admin.load_process(changed)["version"] == 2
        result = team.admin.migrate_process(PV, 2)
    assert result["leads"] == [waiting, moving]
    for lead_id in (waiting, moving):
        assert team.admin.stored_lead(lead_id).process_version == 2
        assert_rebuilds(team, lead_id)
    stored = team.admin.stored_lead(waiting)
    assert ("register_lead", "check_history") not in stored.tasks  # the open task version 2 dropped
    assert stored.tasks[("register_lead", "record_contact")].state == "done"
    # 3 business days from its entry on Monday 2nd
    assert stored.stage_due_at == dt.datetime(2026, 3, 5, 23, 59, 59)
    stored = team.admin.stored_lead(moving)
    assert stored.tasks[("first_contact", "call_client")].state == "done"
    assert stored.tasks[("first_contact", "send_brochure")].state == "open"
    # the new version's rules apply from now on, and the rebuild follows them
    with timeline.at(hours=2):
        anna.complete_task(moving, "book_meeting")
        with pytest.raises(RuleViolation, match="mandatory tasks open: send_brochure"):
            anna.advance(moving)
        anna.complete_task(moving, "send_brochure")
        anna.advance(moving)
        anna.advance(waiting)
    for lead_id in (waiting, moving):
        assert_rebuilds(team, lead_id)
    kinds = [e["kind"] for e in anna.history(moving)]
    assert kinds.count("migrated") == 1


def test_a_field_set_then_cleared_with_an_empty_value(team: Team, timeline: Timeline) -> None:
    anna = team.as_("anna")
    with timeline.at():
        lead_id = anna.add_lead(process=PV, name="O'Brien & Söhne GmbH", value="1000",
                                fields={"need": "heat pump"})["id"]
    with timeline.at(hours=1):
        anna.set_fields(lead_id, {"financing": "leasing", "decision_maker": "Mrs O'Brien",
                                  "install_by": "2026-06-01"})
    assert_rebuilds(team, lead_id)
    with timeline.at(hours=1):
        anna.set_fields(lead_id, {"financing": "", "decision_maker": "   ", "need": "", "value": "",
                                  "source": ""})
    stored = team.admin.stored_lead(lead_id)
    assert stored.fields == {"install_by": "2026-06-01"}
    assert stored.value_minor is None
    assert_rebuilds(team, lead_id)
    history = anna.history(lead_id)
    cleared = {e["data"]["field"]: e["data"] for e in history
               if e["kind"] == "field_set" and e["data"]["after"] is None}
    # source was unset already: no event for it
    assert set(cleared) == {"financing", "decision_maker", "need", "value"}
    assert cleared["financing"]["before"] == "leasing"
    # clearing what is not set writes nothing
    with timeline.at(hours=1):
        anna.set_fields(lead_id, {"financing": ""})
    assert len(anna.history(lead_id)) == len(history)
    # a field that a task's condition reads: set, then cleared, in a stage with that task
    with timeline.at(days=1):
        anna.set_fields(lead_id, {"roof_type": "flat", "roof_area_m2": "40", "financing": "leasing"})
        for _ in range(3):
            finish_stage(team, lead_id)
            anna.advance(lead_id)
    assert team.admin.stored_lead(lead_id).tasks[("send_offer", "leasing_offer")].state == "open"
    with timeline.at(hours=1):
        anna.set_fields(lead_id, {"financing": ""})
    assert team.admin.stored_lead(lead_id).tasks[("send_offer", "leasing_offer")].state == "not_applicable"
    assert_rebuilds(team, lead_id)
    with timeline.at(hours=1):
        anna.set_fields(lead_id, {"financing": "leasing"})
    assert team.admin.stored_lead(lead_id).tasks[("send_offer", "leasing_offer")].state == "open"
    assert_rebuilds(team, lead_id)


def test_assigned_to_another_salesperson(team: Team, timeline: Timeline) -> None:
    anna, piotr, marta = team.as_("anna"), team.as_("piotr"), team.as_("marta")
    with timeline.at():
        lead_id = anna.add_lead(process=PV, name="Piotr's future lead")["id"]
    with timeline.at(days=1):
        marta.assign(lead_id, "piotr")
    assert_rebuilds(team, lead_id)
    stored = team.admin.stored_lead(lead_id)
    assert (stored.owner, stored.team, stored.owner_since) == ("piotr", "north", timeline.now)
    with pytest.raises(PermissionDenied):
        anna.complete_task(lead_id, "record_contact")
    with timeline.at(hours=1):
        piotr.complete_task(lead_id, "record_contact")
        piotr.advance(lead_id)
    with timeline.at(days=2):
        marta.assign(lead_id, "piotr")  # already his: nothing happens
        team.admin.assign(lead_id, "ioana")  # an admin moves it to the other team
    stored = team.admin.stored_lead(lead_id)
    assert (stored.owner, stored.team) == ("ioana", "south")
    assert_rebuilds(team, lead_id)
    with pytest.raises(PermissionDenied):
        marta.assign(lead_id, "anna")  # no longer her team's
    kinds = [e["kind"] for e in team.admin.history(lead_id)]
    assert kinds == ["created", "assigned", "task_done", "advanced", "assigned"]
