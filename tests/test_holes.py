"""The holes of issue 15 that let a rule be bypassed: reopening past the stage a lead was closed in, times
that go back before a lead's last event, leads shown to users who may not see them, names that deceive.

Each test fails on leadflow before the fix and runs on SQLite and PostgreSQL (the ``team`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import LeadflowError, RuleViolation
from tests.conftest import Team

PV = "photovoltaics"


def new_lead(team: Team, owner: str = "anna", **extra: Any) -> int:
    return int(team.as_(owner).leads.add(process=PV, name="Jan Kowalski", phone="+48 600 100 200", **extra)["id"])


# -- reopening ---------------------------------------------------------------------------------------------
def test_a_lead_reopens_only_into_the_stage_it_was_closed_in_or_an_earlier_one(team: Team) -> None:
    anna, marta = team.as_("anna"), team.as_("marta")
    lead_id = new_lead(team)
    anna.leads.complete_task(lead_id, "record_contact")
    anna.leads.advance(lead_id)  # first_contact
    marta.leads.close(lead_id, "bad_timing")
    with pytest.raises(RuleViolation, match=r"can't reopen lead \d+ into 'close_contract': it was closed in "
                                            r"'first_contact'.*register_lead, first_contact$"):
        marta.leads.reopen(lead_id, stage="close_contract")
    assert team.admin.leads.stored(lead_id).status == "lost"  # nothing changed
    assert marta.leads.reopen(lead_id, stage="register_lead")["stage"] == "register_lead"
    marta.leads.close(lead_id, "bad_timing")
    assert marta.leads.reopen(lead_id)["stage"] == "register_lead"


# -- time never goes back in a lead's history ---------------------------------------------------------------
EARLIER = "2026-03-01T09:00:00"  # the day before TEST_NOW, when every lead below is made


def _closed(team: Team, lead_id: int) -> None:
    team.as_("anna").leads.close(lead_id, "bad_timing")


def _contacted(team: Team, lead_id: int) -> None:
    team.as_("anna").leads.complete_task(lead_id, "record_contact")


def _lost_to_competitor(team: Team, lead_id: int) -> None:
    team.as_("anna").leads.close(lead_id, "competitor")  # a refusal: it waits for the director's review


#: Every operation that writes an event on one lead at the time it is given (LEADFLOW_NOW here): how the lead
#: is prepared at TEST_NOW, and the operation tried a day earlier.
BACKDATED = {
    "set_fields": (None, lambda t, i: t.as_("anna").leads.set_fields(i, {"roof_type": "flat"})),
    "assign": (None, lambda t, i: t.as_("marta").leads.assign(i, "piotr")),
    "complete_task": (None, lambda t, i: t.as_("anna").leads.complete_task(i, "record_contact")),
    "advance": (_contacted, lambda t, i: t.as_("anna").leads.advance(i)),
    "close": (None, lambda t, i: t.as_("anna").leads.close(i, "bad_timing")),
    "reopen": (_closed, lambda t, i: t.as_("marta").leads.reopen(i)),
    "review_return": (_lost_to_competitor, lambda t, i: t.as_("marta").recovery.review_return(i)),
    "review_confirm": (_lost_to_competitor, lambda t, i: t.as_("marta").recovery.review_confirm(i, "called")),
    "report": (None, lambda t, i: t.as_("anna").recovery.report(i, "the client is on holiday")),
    "recall": (None, lambda t, i: t.as_("marta").recovery.recall(i)),
    "complete_tasks_many": (None, lambda t, i: t.as_("anna").bulk.complete_tasks_many([i], "record_contact")),
    "advance_many": (_contacted, lambda t, i: t.as_("anna").bulk.advance_many([i])),
}


@pytest.mark.parametrize("operation", sorted(BACKDATED))
def test_an_operation_refuses_a_time_before_the_leads_last_event(team: Team, operation: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    prepare, act = BACKDATED[operation]
    lead_id = new_lead(team)
    if prepare is not None:
        prepare(team, lead_id)
    before = team.admin.leads.history(lead_id)
    monkeypatch.setenv("LEADFLOW_NOW", EARLIER)
    with pytest.raises(LeadflowError, match=r"its last event is at 2026-03-02T09:00:00, and a lead's history "
                                            r"never goes back in time"):
        act(team, lead_id)
    assert team.admin.leads.history(lead_id) == before
