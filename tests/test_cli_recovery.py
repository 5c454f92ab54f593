"""The recovery loop through the CLI: refusal reviews, revisits, the monthly removals, stalled leads,
reports, extensions, recalls and rotation, as the sales director and the salespeople use them.

Every command runs through click's CliRunner against a throw-away SQLite file built once per session
(the review and rotation flows also against the ``team`` fixture, i.e. SQLite and PostgreSQL). The
clock is moved per invocation with ``LEADFLOW_NOW``. The contract is docs/cli.md's: one ``Error: ...``
line on stderr, exit 1 for a refused or invalid action, 2 for bad usage, never a traceback, and a
refused command changes nothing (``snapshot`` before == after).

Tests marked ``xfail(strict=True, reason="BUG: ...")`` assert the correct behaviour of a bug found
while writing them; they start passing (and so fail, strict) when the bug is fixed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import clock
from engine.api import Engine
from tests.conftest import (
    TEST_NOW,
    CliDatabase,
    Team,
    check_error,
    cli_floor,
    js,
    leadflow,
    ok,
    printed,
    refused,
    snapshot,
)
from tests.remote import server_for
from tests.test_cli_engine import HIDDEN

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
PV = "photovoltaics"

TEAM = [
    ("marta", "manager", "north"),
    ("anna", "salesperson", "north"),
    ("piotr", "salesperson", "north"),
    ("pawel", "salesperson", "north"),
    ("radu", "manager", "south"),
    ("ioana", "salesperson", "south"),
    ("olga", "analyst", "north"),
    ("tomasz", "technician", None),
]

REVIEW_KEYS = {"id", "lead_id", "name", "process", "owner", "team", "reason", "note", "stage", "value",
               "requested_at", "due_at", "state", "decided_by", "decided_at", "decision_note"}
STALLED_LEAD_KEYS = {"lead_id", "client_id", "name", "process", "stage", "owner", "days_held",
                     "last_activity_at", "why", "latest_report", "latest_report_at", "value"}
MOVE_KEYS = {"lead_id", "client_id", "name", "value", "from", "to", "team"}
REVISIT_KEYS = {"lead_id", "client_id", "name", "process", "reason", "closed_at", "owner"}
CLIENT_LEAD_KEYS = {"id", "process", "status", "stage", "owner", "created_at", "closed_at", "close_reason"}
REMOVAL_CLIENT_KEYS = {"lead_id", "client_id", "name", "process", "owner", "product", "reason", "kind",
                       "closed_at", "value", "taken_up", "worth_returning"}
ALL_PROCESSES = {"leasing", "life_insurance", "mortgage", "photovoltaics", "saas_trial"}

# -- running the CLI at an instant (the helpers are tests/conftest.py's: ``now`` sets LEADFLOW_NOW) -------


def add(url: str, owner: str, name: str, now: str = TEST_NOW, value: str | None = None,
        product: str | None = None, process: str = PV) -> int:
    """A lead added by ``owner`` (a salesperson) at ``now``; returns its id."""
    command = ["lead", "add", "--process", process, "--name", name]
    command += ["--value", value] if value else []
    command += ["--product", product] if product else []
    return int(js(url, owner, command, now)["id"])


def to_first_contact(url: str, lead_id: int, owner: str, now: str = TEST_NOW) -> None:
    ok(url, owner, f"task done {lead_id} record_contact", now)
    ok(url, owner, f"lead advance {lead_id}", now)


def open_counts(url: str) -> dict[str, int]:
    """Open leads per owner, from the leads themselves."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT owner, count(*) FROM leads WHERE status = 'open' GROUP BY owner")).all())
    finally:
        db.dispose()


def counts_agree_with_the_leads(url: str) -> None:
    """``stage_counts`` (kept by every write) equals what ``store.recount`` would rebuild from the leads."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            kept = {tuple(r[:4]): (int(r[4]), int(r[5])) for r in conn.execute(sa.text(
                "SELECT process, stage, team, owner, leads, value_minor FROM stage_counts"))
                if (r[4], r[5]) != (0, 0)}
            recounted = {tuple(r[:4]): (int(r[4]), int(r[5])) for r in conn.execute(sa.text(
                "SELECT process, stage, coalesce(team, ''), coalesce(owner, ''), count(*), "
                "coalesce(sum(value_minor), 0) FROM leads WHERE status = 'open' "
                "GROUP BY process, stage, coalesce(team, ''), coalesce(owner, '')"))}
    finally:
        db.dispose()
    assert kept == recounted


def ownerships(url: str, client_id: int) -> list[tuple[str, str]]:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT owner, how FROM ownerships WHERE client_id = :c ORDER BY id"), {"c": client_id})]
    finally:
        db.dispose()


def cells(line: str) -> list[str]:
    """The cells of a table row as printed."""
    return [c.strip() for c in line.split("│")[1:-1]]


def kinds(url: str, user: str, lead_id: int, now: str = TEST_NOW) -> list[str]:
    return [e["kind"] for e in js(url, user, f"lead history {lead_id}", now)]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def url(cli_db: CliDatabase) -> str:
    """A fresh copy of the session's database of TEAM, set up through the CLI (in each mode of ``cli_db``)."""
    return cli_db.template("cli_recovery", cli_floor(TEAM))


# ================================================================================================
# Refusal reviews
# ================================================================================================


def test_review_list_shows_refusals_closed_for_a_reviewed_reason_and_not_removals(url: str) -> None:
    refusal = add(url, "anna", "Zofia Kamińska", value="30000")
    duplicate = add(url, "anna", "Zofia K. (again)", value="30000")
    unreachable = add(url, "anna", "Ghost", value="5000")
    to_first_contact(url, refusal, "anna")
    at = "2026-03-02T10:00:00"
    ok(url, "anna", f"lead close {refusal} --reason price --note 'found it 20% cheaper'", at)
    ok(url, "anna", f"lead close {duplicate} --reason duplicate", at)
    ok(url, "anna", f"lead close {unreachable} --reason unreachable", at)  # a removal, even with a revisit

    rows = js(url, "marta", "review list", at)
    assert len(rows) == 1
    assert set(rows[0]) == REVIEW_KEYS
    assert {k: v for k, v in rows[0].items() if k != "id"} == {
        "lead_id": refusal, "name": "Zofia Kamińska", "process": PV, "owner": "anna", "team": "north",
        "reason": "price", "note": "found it 20% cheaper", "stage": "first_contact", "value": "30000.00",
        "requested_at": at, "due_at": "2026-03-04T23:59:59",  # two business days after the refusal
        "state": "open", "decided_by": None, "decided_at": None, "decision_note": None}
    out = printed(url, "marta", "review list", at)
    assert out.startswith("1 review")
    assert [cells(line) for line in out.splitlines() if "Zofia" in line] == [
        [str(refusal), "Zofia Kamińska", PV, "anna", "price", "30000.00", "2026-03-02 10:00", "2026-03-04 23:59",
         "open"]]
    assert "Zofia K. (again)" not in out
    assert "Ghost" not in out

    # The review is a task of the director's, due in two business days, overdue after them
    (task,) = [t for t in js(url, "marta", "task list", at) if t["task"] == "review_refusal"]
    assert (task["lead_id"], task["task_name"], task["owner"], task["due_at"], task["overdue"]) == (
        refusal, "Review the refusal (price)", "manager", "2026-03-04T23:59:59", False)
    (late,) = [t for t in js(url, "marta", "task list", "2026-03-05T09:00:00") if t["task"] == "review_refusal"]
    assert late["overdue"] is True
    assert "Review the refusal (price)" in printed(url, "marta", "task list", at)
    # ... and in the director's stand-up (JSON)
    assert [r["lead_id"] for r in js(url, "marta", "daily", at)["reviews"]] == [refusal]
    # the other team's director, the salesperson and a department see none of it
    assert js(url, "radu", "review list", at) == []
    assert refused(url, "anna", "review list", at) == (
        "Error: user 'anna' (salesperson) may not see refusal reviews: they are the sales director's")
    assert refused(url, "olga", "review list", at) == (
        "Error: user 'olga' (analyst) may not see refusal reviews: they are the sales director's")
    assert all(t["task"] != "review_refusal" for t in js(url, "anna", "task list", at))


def test_a_review_is_due_two_business_days_after_the_refusal_skipping_weekends_and_holidays(url: str) -> None:
    thursday = add(url, "anna", "Before the weekend")
    before_easter = add(url, "anna", "Before Easter")
    ok(url, "anna", f"lead close {thursday} --reason bad_timing", "2026-03-05T16:00:00")
    ok(url, "anna", f"lead close {before_easter} --reason competitor", "2026-04-02T16:00:00")
    due = {r["lead_id"]: r["due_at"] for r in js(url, "marta", "review list", "2026-04-02T17:00:00")}
    assert due == {thursday: "2026-03-09T23:59:59",        # Friday, (weekend), Monday
                   before_easter: "2026-04-07T23:59:59"}   # Friday, (weekend, Easter Monday), Tuesday


def test_review_return_reopens_into_the_lost_stage_and_gives_the_client_to_another_salesperson(url: str) -> None:
    lead = add(url, "anna", "Łukasz Żółć", value="45000")
    to_first_contact(url, lead, "anna")
    ok(url, "anna", f"task done {lead} call_client", "2026-03-02T09:30:00")
    ok(url, "anna", f"lead close {lead} --reason no_budget --note 'bank said no'", "2026-03-02T10:00:00")

    back = "2026-03-03T09:00:00"
    out = printed(url, "marta", f"review return {lead} --note '10% off and a leasing offer' --to piotr", back)
    assert out == f"Lead {lead} returned to 'Make the first contact' (first_contact), owner piotr\n"

    shown = js(url, "piotr", f"lead show {lead}", back)
    assert (shown["status"], shown["stage"], shown["owner"], shown["team"]) == (
        "open", "first_contact", "piotr", "north")
    assert (shown["closed_at"], shown["close_reason"], shown["close_note"]) == (None, None, None)
    tasks = {t["id"]: t for t in shown["tasks"]}
    assert (tasks["record_contact"]["state"], tasks["record_contact"]["done_by"]) == ("done", "anna")
    assert (tasks["call_client"]["state"], tasks["call_client"]["done_by"]) == ("done", "anna")  # work kept
    assert tasks["book_meeting"]["state"] == "open"
    assert tasks["book_meeting"]["due_at"] == shown["stage_due_at"] == "2026-03-05T23:59:59"  # clock restarts

    history = js(url, "marta", f"lead history {lead}", back)
    assert [e["kind"] for e in history][-4:] == ["closed", "review_returned", "reopened", "assigned"]
    returned = history[-3]
    assert (returned["actor"], returned["at"], returned["data"]) == (
        "marta", back, {"note": "10% off and a leasing offer", "stage": None, "to": "piotr"})
    assert history[-1]["data"] == {"from": "anna", "to": "piotr", "team": "north"}

    assert js(url, "marta", "review list", back) == []
    (decided,) = js(url, "marta", "review list --all", back)
    assert (decided["state"], decided["decided_by"], decided["decided_at"], decided["decision_note"]) == (
        "returned", "marta", back, "10% off and a leasing offer")
    # the new owner has the stage's open tasks; the review is no longer the director's task
    assert [t["task"] for t in js(url, "piotr", "task list", back)] == ["book_meeting"]
    assert all(t["task"] != "review_refusal" for t in js(url, "marta", "task list", back))

    # deciding twice is refused, either way
    assert refused(url, "marta", f"review return {lead} --to pawel", back) == (
        f"Error: lead {lead} has no open refusal review")
    assert refused(url, "marta", f"review confirm {lead} --note again", back) == (
        f"Error: lead {lead} has no open refusal review")


def test_review_return_to_another_stage_keeps_the_owner(url: str) -> None:
    lead = add(url, "anna", "Stage picker")
    to_first_contact(url, lead, "anna")
    ok(url, "anna", f"lead close {lead} --reason bad_timing", "2026-03-02T10:00:00")
    # (after the closing: a lead's events never go back in time)
    assert refused(url, "marta", f"review return {lead} --stage nosuch", "2026-03-02T11:00:00").startswith(
        "Error: stage 'nosuch' does not exist in process photovoltaics")
    # (into an earlier stage: a lead reopens only into the stage it was closed in or an earlier one)
    assert refused(url, "marta", f"review return {lead} --stage first_meeting", "2026-03-03T09:00:00") == (
        f"Error: can't reopen lead {lead} into 'first_meeting': it was closed in 'first_contact', and a lead "
        "reopens only into that stage or an earlier one: register_lead, first_contact")
    out = printed(url, "marta", f"review return {lead} --stage register_lead --note 'ready to meet now'",
                  "2026-03-03T09:00:00")
    assert out == f"Lead {lead} returned to 'Register the lead' (register_lead), owner anna\n"
    shown = js(url, "anna", f"lead show {lead}", "2026-03-03T09:00:00")
    assert (shown["status"], shown["stage"], shown["owner"]) == ("open", "register_lead", "anna")
    assert kinds(url, "anna", lead)[-2:] == ["review_returned", "reopened"]  # no reassignment
    as_json = js(url, "marta", "review list --all")
    assert [(r["state"], r["decision_note"]) for r in as_json] == [("returned", "ready to meet now")]


def test_review_confirm_records_the_note_in_the_history(url: str) -> None:
    lead = add(url, "anna", "SunCo's client", value="52000")
    ok(url, "anna", f"lead close {lead} --reason competitor", "2026-03-02T10:00:00")
    assert refused(url, "marta", f"review confirm {lead} --note '   '") == (
        "Error: confirming a refusal needs a note: what did the client say?")
    assert "Missing option '--note'" in refused(url, "marta", f"review confirm {lead}", code=2)

    at = "2026-03-03T11:00:00"
    out = printed(url, "marta", f"review confirm {lead} --note 'called: SunCo offered a longer warranty'", at)
    assert out == f"Refusal of lead {lead} confirmed\n"
    shown = js(url, "marta", f"lead show {lead}", at)
    assert (shown["status"], shown["close_reason"]) == ("lost", "competitor")  # the refusal stands
    last = js(url, "marta", f"lead history {lead}", at)[-1]
    assert (last["kind"], last["actor"], last["at"], last["data"]) == (
        "review_confirmed", "marta", at, {"note": "called: SunCo offered a longer warranty"})
    assert "note=called: SunCo offered a longer warranty" in printed(url, "marta", f"lead history {lead}", at)
    (decided,) = js(url, "marta", "review list --all", at)
    assert (decided["state"], decided["decided_by"], decided["decision_note"]) == (
        "confirmed", "marta", "called: SunCo offered a longer warranty")
    assert js(url, "marta", "review list", at) == []
    assert refused(url, "marta", f"review confirm {lead} --note twice", at) == (
        f"Error: lead {lead} has no open refusal review")
    assert refused(url, "marta", f"review return {lead}", at) == f"Error: lead {lead} has no open refusal review"


@pytest.mark.local_only(HIDDEN)
def test_only_a_director_of_the_leads_team_decides_a_review(url: str) -> None:
    lead = add(url, "anna", "Undecided")
    ok(url, "anna", f"lead close {lead} --reason price", "2026-03-02T10:00:00")
    who = {"anna": "user 'anna' (salesperson, team north)", "piotr": "user 'piotr' (salesperson, team north)",
           "radu": "user 'radu' (manager, team south)", "olga": "user 'olga' (analyst, team north)"}
    for user, desc in who.items():
        expected = (f"Error: {desc} may not decide the review of lead {lead}: only a manager of team north "
                    "or an admin may") if user in ("anna", "olga") else (  # who may not see the lead hears no more
            f"Error: {desc} may not see lead {lead}: only its owner, a manager of its team, its team's departments "
            "or an admin may")
        assert refused(url, user, f"review return {lead} --to piotr") == expected
        assert refused(url, user, f"review confirm {lead} --note 'I agree'") == expected
    assert [r["state"] for r in js(url, "marta", "review list")] == ["open"]
    # the director of another team may not hand the client to one of their own people either
    assert refused(url, "marta", f"review return {lead} --to ioana", "2026-03-02T11:00:00") == (
        "Error: user 'marta' (manager, team north) may not assign a lead to ioana: only a manager of team "
        "south or an admin may")
    # an admin may decide any team's review
    assert printed(url, "root", f"review confirm {lead} --note 'checked'", "2026-03-02T11:00:00") == (
        f"Refusal of lead {lead} confirmed\n")


def test_a_refusal_reopened_by_hand_no_longer_waits_for_review(url: str) -> None:
    lead = add(url, "anna", "Came back by itself")
    ok(url, "anna", f"lead close {lead} --reason price", "2026-03-02T10:00:00")
    ok(url, "marta", f"lead reopen {lead}", "2026-03-02T11:00:00")  # the client called back the same day
    assert js(url, "marta", "review list", "2026-03-02T11:00:00") == []
    (review,) = js(url, "marta", "review list --all", "2026-03-02T11:00:00")
    assert (review["state"], review["decided_by"], review["decided_at"], review["decision_note"]) == (
        "superseded", "marta", "2026-03-02T11:00:00", "the lead was reopened")
    assert all(t["task"] != "review_refusal" for t in js(url, "marta", "task list", "2026-03-02T11:00:00"))
    assert refused(url, "marta", f"review confirm {lead} --note 'client says no'", "2026-03-02T11:00:00") == (
        f"Error: lead {lead} has no open refusal review")


def test_the_directors_stand_up_lists_the_refusals_to_review(url: str) -> None:
    lead = add(url, "anna", "Refused Client")
    ok(url, "anna", f"lead close {lead} --reason price", "2026-03-02T10:00:00")
    out = printed(url, "marta", "daily", "2026-03-02T11:00:00")
    assert "Refused Client" in out
    assert "review" in out.lower()


# ================================================================================================
# Reports, extensions, recalls and stalled leads
# ================================================================================================


@pytest.mark.local_only(HIDDEN)
def test_the_owner_files_a_report(url: str) -> None:
    lead = add(url, "anna", "Reported")
    at = "2026-03-04T15:00:00"
    assert printed(url, "anna", f"lead report {lead} --text 'client waits for the bank'", at) == (
        f"Report filed on lead {lead}\n")
    shown = js(url, "anna", f"lead show {lead}", at)
    assert (shown["last_report"], shown["last_report_at"], shown["last_activity_at"]) == (
        "client waits for the bank", at, at)
    assert (shown["extended_until"], shown["extension_reason"]) == (None, None)
    last = js(url, "anna", f"lead history {lead}", at)[-1]
    assert (last["kind"], last["actor"], last["data"]) == ("reported", "anna", {"text": "client waits for the bank"})
    # a manager of the team may report too; a colleague may not
    assert printed(url, "marta", f"lead report {lead} --text 'spoke to the client myself'", at) == (
        f"Report filed on lead {lead}\n")
    assert refused(url, "piotr", f"lead report {lead} --text 'not mine'", at) == (
        f"Error: user 'piotr' (salesperson, team north) may not see lead {lead}: only its owner, a manager of "
        "its team, its team's departments or an admin may")
    assert refused(url, "radu", f"lead report {lead} --text 'not mine'", at).startswith(
        f"Error: user 'radu' (manager, team south) may not see lead {lead}")
    assert refused(url, "anna", f"lead report {lead} --text '  '", at) == (
        "Error: the report is empty; say what happened with the client")
    assert refused(url, "anna", f"lead report {lead} --text x --reason 'no date'", at) == (
        "Error: --reason goes with --extend-until")
    assert "Missing option '--text'" in refused(url, "anna", f"lead report {lead}", at, code=2)
    ok(url, "anna", f"lead close {lead} --reason duplicate", at)
    assert refused(url, "anna", f"lead report {lead} --text late", at) == (
        f"Error: can't report on lead {lead}: it is lost (closed {at}); a manager may reopen it")


def test_a_managers_extension_keeps_a_lead_out_of_stalled_until_its_date(url: str) -> None:
    lead = add(url, "anna", "Grant pending", "2026-01-02T09:00:00")  # held > 60 days from March 3rd
    at = "2026-03-05T09:00:00"
    (row,) = js(url, "marta", "stalled", at)["leads"]
    assert (row["lead_id"], row["why"]) == (lead, "held 62 days, longer than the 60-day sales cycle")

    # a salesperson may not extend: refused, and not even the report part is written
    assert refused(url, "anna", [
        "lead", "report", str(lead), "--text", "grant decision in April", "--extend-until", "2026-04-30",
        "--reason", "public funding"], at) == (
        f"Error: user 'anna' (salesperson, team north) may not extend lead {lead}: only a manager of team "
        "north or an admin may")
    # --extend-until without --reason is bad usage; dates in the past or unreadable are refused
    assert refused(url, "marta", f"lead report {lead} --text x --extend-until 2026-04-30", at, code=2) == (
        "Error: --extend-until needs --reason: the objective reason for the extension")
    assert refused(url, "marta", f"lead report {lead} --text x --extend-until 2026-03-01 --reason y", at) == (
        "Error: --extend-until 2026-03-01 is not in the future")
    assert refused(url, "marta", f"lead report {lead} --text x --extend-until soon --reason y", at) == (
        "Error: --extend-until 'soon' is not an ISO-8601 date-time such as 2026-03-02T09:30")

    out = printed(url, "marta", ["lead", "report", str(lead), "--text", "grant decision in April",
                            "--extend-until", "2026-04-30", "--reason", "waiting for the Mój Prąd grant"], at)
    assert out == f"Report filed on lead {lead}; extended until 2026-04-30 23:59\n"
    shown = js(url, "marta", f"lead show {lead}", at)
    assert (shown["extended_until"], shown["extension_reason"], shown["last_report"]) == (
        "2026-04-30T23:59:59", "waiting for the Mój Prąd grant", "grant decision in April")
    history = js(url, "marta", f"lead history {lead}", at)
    assert [(e["kind"], e["data"]) for e in history[-2:]] == [
        ("reported", {"text": "grant decision in April"}),
        ("extended", {"until": "2026-04-30T23:59:59", "reason": "waiting for the Mój Prąd grant"})]

    for still_extended in (at, "2026-04-15T09:00:00", "2026-04-30T23:59:00"):
        assert js(url, "marta", "stalled", still_extended)["leads"] == []
        assert js(url, "marta", "rotate --dry-run", still_extended)["moves"] == []
    (row,) = js(url, "marta", "stalled", "2026-05-01T00:00:01")["leads"]
    assert (row["lead_id"], row["latest_report"], row["why"]) == (
        lead, "grant decision in April", "held 118 days, longer than the 60-day sales cycle")


@pytest.mark.local_only(HIDDEN)
def test_a_recall_makes_a_lead_stalled_at_once(url: str) -> None:
    lead = add(url, "anna", "Recalled")
    assert js(url, "marta", "stalled")["leads"] == []
    assert refused(url, "anna", f"lead recall {lead}") == (
        f"Error: user 'anna' (salesperson, team north) may not recall lead {lead}: only a manager of team "
        "north or an admin may")
    assert refused(url, "radu", f"lead recall {lead}") == (  # (who may not see the lead hears no more)
        f"Error: user 'radu' (manager, team south) may not see lead {lead}: only its owner, a manager of its "
        "team, its team's departments or an admin may")
    assert printed(url, "marta", f"lead recall {lead} --note 'anna is overloaded'") == (
        f"Lead {lead} recalled from anna; 'leadflow rotate' gives it to a colleague\n")
    (row,) = js(url, "marta", "stalled")["leads"]
    assert (row["lead_id"], row["owner"], row["days_held"], row["why"]) == (
        lead, "anna", 0, "recalled by a manager")
    assert [r["lead_id"] for r in js(url, "anna", "stalled")["leads"]] == [lead]  # the owner sees it too
    last = js(url, "marta", f"lead history {lead}")[-1]
    assert (last["kind"], last["actor"], last["data"]) == (
        "recalled", "marta", {"from": "anna", "note": "anna is overloaded"})
    assert js(url, "marta", f"lead show {lead}")["recalled_at"] == TEST_NOW
    ok(url, "anna", f"lead close {lead} --reason duplicate")
    assert refused(url, "marta", f"lead recall {lead}") == (
        f"Error: can't recall lead {lead}: it is lost (closed {TEST_NOW}); a manager may reopen it")


def test_stalled_json_shape_the_why_and_who_sees_what(url: str) -> None:
    old = add(url, "anna", "Old", "2026-01-02T09:00:00", value="12000")     # beyond the 60-day cycle
    idle = add(url, "anna", "Idle", "2026-02-16T09:00:00")                  # 21 idle days from March 9th
    busy = add(url, "anna", "Busy", "2026-02-16T09:00:00")
    recalled = add(url, "piotr", "Recalled", "2026-03-09T09:00:00")
    south = add(url, "ioana", "South", "2026-01-02T09:00:00")
    ok(url, "anna", f"lead report {busy} --text 'waits for the bank'", "2026-03-05T09:00:00")
    ok(url, "marta", f"lead recall {recalled}", "2026-03-09T10:00:00")

    at = "2026-03-10T09:00:00"
    data = js(url, "marta", "stalled", at)
    assert set(data) == {"as_of", "cycles", "leads"}
    assert data["as_of"] == at
    assert set(data["cycles"]) == ALL_PROCESSES
    assert data["cycles"][PV] == {"days": 60.0, "basis": "declared in the process"}
    for row in data["leads"]:
        assert set(row) == STALLED_LEAD_KEYS
    # oldest ownership first
    assert [(r["lead_id"], r["why"]) for r in data["leads"]] == [
        (old, "held 67 days, longer than the 60-day sales cycle"),
        (idle, "no activity for 22 days"),
        (recalled, "recalled by a manager")]
    first = data["leads"][0]
    assert {k: first[k] for k in ("name", "process", "stage", "owner", "days_held", "last_activity_at",
                                  "latest_report", "latest_report_at", "value")} == {
        "name": "Old", "process": PV, "stage": "register_lead", "owner": "anna", "days_held": 67,
        "last_activity_at": "2026-01-02T09:00:00", "latest_report": None, "latest_report_at": None,
        "value": "12000.00"}

    out = printed(url, "marta", "stalled", at)
    assert "photovoltaics: sales cycle 60.0 days (declared in the process)\n" in out
    assert "3 stalled leads" in out
    assert "held 67 days, longer than the 60-day sales cycle" in out
    # scopes: a salesperson their own, a director their team, an admin everyone
    assert [r["lead_id"] for r in js(url, "anna", "stalled", at)["leads"]] == [old, idle]
    assert [r["lead_id"] for r in js(url, "marta", "stalled --owner piotr", at)["leads"]] == [recalled]
    assert [r["lead_id"] for r in js(url, "radu", "stalled", at)["leads"]] == [south]
    assert {r["lead_id"] for r in js(url, "root", "stalled", at)["leads"]} == {old, idle, recalled, south}
    assert set(js(url, "marta", "stalled --process photovoltaics", at)["cycles"]) == {PV}
    assert refused(url, "anna", "stalled --team south", at) == (
        "Error: user 'anna' (salesperson) sees only their own leads")
    assert refused(url, "anna", "stalled --owner piotr", at) == (
        "Error: user 'anna' (salesperson) sees only their own leads")
    assert refused(url, "olga", "stalled", at) == (
        "Error: user 'olga' (analyst) has no board; boards are for salespeople and managers")
    assert refused(url, "marta", "stalled --team south", at) == (
        "Error: user 'marta' (manager, team north) may not see team south: only a manager of team south or an "
        "admin may")
    assert refused(url, "marta", "stalled --owner nobody", at) == "Error: user 'nobody' does not exist"
    assert refused(url, "marta", "stalled --process nosuch", at).startswith(
        "Error: process 'nosuch' is not loaded")


def test_closed_won_and_unowned_leads_are_never_stalled(url: str) -> None:
    lost = add(url, "anna", "Lost", "2026-01-02T09:00:00")
    ok(url, "anna", f"lead close {lost} --reason no_need", "2026-01-03T09:00:00")
    js(url, "marta", ["lead", "add", "--process", PV, "--name", "Nobody's"], "2026-01-02T09:00:00")
    assert js(url, "root", "stalled", "2026-03-10T09:00:00")["leads"] == []


REQUIRED = {"first_meeting": {"roof_type": "pitched", "roof_area_m2": "38", "financing": "cash"},
            "send_offer": {"offer_value": "48000"}}


def win(engine: Engine, lead_id: int) -> None:
    """Drive a lead to a sale through the engine (as an admin, who may do every task)."""
    while True:
        lead = engine.get_lead(lead_id)
        if lead["stage"] in REQUIRED:
            engine.set_fields(lead_id, REQUIRED[lead["stage"]])
        for task in lead["tasks"]:
            if task["stage"] == lead["stage"] and task["state"] == "open" and task["mandatory"]:
                engine.complete_task(lead_id, task["id"])
        if lead["stage"] == "close_contract":
            engine.win(lead_id)
            return
        engine.advance(lead_id)


def test_the_measured_cycle_replaces_the_declared_one_from_twenty_won_leads(url: str) -> None:
    from engine.reports import MIN_WON_FOR_MEASURED_CYCLE

    assert MIN_WON_FOR_MEASURED_CYCLE == 20
    root = Engine.open(url, user="root")
    try:
        # twenty real sales, each won 30 days after its creation (plus i hours)
        for i in range(MIN_WON_FOR_MEASURED_CYCLE):
            with clock.frozen(dt.datetime(2025, 12, 1, 9, 0)):
                lead = root.add_lead(process=PV, name=f"Won {i}", owner="piotr")
            with clock.frozen(dt.datetime(2025, 12, 31, 9, 0) + dt.timedelta(hours=i)):
                win(root, lead["id"])
            if i == MIN_WON_FOR_MEASURED_CYCLE - 2:  # 19 sales: still the declared cycle
                assert js(url, "marta", "stalled --process photovoltaics", "2026-01-01T09:00:00")["cycles"][PV] == {
                    "days": 60.0, "basis": "declared in the process"}
    finally:
        root.close()
    held = add(url, "anna", "Held 35 days", "2026-01-20T09:00:00")
    ok(url, "anna", f"lead report {held} --text 'still thinking'", "2026-02-20T09:00:00")  # not idle
    at = "2026-02-24T09:00:00"
    data = js(url, "marta", "stalled", at)
    # median of 30 days + 9 and 10 hours (the 10th and 11th of 20)
    assert data["cycles"][PV] == {"days": 30.4, "basis": "measured median of 20 won leads"}
    assert data["cycles"]["mortgage"] == {"days": 60.0, "basis": "declared in the process"}
    assert [(r["lead_id"], r["why"]) for r in data["leads"]] == [
        (held, "held 35 days, longer than the 30-day sales cycle")]
    assert "photovoltaics: sales cycle 30.4 days (measured median of 20 won leads)" in printed(
        url, "marta", "stalled", at)


def test_the_why_of_a_lead_held_just_beyond_the_cycle_names_the_cycle(url: str) -> None:
    lead = add(url, "anna", "Half a day over", "2025-12-31T21:00:00")
    ok(url, "anna", f"task done {lead} record_contact", "2026-03-01T09:00:00")  # active yesterday
    (row,) = js(url, "marta", "stalled", "2026-03-02T09:00:00")["leads"]  # held 60.5 days
    assert row["lead_id"] == lead
    assert row["why"].startswith("held 60 days")
    assert "60-day sales cycle" in row["why"]


# ================================================================================================
# Rotation
# ================================================================================================


def test_rotate_dry_run_changes_nothing_and_prints_the_plan(url: str) -> None:
    big = add(url, "anna", "Big client", "2026-01-02T09:00:00", value="90000")
    small = add(url, "anna", "Small client", "2026-01-02T09:00:00", value="9000")
    at = "2026-03-06T09:00:00"
    before = snapshot(url)
    out = printed(url, "marta", "rotate --dry-run", at)
    assert snapshot(url) == before  # row for row
    lines = out.splitlines()
    assert lines[0] == f"Rotation as of {at}: would move 2 leads"
    assert lines[-1] == "Dry run: nothing was changed."
    assert [cells(line) for line in lines if "client" in line and "│" in line] == [
        [str(big), "Big client", "90000.00", "anna", "pawel", "north"],
        [str(small), "Small client", "9000.00", "anna", "piotr", "north"]]
    plan = js(url, "marta", "rotate --dry-run", at)
    assert snapshot(url) == before
    assert set(plan) == {"as_of", "dry_run", "moves", "unplaced"}
    assert (plan["as_of"], plan["dry_run"], plan["unplaced"]) == (at, True, [])
    for move in plan["moves"]:
        assert set(move) == MOVE_KEYS
    assert [(m["lead_id"], m["value"], m["from"], m["to"], m["team"]) for m in plan["moves"]] == [
        (big, "90000.00", "anna", "pawel", "north"),   # the most valuable first, to the least loaded
        (small, "9000.00", "anna", "piotr", "north")]

    done = js(url, "marta", "rotate", at)
    assert done["dry_run"] is False
    assert done["moves"] == plan["moves"]  # the plan is what happens
    assert {lead: js(url, "marta", f"lead show {lead}", at)["owner"] for lead in (big, small)} == {
        big: "pawel", small: "piotr"}
    counts_agree_with_the_leads(url)
    # nothing stalled is left
    assert printed(url, "marta", "rotate", at).splitlines()[0] == f"Rotation as of {at}: moved 0 leads"
    assert js(url, "marta", "rotate", at)["moves"] == []


def test_rotation_never_returns_a_client_to_someone_who_worked_it_recently(url: str) -> None:
    lead = add(url, "anna", "Hard client", "2025-09-01T09:00:00")
    client = js(url, "anna", f"lead show {lead}", "2025-09-01T09:00:00")["client_id"]

    # 1st rotation: anna held it beyond the cycle; pawel and piotr are equally loaded, by name pawel
    (move,) = js(url, "marta", "rotate", "2025-11-03T09:00:00")["moves"]
    assert (move["from"], move["to"]) == ("anna", "pawel")

    # pawel rests a month and then does nothing for 22 days: stalled again (idle counts after the rest)
    at = "2025-12-26T09:00:00"
    (row,) = js(url, "marta", "stalled", at)["leads"]
    assert (row["lead_id"], row["owner"], row["why"]) == (lead, "pawel", "no activity for 23 days")
    # Without memory anna (as unloaded as piotr, and first by name) would get her client back ...
    (forgetful,) = js(url, "marta", "rotate --dry-run --memory 0", at)["moves"]
    assert (forgetful["from"], forgetful["to"]) == ("pawel", "anna")
    # ... with the default memory of 3 it goes to the one who has not worked it
    (move,) = js(url, "marta", "rotate", at)["moves"]
    assert (move["from"], move["to"]) == ("pawel", "piotr")

    # 3rd time: all three worked the client within its last three ownerships
    at = "2026-02-20T09:00:00"
    out = printed(url, "marta", "rotate", at)
    assert out.splitlines()[0] == f"Rotation as of {at}: moved 0 leads, 1 could not be placed"
    assert f"  not placed: lead {lead} (piotr): every salesperson of team north worked this client recently\n" in out
    plan = js(url, "marta", "rotate --dry-run", at)
    assert (plan["moves"], plan["unplaced"]) == ([], [
        {"lead_id": lead, "owner": "piotr", "why": "every salesperson of team north worked this client recently"}])
    # remembering only the last owner (piotr himself), anna and pawel are eligible again
    assert [m["to"] for m in js(url, "marta", "rotate --dry-run --memory 1", at)["moves"]] == ["anna"]
    # --memory 0: only the current owner is excluded
    assert [m["to"] for m in js(url, "marta", "rotate --dry-run --memory 0", at)["moves"]] == ["anna"]

    # who worked the client, in order, is kept
    assert ownerships(url, client) == [("anna", "created"), ("pawel", "rotated"), ("piotr", "rotated")]
    assert [(e["data"]["from"], e["data"]["to"]) for e in js(url, "marta", f"lead history {lead}", at)
            if e["kind"] == "rotated"] == [("anna", "pawel"), ("pawel", "piotr")]


def test_rotation_balances_the_load_counting_open_leads(url: str) -> None:
    stalled = [add(url, "anna", f"Stalled {i}", "2026-01-02T09:00:00", value=str(1000 * (i + 1)))
               for i in range(6)]
    for i in range(2):
        add(url, "piotr", f"Piotr's fresh {i}", "2026-03-01T09:00:00")
    south = add(url, "ioana", "South stalled", "2026-01-02T09:00:00")
    at = "2026-03-06T09:00:00"
    assert open_counts(url) == {"anna": 6, "piotr": 2, "ioana": 1}

    plan = js(url, "marta", "rotate", at)
    assert [m["lead_id"] for m in plan["moves"]] == stalled[::-1]  # the most valuable placed first
    assert [m["to"] for m in plan["moves"]] == ["pawel", "pawel", "pawel", "piotr", "pawel", "piotr"]
    # pawel (0) gets leads until he is level with piotr (2), then they alternate: both end with 4
    assert open_counts(url) == {"pawel": 4, "piotr": 4, "ioana": 1}
    counts_agree_with_the_leads(url)
    # marta's rotation stays in her team; south has one salesperson, who is the owner: nobody to take it
    plan = js(url, "root", "rotate --dry-run", at)
    assert plan["moves"] == []
    assert plan["unplaced"] == [{"lead_id": south, "owner": "ioana",
                                 "why": "every salesperson of team south worked this client recently"}]
    assert refused(url, "marta", "rotate --team south", at) == (
        "Error: user 'marta' (manager, team north) may not see team south: only a manager of team south or an "
        "admin may")


@pytest.mark.local_only(HIDDEN)
def test_a_rotated_lead_rests_then_restarts_its_stage_for_the_new_owner_with_its_history(url: str) -> None:
    # the client lost an earlier lead; the revisit lead is the one that stalls and rotates
    first = add(url, "anna", "Łukasz Żółć", "2025-09-01T09:00:00")
    client = js(url, "anna", f"lead show {first}", "2025-09-01T09:00:00")["client_id"]
    ok(url, "anna", f"lead close {first} --reason no_authority", "2025-09-02T09:00:00")
    lead = int(js(url, "anna", f"revisit start {client} --process photovoltaics", "2026-01-02T09:00:00")["id"])
    to_first_contact(url, lead, "anna", "2026-03-04T09:00:00")
    ok(url, "anna", f"task done {lead} call_client", "2026-03-04T09:00:00")

    at = "2026-03-06T09:00:00"  # a Friday; 63 days held
    (move,) = js(url, "marta", "rotate", at)["moves"]
    assert (move["lead_id"], move["from"], move["to"]) == (lead, "anna", "pawel")

    shown = js(url, "pawel", f"lead show {lead}", at)
    assert (shown["owner"], shown["team"], shown["stage"], shown["status"]) == ("pawel", "north", "first_contact",
                                                                                "open")
    # rest = cool_off_days (30); the stage's 2 business days count from its end (Easter Monday is a holiday)
    assert shown["rest_until"] == "2026-04-05T09:00:00"
    assert shown["stage_due_at"] == "2026-04-08T23:59:59"
    assert (shown["recalled_at"], shown["extended_until"]) == (None, None)
    stage_tasks = [t for t in shown["tasks"] if t["stage"] == "first_contact"]
    assert [(t["id"], t["state"], t["done_by"], t["due_at"]) for t in stage_tasks] == [
        ("call_client", "open", None, "2026-04-08T23:59:59"),   # the stage restarts for the new owner
        ("book_meeting", "open", None, "2026-04-08T23:59:59")]
    earlier = next(t for t in shown["tasks"] if t["id"] == "record_contact")
    assert (earlier["state"], earlier["done_by"]) == ("done", "anna")
    # the new owner sees the client's whole history: its other leads, here anna's lost one
    assert [set(x) for x in shown["client_leads"]] == [CLIENT_LEAD_KEYS]
    director = js(url, "marta", f"lead show {lead}", at)["client_leads"]
    assert [set(x) for x in director] == [CLIENT_LEAD_KEYS]
    assert [(x["id"], x["status"], x["owner"], x["close_reason"]) for x in director] == [
        (first, "lost", "anna", "no_authority")]
    # the whole history, ending with the rotation
    history = js(url, "pawel", f"lead history {lead}", at)
    assert [e["kind"] for e in history] == ["created", "task_done", "advanced", "task_done", "rotated"]
    assert (history[-1]["actor"], history[-1]["data"]) == (
        "marta", {"from": "anna", "to": "pawel", "team": "north", "rest_until": "2026-04-05T09:00:00"})
    text = printed(url, "pawel", f"lead show {lead}", at)
    assert "owner pawel (team north)" in text
    assert "from=anna, rest_until=2026-04-05T09:00:00, team=north, to=pawel" in text

    # nothing of it is due during the rest: not in the new owner's overdue tasks, not red, not stalled
    tasks = js(url, "pawel", "task list", "2026-04-07T09:00:00")
    assert [(t["task"], t["due_at"], t["overdue"]) for t in tasks] == [
        ("call_client", "2026-04-08T23:59:59", False), ("book_meeting", "2026-04-08T23:59:59", False)]
    assert js(url, "marta", "stalled", "2026-04-07T09:00:00")["leads"] == []
    assert js(url, "pawel", "daily", "2026-04-07T09:00:00")["people"][0]["red"]["count"] == 0
    assert js(url, "pawel", "daily", "2026-04-09T09:00:00")["people"][0]["red"]["count"] == 1
    # the previous owner no longer sees it
    assert refused(url, "anna", f"lead show {lead}", at).startswith(
        f"Error: user 'anna' (salesperson, team north) may not see lead {lead}")
    counts_agree_with_the_leads(url)
    root = Engine.open(url, user="root")
    try:
        assert root.rebuild_lead(lead).comparable() == root.stored_lead(lead).comparable()
    finally:
        root.close()


def test_a_lead_of_a_team_without_salespeople_is_not_rotated_into_another_team(url: str) -> None:
    ok(url, "root", "user add boss --role manager --team east")
    lead = int(js(url, "boss", ["lead", "add", "--process", PV, "--name", "East client", "--owner", "boss"],
                  "2026-01-02T09:00:00")["id"])
    plan = js(url, "root", "rotate --dry-run", "2026-03-06T09:00:00")
    assert plan["moves"] == []
    assert [u["lead_id"] for u in plan["unplaced"]] == [lead]


def test_rotation_is_for_managers_and_bad_options_change_nothing(url: str) -> None:
    add(url, "anna", "Stalled", "2026-01-02T09:00:00")
    at = "2026-03-06T09:00:00"
    assert refused(url, "anna", "rotate", at) == (
        "Error: user 'anna' (salesperson) may not rotate leads: only a manager or an admin may")
    assert refused(url, "olga", "rotate --dry-run", at) == (
        "Error: user 'olga' (analyst) may not rotate leads: only a manager or an admin may")
    assert refused(url, "marta", "rotate --process nosuch", at).startswith(
        "Error: process 'nosuch' is not loaded")
    assert refused(url, "marta", "rotate --memory -1", at, code=2) == (
        "Error: Invalid value for '--memory': -1 is not in the range 0<=x<=100.")
    assert refused(url, "marta", "rotate --memory many", at, code=2) == (
        "Error: Invalid value for '--memory': 'many' is not a valid integer range.")
    assert len(js(url, "marta", "rotate --process photovoltaics", at)["moves"]) == 1


# ================================================================================================
# Revisits
# ================================================================================================


def test_revisit_list_shows_a_lost_lead_on_its_revisit_date_and_not_before(url: str) -> None:
    authority = add(url, "anna", "Ask the wife")           # no_authority: revisit after 30 days
    unreachable = add(url, "anna", "Never answers")        # unreachable (a removal): after 60 days
    duplicate = add(url, "anna", "Twice")
    no_need = add(url, "anna", "Small roof")
    ok(url, "anna", f"lead close {authority} --reason no_authority", "2026-03-02T10:00:00")
    ok(url, "anna", f"lead close {unreachable} --reason unreachable", "2026-03-02T10:05:00")
    ok(url, "anna", f"lead close {duplicate} --reason duplicate", "2026-03-02T10:00:00")
    ok(url, "anna", f"lead close {no_need} --reason no_need", "2026-03-02T10:00:00")

    assert js(url, "anna", "revisit list", "2026-03-31T10:00:00") == []      # the day before
    assert js(url, "anna", "revisit list", "2026-04-01T09:59:00") == []      # 30 days not yet over
    due = js(url, "anna", "revisit list", "2026-04-01T10:00:00")
    assert [set(r) for r in due] == [REVISIT_KEYS]
    client = js(url, "anna", f"lead show {authority}")["client_id"]
    assert due == [{"lead_id": authority, "client_id": client, "name": "Ask the wife", "process": PV,
                    "reason": "no_authority", "closed_at": "2026-03-02T10:00:00", "owner": "anna"}]
    out = printed(url, "anna", "revisit list", "2026-04-01T10:00:00")
    assert out.startswith("1 revisit")
    assert "Ask the wife" in out
    # in the owner's stand-up too, and in the director's view of the team; not in the other team's
    (person,) = js(url, "anna", "daily", "2026-04-01T10:00:00")["people"]
    assert [r["lead_id"] for r in person["revisits_due"]] == [authority]
    assert [r["lead_id"] for r in js(url, "marta", "revisit list", "2026-04-01T10:00:00")] == [authority]
    assert js(url, "radu", "revisit list", "2026-04-01T10:00:00") == []
    assert js(url, "piotr", "revisit list", "2026-04-01T10:00:00") == []
    # the removal with a revisit comes 60 days on; the reasons without one never do
    assert [r["lead_id"] for r in js(url, "anna", "revisit list", "2027-03-01T10:00:00")] == [
        authority, unreachable]


def test_revisit_start_opens_a_new_lead_that_shows_the_lost_one(url: str) -> None:
    lost = add(url, "anna", "Łukasz Żółć", value="45000")
    client = js(url, "anna", f"lead show {lost}")["client_id"]
    ok(url, "anna", f"lead close {lost} --reason no_authority --note 'his wife decides'", "2026-03-02T10:00:00")
    at = "2026-04-01T11:00:00"
    assert [r["lead_id"] for r in js(url, "anna", "revisit list", at)] == [lost]

    out = printed(url, "anna", f"revisit start {client} --process photovoltaics", at)
    new = lost + 1
    assert out == (f"Lead {new} started for client {client} (Łukasz Żółć), 1 earlier lead: {lost} lost "
                   "(no_authority)\n")
    shown = js(url, "anna", f"lead show {new}", at)
    assert (shown["client_id"], shown["name"], shown["owner"], shown["source"], shown["stage"]) == (
        client, "Łukasz Żółć", "anna", "revisit", "register_lead")
    assert shown["client_leads"] == [{
        "id": lost, "process": PV, "status": "lost", "stage": "register_lead", "owner": "anna",
        "created_at": TEST_NOW, "closed_at": "2026-03-02T10:00:00", "close_reason": "no_authority"}]
    assert js(url, "anna", "revisit list", at) == []  # taken up
    assert js(url, "anna", "revisit list", "2026-12-01T09:00:00") == []
    # the lost lead shows the new one too
    assert [x["id"] for x in js(url, "anna", f"lead show {lost}", at)["client_leads"]] == [new]


def test_a_director_starts_a_revisit_for_a_salesperson(url: str) -> None:
    lost = add(url, "anna", "Returning")
    client = js(url, "anna", f"lead show {lost}")["client_id"]
    ok(url, "anna", f"lead close {lost} --reason bad_timing", "2026-03-02T10:00:00")
    new = js(url, "marta", f"revisit start {client} --process photovoltaics --owner piotr", "2026-06-01T09:00:00")
    assert (new["owner"], new["team"], new["source"]) == ("piotr", "north", "revisit")
    # the director sees the client's earlier lead, with its owner and reason ...
    assert [(x["id"], x["owner"], x["status"], x["close_reason"]) for x in new["client_leads"]] == [
        (lost, "anna", "lost", "bad_timing")]
    # ... and so does the new owner: a salesperson taking a client over sees its whole history
    assert [x["id"] for x in js(url, "piotr", f"lead show {new['id']}", "2026-06-01T09:00:00")["client_leads"]] == [
        lost]
    assert [x["id"] for x in js(url, "piotr", f"client show {client}")["leads"]] == [lost, new["id"]]
    # a salesperson may not start a revisit of a client none of whose leads they may see
    assert refused(url, "ioana", f"revisit start {client} --process photovoltaics") == (
        f"Error: client {client} does not exist" if server_for(url) is not None else  # hidden through a server
        f"Error: user 'ioana' (salesperson) may not see client {client}: none of its leads is theirs to see")
    # a director's revisit without --owner waits, unassigned, in the director's team
    waiting = js(url, "marta", f"revisit start {client} --process photovoltaics", "2026-06-01T09:00:00")
    assert (waiting["owner"], waiting["team"]) == (None, "north")
    assert refused(url, "marta", f"revisit start {client} --process photovoltaics --owner ioana").startswith(
        "Error: user 'marta' (manager, team north) may not add a lead for ioana")


# ================================================================================================
# The monthly removals summary
# ================================================================================================


def removals_floor(url: str) -> dict[str, int]:
    """March's closures: the team north's six (one reopened in April, one taken up by a revisit), one of
    team south, one in February."""
    march = "2026-03-10T09:00:00"
    ids = {
        "A": add(url, "anna", "A", value="10000", product="PV 5 kWp"),
        "B": add(url, "anna", "B", value="70000", product="PV 10 kWp"),
        "C": add(url, "piotr", "C", value="80000", product="PV 10 kWp"),
        "D": add(url, "anna", "D", value="20000"),
        "E": add(url, "piotr", "E", value="90000", product="PV 10 kWp"),
        "F": add(url, "anna", "F", value="60000", product="PV 5 kWp"),
        "G": add(url, "anna", "G", "2026-02-20T09:00:00", value="99000"),
        "H": add(url, "ioana", "H", value="70000"),
    }
    closing = {"A": "price", "B": "price", "C": "no_need", "D": "duplicate", "E": "competitor",
               "F": "unreachable", "H": "price"}
    for name, reason in closing.items():
        owner = {"C": "piotr", "E": "piotr", "H": "ioana"}.get(name, "anna")
        ok(url, owner, f"lead close {ids[name]} --reason {reason}", march)
    ok(url, "anna", f"lead close {ids['G']} --reason bad_timing", "2026-02-27T09:00:00")
    ok(url, "marta", f"lead reopen {ids['E']}", "2026-04-02T09:00:00")                 # reopened in April
    f_client = js(url, "anna", f"lead show {ids['F']}")["client_id"]
    ok(url, "anna", f"revisit start {f_client} --process photovoltaics", "2026-03-20T09:00:00")  # taken up
    return ids


def test_removals_counts_a_months_closures_by_reason_salesperson_and_product(url: str) -> None:
    ids = removals_floor(url)
    at = "2026-04-03T09:00:00"
    data = js(url, "marta", "removals --month 2026-03", at)
    assert set(data) == {"month", "kind", "total", "value", "median_value", "by_reason", "by_salesperson",
                         "by_product", "clients"}
    assert (data["month"], data["kind"], data["total"], data["value"], data["median_value"]) == (
        "2026-03", "all", 6, "330000.00", "65000.00")  # E counts in March although reopened in April
    assert data["by_reason"] == [
        {"process": PV, "reason": "price", "kind": "refusal", "count": 2, "value": "80000.00"},
        {"process": PV, "reason": "competitor", "kind": "refusal", "count": 1, "value": "90000.00"},
        {"process": PV, "reason": "duplicate", "kind": "removal", "count": 1, "value": "20000.00"},
        {"process": PV, "reason": "no_need", "kind": "refusal", "count": 1, "value": "80000.00"},
        {"process": PV, "reason": "unreachable", "kind": "removal", "count": 1, "value": "60000.00"}]
    assert data["by_salesperson"] == [{"owner": "anna", "count": 4, "value": "160000.00"},
                                      {"owner": "piotr", "count": 2, "value": "170000.00"}]
    assert data["by_product"] == [{"product": "PV 10 kWp", "count": 3, "value": "240000.00"},
                                  {"product": "PV 5 kWp", "count": 2, "value": "70000.00"},
                                  {"product": None, "count": 1, "value": "20000.00"}]
    for row in data["clients"]:
        assert set(row) == REMOVAL_CLIENT_KEYS
    # worth returning to first: a reason with a revisit, above the median (65000), nobody took it up again
    # (B); then by value: E taken up (reopened), C no revisit, F taken up (a new lead), D no revisit, A low
    assert [(c["name"], c["worth_returning"], c["taken_up"]) for c in data["clients"]] == [
        ("B", True, False), ("E", False, True), ("C", False, False), ("F", False, True), ("D", False, False),
        ("A", False, False)]
    b = data["clients"][0]
    assert (b["lead_id"], b["owner"], b["product"], b["reason"], b["kind"], b["closed_at"], b["value"]) == (
        ids["B"], "anna", "PV 10 kWp", "price", "refusal", "2026-03-10T09:00:00", "70000.00")

    out = printed(url, "marta", "removals --month 2026-03", at)
    assert out.splitlines()[0] == "2026-03: 6 leads closed without a sale (all), value 330000.00, median 65000.00"
    assert any("★" in line and "│ B " in line for line in out.splitlines()), out
    assert any("taken up" in line and "│ E " in line for line in out.splitlines()), out

    # --kind, and who sees what
    removals = js(url, "marta", "removals --month 2026-03 --kind removal", at)
    assert (removals["kind"], removals["total"], removals["value"], removals["median_value"]) == (
        "removal", 2, "80000.00", "40000.00")
    assert {c["name"] for c in removals["clients"]} == {"D", "F"}
    assert js(url, "marta", "removals --month 2026-03 --kind refusal", at)["total"] == 4
    assert js(url, "root", "removals --month 2026-03", at)["total"] == 7
    assert [c["name"] for c in js(url, "radu", "removals --month 2026-03", at)["clients"]] == ["H"]
    assert {c["name"] for c in js(url, "anna", "removals --month 2026-03", at)["clients"]} == {"A", "B", "D", "F"}
    assert js(url, "marta", "removals --month 2026-03 --owner piotr", at)["total"] == 2
    assert [c["name"] for c in js(url, "marta", "removals --month 2026-02", at)["clients"]] == ["G"]


def test_removals_month_boundaries_and_an_empty_month(url: str) -> None:
    last = add(url, "anna", "Last second of March")
    first = add(url, "anna", "First second of April")
    ok(url, "anna", f"lead close {last} --reason price", "2026-03-31T23:59:59")
    ok(url, "anna", f"lead close {first} --reason price", "2026-04-01T00:00:00")
    assert [c["lead_id"] for c in js(url, "marta", "removals --month 2026-03")["clients"]] == [last]
    assert [c["lead_id"] for c in js(url, "marta", "removals --month 2026-04")["clients"]] == [first]
    assert js(url, "marta", "removals --month 2026-05") == {
        "month": "2026-05", "kind": "all", "total": 0, "value": "0.00", "median_value": None, "by_reason": [],
        "by_salesperson": [], "by_product": [], "clients": []}
    out = printed(url, "marta", "removals --month 2026-05")
    assert out.splitlines()[0] == "2026-05: 0 leads closed without a sale (all), value 0.00, median -"
    assert js(url, "marta", "removals --month ' 2026-12 '")["month"] == "2026-12"


@pytest.mark.parametrize("month", ["2026-13", "March", "2026-3", "26-03", "2026-00", "2026/03", ""])
def test_removals_refuses_a_month_not_written_yyyy_mm(url: str, month: str) -> None:
    assert refused(url, "marta", ["removals", "--month", month]) == (
        f"Error: month {month!r} is not written YYYY-MM, e.g. 2026-03")


@pytest.mark.parametrize("month", ["0000-01", "9999-12"])
def test_removals_of_a_month_at_the_edge_of_the_calendar_is_no_internal_error(url: str, month: str) -> None:
    result = leadflow(url, "marta", ["removals", "--month", month, "--json"])
    assert "internal error" not in result.stderr
    if month == "9999-12":
        assert result.exit_code == 0
        assert json.loads(result.stdout)["total"] == 0
    else:
        assert check_error(result, 1) == f"Error: month {month!r} is not written YYYY-MM, e.g. 2026-03"


# ================================================================================================
# Bad input for every command: exit 1 or 2, one line, no traceback, no change
# ================================================================================================


BAD_INPUT = [
    ("marta", "review list --state open", 2, "Error: No such option '--state'."),
    ("nobody", "review list", 1, "Error: user 'nobody' is not registered; an admin adds users with 'leadflow "
                                 "user add nobody --role salesperson' (choose the acting user with --user or "
                                 "LEADFLOW_USER)"),
    ("marta", "review return 99", 1, "Error: lead 99 does not exist"),
    ("marta", "review return abc", 2, "Error: Invalid value for 'LEAD_ID': 'abc' is not a valid integer."),
    ("marta", "review return 0", 2, "Error: Invalid value for 'LEAD_ID': '0' is not a valid id: a whole number "
                                    "from 1 to 9223372036854775807"),
    ("marta", "review return 2 --to nobody", 1, "Error: user 'nobody' does not exist"),
    ("marta", "review return 2 --to olga", 1, "Error: user 'olga' (analyst) cannot own leads; owners are "
                                              "salespeople or managers"),
    ("marta", "review return 1", 1, "Error: lead 1 has no open refusal review"),
    ("marta", "review confirm 99 --note x", 1, "Error: lead 99 does not exist"),
    ("marta", "review confirm 2.5 --note x", 2, "Error: Invalid value for 'LEAD_ID': '2.5' is not a valid "
                                                "integer."),
    ("nobody", "review confirm 2 --note x", 1, "Error: user 'nobody' is not registered; an admin adds users "
                                               "with 'leadflow user add nobody --role salesperson' (choose the "
                                               "acting user with --user or LEADFLOW_USER)"),
    ("marta", "revisit list --owner nobody", 1, "Error: user 'nobody' does not exist"),
    ("anna", "revisit list --team south", 1, "Error: user 'anna' (salesperson) sees only their own leads"),
    ("marta", "revisit list --process nosuch", 1, "Error: process 'nosuch' is not loaded; loaded processes: "
                                                  "leasing, life_insurance, mortgage, photovoltaics, saas_trial"),
    ("marta", "revisit start 99 --process photovoltaics", 1, "Error: client 99 does not exist"),
    ("marta", "revisit start abc --process photovoltaics", 2, "Error: Invalid value for 'CLIENT_ID': 'abc' is "
                                                              "not a valid integer."),
    ("marta", "revisit start 1", 2, "Error: Missing option '--process'."),
    ("marta", "revisit start 1 --process nosuch", 1, "Error: process 'nosuch' is not loaded; loaded processes: "
                                                     "leasing, life_insurance, mortgage, photovoltaics, "
                                                     "saas_trial"),
    ("marta", "revisit start 1 --process photovoltaics --owner nobody", 1, "Error: user 'nobody' does not exist"),
    ("marta", "removals", 2, "Error: Missing option '--month'."),
    ("marta", "removals --month 2026-03 --kind lost", 2, "Error: Invalid value for '--kind': 'lost' is not one "
                                                         "of 'all', 'refusal', 'removal'."),
    ("marta", "removals --month 2026-03 --owner nobody", 1, "Error: user 'nobody' does not exist"),
    ("marta", "removals --month 2026-03 --process nosuch", 1, "Error: process 'nosuch' is not loaded; loaded "
                                                              "processes: leasing, life_insurance, mortgage, "
                                                              "photovoltaics, saas_trial"),
    ("nobody", "stalled", 1, "Error: user 'nobody' is not registered; an admin adds users with 'leadflow user "
                             "add nobody --role salesperson' (choose the acting user with --user or "
                             "LEADFLOW_USER)"),
    ("nobody", "rotate --dry-run", 1, "Error: user 'nobody' is not registered; an admin adds users with "
                                      "'leadflow user add nobody --role salesperson' (choose the acting user "
                                      "with --user or LEADFLOW_USER)"),
    ("marta", "rotate --team nowhere", 1, "Error: user 'marta' (manager, team north) may not see team nowhere: "
                                          "only a manager of team nowhere or an admin may"),
    ("marta", "lead report 99 --text x", 1, "Error: lead 99 does not exist"),
    ("anna", "lead report abc --text x", 2, "Error: Invalid value for 'LEAD_ID': 'abc' is not a valid integer."),
    ("anna", "lead report 1", 2, "Error: Missing option '--text'."),
    ("marta", "lead recall 99", 1, "Error: lead 99 does not exist"),
    ("marta", "lead recall -1", 2, "Error: No such option '-1'."),
    ("marta", "lead recall one", 2, "Error: Invalid value for 'LEAD_ID': 'one' is not a valid integer."),
    ("nobody", "lead recall 1", 1, "Error: user 'nobody' is not registered; an admin adds users with "
                                   "'leadflow user add nobody --role salesperson' (choose the acting user with "
                                   "--user or LEADFLOW_USER)"),
]


@pytest.mark.parametrize(("user", "command", "code", "error"), BAD_INPUT, ids=[c for _, c, _, _ in BAD_INPUT])
def test_bad_input_is_refused_with_one_line_and_changes_nothing(url: str, user: str, command: str, code: int,
                                                                error: str) -> None:
    add(url, "anna", "Open lead")                                                         # lead 1, open
    refusal = add(url, "anna", "Refused lead")                                            # lead 2, in review
    ok(url, "anna", f"lead close {refusal} --reason price")
    assert refused(url, user, command, code=code) == error


# ================================================================================================
# The review and rotation flows on SQLite and PostgreSQL (the ``team`` fixture)
# ================================================================================================


def test_the_review_flow_on_both_databases(team: Team) -> None:
    url = team.url
    returned = add(url, "anna", "Returned")
    confirmed = add(url, "anna", "Confirmed")
    duplicate = add(url, "anna", "Duplicate")
    to_first_contact(url, returned, "anna")
    at = "2026-03-02T10:00:00"
    ok(url, "anna", f"lead close {returned} --reason price", at)
    ok(url, "anna", f"lead close {confirmed} --reason competitor", at)
    ok(url, "anna", f"lead close {duplicate} --reason duplicate", at)
    assert [(r["lead_id"], r["due_at"]) for r in js(url, "marta", "review list", at)] == [
        (returned, "2026-03-04T23:59:59"), (confirmed, "2026-03-04T23:59:59")]
    assert refused(url, "anna", f"review return {returned} --to piotr", at).startswith(
        f"Error: user 'anna' (salesperson, team north) may not decide the review of lead {returned}")
    assert refused(url, "marta", f"review return {returned} --to nobody", at) == "Error: user 'nobody' does not exist"

    back = "2026-03-03T09:00:00"
    assert printed(url, "marta", f"review return {returned} --note '10% off' --to piotr", back) == (
        f"Lead {returned} returned to 'Make the first contact' (first_contact), owner piotr\n")
    assert printed(url, "marta", f"review confirm {confirmed} --note 'chose SunCo'", back) == (
        f"Refusal of lead {confirmed} confirmed\n")
    shown = js(url, "piotr", f"lead show {returned}", back)
    assert (shown["status"], shown["stage"], shown["owner"]) == ("open", "first_contact", "piotr")
    assert kinds(url, "marta", confirmed, back)[-1] == "review_confirmed"
    assert [(r["lead_id"], r["state"], r["decision_note"]) for r in js(url, "marta", "review list --all", back)] == [
        (returned, "returned", "10% off"), (confirmed, "confirmed", "chose SunCo")]
    for lead in (returned, confirmed):
        assert refused(url, "marta", f"review confirm {lead} --note again", back) == (
            f"Error: lead {lead} has no open refusal review")
    # the March removals still count the returned refusal, as taken up
    clients = js(url, "marta", "removals --month 2026-03", back)["clients"]
    assert {c["lead_id"]: c["taken_up"] for c in clients} == {returned: True, confirmed: False, duplicate: False}
    counts_agree_with_the_leads(url)


def test_the_rotation_flow_on_both_databases(team: Team) -> None:
    url = team.url
    ok(url, "root", "user add pawel --role salesperson --team north")
    hard = add(url, "anna", "Hard client", "2025-09-01T09:00:00", value="50000")
    others = [add(url, "anna", f"Stalled {i}", "2025-09-01T09:00:00", value="1000") for i in range(3)]
    add(url, "piotr", "Piotr's own", "2025-10-30T09:00:00")
    ok(url, "marta", f"lead report {others[0]} --text 'public tender' --extend-until 2026-12-31 "
                     "--reason 'public tender in 2027'", "2025-10-30T09:00:00")

    at = "2025-11-03T09:00:00"
    before = snapshot(url)
    plan = js(url, "marta", "rotate --dry-run", at)
    assert snapshot(url) == before
    # the extended lead stays; the most valuable goes to the least loaded (pawel, 0 open leads)
    assert [(m["lead_id"], m["to"]) for m in plan["moves"]] == [(hard, "pawel"), (others[1], "pawel"),
                                                                (others[2], "piotr")]
    assert js(url, "marta", "rotate", at)["moves"] == plan["moves"]
    assert open_counts(url) == {"anna": 1, "pawel": 2, "piotr": 2}
    counts_agree_with_the_leads(url)
    shown = js(url, "pawel", f"lead show {hard}", at)
    assert (shown["owner"], shown["rest_until"], shown["stage_due_at"]) == (
        "pawel", "2025-12-03T09:00:00", "2025-12-04T23:59:59")

    # idle after the rest: rotated again, to the one who has not worked the client
    at = "2025-12-26T09:00:00"
    moves = {m["lead_id"]: m for m in js(url, "marta", "rotate", at)["moves"]}
    assert (moves[hard]["from"], moves[hard]["to"]) == ("pawel", "piotr")
    counts_agree_with_the_leads(url)
    assert [e["kind"] for e in js(url, "marta", f"lead history {hard}", at)] == ["created", "rotated", "rotated"]
    assert ownerships(url, js(url, "marta", f"lead show {hard}", at)["client_id"]) == [
        ("anna", "created"), ("pawel", "rotated"), ("piotr", "rotated")]
    root = Engine.open(url, user="root")
    try:
        assert root.rebuild_lead(hard).comparable() == root.stored_lead(hard).comparable()
    finally:
        root.close()
