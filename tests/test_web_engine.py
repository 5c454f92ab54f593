"""The engine's answers that the web app draws: ``leads.options`` (what a person may do with a lead, by the rules
that check each action) and the board cards' ``next_task`` and ``overdue``."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import clock, results
from engine.errors import NotFoundError, PermissionDenied
from tests.conftest import TEST_NOW, Team
from tests.test_results import conforms
from tests.web_fixtures import to_send_offer


def test_options_follow_the_rules_of_each_action(team: Team) -> None:
    anna, marta, olga, piotr = (team.as_(n) for n in ("anna", "marta", "olga", "piotr"))
    lead = anna.leads.add(process="photovoltaics", name="Jan Nowak")["id"]
    mine = anna.leads.options(lead)
    conforms(mine, results.LeadOptions)
    assert mine["edit"] and mine["tasks"] == ["record_contact", "check_history"]
    assert [s["id"] for s in mine["advance"]] == ["first_contact"] and not mine["win"]
    assert [r["id"] for r in mine["close"]][:2] == ["no_budget", "no_authority"]
    assert mine["assign"] == [] and mine["reopen"] == []
    assert {f["id"]: f["type"] for f in mine["fields"]}["install_by"] == "date"
    managed = marta.leads.options(lead)
    assert managed["edit"] and "piotr" in managed["assign"] and "anna" in managed["assign"]
    assert "olga" not in managed["assign"] and "ioana" not in managed["assign"]  # an analyst; another team
    seen = olga.leads.options(lead)  # an analyst reads the team's leads and does only her role's tasks
    assert (seen["edit"], seen["tasks"], seen["advance"], seen["close"]) == (False, [], [], [])
    with pytest.raises(PermissionDenied):
        piotr.leads.options(lead)
    with pytest.raises(NotFoundError):
        anna.leads.options(999)

    to_send_offer(anna, lead)
    # loan_offer applies only to a loan (financing is leasing here); the list is what tasks.list gives her
    assert set(olga.leads.options(lead)["tasks"]) == {"pricing", "leasing_offer", "notify_analyst"}
    assert set(olga.leads.options(lead)["tasks"]) == {t["task"] for t in olga.tasks.list() if t["lead_id"] == lead}
    assert "pricing" not in anna.leads.options(lead)["tasks"]
    assert {f["id"] for f in anna.leads.options(lead)["fields"] if f["required"]} == {"offer_value"}

    anna.leads.close(lead, "no_budget")
    closed = anna.leads.options(lead)
    assert (closed["edit"], closed["tasks"], closed["close"], closed["reopen"]) == (False, [], [], [])
    reopen = marta.leads.options(lead)["reopen"]
    # the stage it was closed in, then the earlier ones: exactly those reopen accepts (never a later stage)
    assert [s["id"] for s in reopen] == ["send_offer", "register_lead", "first_contact", "first_meeting"]


def test_board_cards_name_their_next_task_and_why_they_are_red(team: Team) -> None:
    anna = team.as_("anna")
    now = clock.parse_datetime(TEST_NOW)
    with clock.frozen(now - dt.timedelta(days=12)):
        late = anna.leads.add(process="photovoltaics", name="Late")["id"]
    fresh = anna.leads.add(process="photovoltaics", name="Fresh")["id"]
    (board,) = anna.boards.board(process="photovoltaics")
    cards = {c["id"]: c for s in board["stages"] for c in s["leads"]}
    for card in cards.values():
        conforms(card, results.Card)
    assert cards[late]["light"] == "red"
    assert cards[late]["overdue"] is not None and cards[late]["overdue"]["kind"] == "task"
    assert cards[late]["overdue"]["id"] == "record_contact"
    assert cards[late]["overdue"]["due_at"] == cards[late]["due_at"]
    assert cards[fresh]["overdue"] is None
    assert cards[fresh]["next_task"] is not None and cards[fresh]["next_task"]["id"] in ("record_contact",
                                                                                           "check_history")
    anna.leads.complete_task(fresh, "record_contact")
    anna.leads.complete_task(fresh, "check_history")
    (board,) = anna.boards.board(process="photovoltaics")
    assert next(c for s in board["stages"] for c in s["leads"] if c["id"] == fresh)["next_task"] is None


def test_the_process_list_without_its_counts_names_the_same_versions(team: Team) -> None:
    """The board's process filter asks for the names only (``open_leads=False``), which spares counting every
    open lead; everything else of each row is the same."""
    counted = team.admin.processes.list()
    bare = team.as_("anna").processes.list(open_leads=False)
    assert bare == [{k: v for k, v in row.items() if k != "open_leads"} for row in counted]
    assert all("open_leads" in row for row in counted) and not any("open_leads" in row for row in bare)
    assert len(bare) >= 5
