"""Everyday selling on SQLite and PostgreSQL: activities on a lead, the next contact (its light, its place in the task
list and the stand-up, its reminder sent once over real SMTP), the task list's contacts and pages, several tasks done
at once, the team every lead has from the start, the manager's unassigned queue and the assignment notice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import InvalidInputError, NotFoundError, PermissionDenied, RuleViolation
from tests.conftest import Team, js, ok, printed, refused, snapshot
from tests.smtp import Inbox, Server
from tests.test_outbox import EMAILS, at, smtp_env

PV = "photovoltaics"


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp(inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.smtp import free_port

    server = Server(inbox, free_port()).start()
    smtp_env(monkeypatch, server.port)
    yield server
    server.stop()


def lead_of(team: Team, owner: str = "anna", **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"process": PV, "name": "Łukasz Żółć", "email": "lukasz@example.pl",
                            "phone": "+48 600 100 200", **extra}
    return team.as_(owner).leads.add(**args)


def same_as_rebuilt(team: Team, lead_id: int) -> bool:
    return bool(team.admin.rebuild_lead(lead_id).comparable() == team.admin.stored_lead(lead_id).comparable())


# -- activities --------------------------------------------------------------------------------------

def test_an_activity_is_an_event_with_who_and_when_and_calls_count_attempts(team: Team) -> None:
    lead = lead_of(team)
    anna = team.as_("anna").activities
    for outcome in ("no_answer", "busy", "no_answer"):
        after = anna.add(lead["id"], kind="call", text="tried", outcome=outcome)
    assert after["unanswered_calls"] == 2
    assert after["last_activity_at"] == "2026-03-02T09:00:00"
    reached = anna.add(lead["id"], kind="call", text="spoke: send the offer", outcome="reached")
    assert reached["unanswered_calls"] == 0
    team.as_("marta").activities.add(lead["id"], kind="note", text="VIP client")  # a manager of the team may
    history = team.admin.history(lead["id"])
    activity = [e for e in history if e["kind"] == "activity"]
    assert [(e["actor"], e["at"], e["data"]) for e in activity][-2:] == [
        ("anna", "2026-03-02T09:00:00", {"kind": "call", "text": "spoke: send the offer", "outcome": "reached"}),
        ("marta", "2026-03-02T09:00:00", {"kind": "note", "text": "VIP client"})]
    listed = anna.list(lead["id"])
    assert [(a["actor"], a["kind"], a["outcome"]) for a in listed][:2] == [("marta", "note", None),
                                                                         ("anna", "call", "reached")]
    assert len(listed) == 5
    assert [a["actor"] for a in anna.list(mine=True)] == ["anna"] * 4
    assert team.as_("ioana").activities.list() == []  # another team's salesperson sees none of them
    assert same_as_rebuilt(team, lead["id"])


@pytest.mark.parametrize(("who", "args", "error", "message"), [
    # a colleague, or a manager of another team, may not even see the lead (its owner is not named to them)
    ("piotr", {"kind": "call", "text": "hi"}, PermissionDenied,
     "user 'piotr' (salesperson, team north) may not see lead 1: only its owner, a manager of its team"),
    ("radu", {"kind": "call", "text": "hi"}, PermissionDenied, "user 'radu' (manager, team south) may not see lead 1"),
    ("anna", {"kind": "visit", "text": "hi"}, InvalidInputError,
     "activity kind 'visit' is not one of: call, meeting, email, note"),
    ("anna", {"kind": "call", "text": "hi", "outcome": "maybe"}, InvalidInputError,
     "outcome 'maybe' is not one of: reached, no_answer, left_message, busy, wrong_number"),
    ("anna", {"kind": "note", "text": "hi", "outcome": "reached"}, InvalidInputError,
     "an outcome goes with a call, not with a note"),
    ("anna", {"kind": "call", "text": "   "}, InvalidInputError, "the activity's text is empty"),
    ("anna", {"kind": "call", "text": "x" * 5001}, InvalidInputError,
     "the activity's text is longer than 5000 characters"),
    ("anna", {"kind": "call", "text": "hi", "next_contact": "next tuesday"}, InvalidInputError,
     "next contact 'next tuesday' is not an ISO-8601 date-time such as 2026-03-02T09:30"),
    ("anna", {"kind": "call", "text": "hi", "next_contact": "2026-03-02T08:00"}, InvalidInputError,
     "the next contact 2026-03-02T08:00:00 is not in the future"),
    ("anna", {"kind": "call", "text": "hi", "next_contact": "2062-03-02T08:00"}, InvalidInputError,
     "is more than three years ahead; check the year"),
])
def test_refused_activities_change_nothing(team: Team, who: str, args: dict[str, Any], error: type[Exception],
                                           message: str) -> None:
    lead = lead_of(team)
    assert lead["id"] == 1
    before = snapshot(team.url)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        team.as_(who).activities.add(lead["id"], **args)
    assert snapshot(team.url) == before


def test_an_activity_counts_as_activity_for_the_stalled_rule(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = lead_of(team)
    at(monkeypatch, "2026-03-05T10:00:00")
    assert team.as_("anna").activities.add(lead["id"], kind="meeting", text="at the site")["last_activity_at"] == (
        "2026-03-05T10:00:00")
    at(monkeypatch, "2026-03-06T10:00:00")
    assert team.as_("anna").activities.set_next_contact(lead["id"], "2026-03-09T10:00")["last_activity_at"] == (
        "2026-03-06T10:00:00")


def test_no_activity_on_a_closed_lead_nor_on_one_that_does_not_exist(team: Team) -> None:
    lead = lead_of(team)
    team.as_("anna").close_lead(lead["id"], "price")
    with pytest.raises(RuleViolation, match="can't log an activity on lead 1: it is lost"):
        team.as_("anna").activities.add(lead["id"], kind="call", text="hi")
    with pytest.raises(NotFoundError, match="lead 99 does not exist"):
        team.as_("anna").activities.add(99, kind="call", text="hi")


# -- the next contact ----------------------------------------------------------------------------

def card(team: Team, lead_id: int, user: str = "marta") -> dict[str, Any]:
    (board,) = team.as_(user).boards.board(process=PV)
    return next(c for s in board["stages"] for c in s["leads"] if c["id"] == lead_id)


def lights(team: Team) -> dict[str, int]:
    (board,) = team.as_("marta").boards.board(process=PV)
    return {k: board["totals"][k] for k in ("red", "yellow", "green")}


def test_the_next_contact_colours_the_lead_yellow_on_its_day_and_red_once_missed(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = lead_of(team)
    team.as_("anna").complete_task(lead["id"], "record_contact")
    team.as_("anna").advance(lead["id"])  # first_contact: due at the end of Wednesday, yellow on Wednesday
    assert (card(team, lead["id"])["light"], lights(team)) == ("green", {"red": 0, "yellow": 0, "green": 1})
    booked = team.as_("anna").activities.add(lead["id"], kind="call", text="call me later", outcome="busy",
                                             next_contact="2026-03-02T15:30")
    assert booked["next_contact"] == "2026-03-02T15:30:00"
    # the Python form (the card) and the SQL form (the counts) agree at every instant
    for when, light in (("2026-03-02T09:00:00", "yellow"), ("2026-03-02T15:30:00", "yellow"),
                        ("2026-03-02T15:30:01", "red")):
        at(monkeypatch, when)
        assert card(team, lead["id"])["light"] == light
        assert lights(team)[light] == 1
    rebooked = team.as_("anna").activities.set_next_contact(lead["id"], "2026-03-03")  # a date: 09:00 that day
    assert rebooked["next_contact"] == "2026-03-03T09:00:00"
    assert card(team, lead["id"])["light"] == "green"  # the contact is tomorrow, the deadline's window Wednesday
    at(monkeypatch, "2026-03-03T10:00:00")
    assert card(team, lead["id"])["light"] == "red"
    cleared = team.as_("anna").activities.set_next_contact(lead["id"], None)
    assert cleared["next_contact"] is None
    assert card(team, lead["id"])["light"] == "green"  # back to its deadline's light
    at(monkeypatch, "2026-03-04T10:00:00")
    assert card(team, lead["id"])["light"] == "yellow"
    assert same_as_rebuilt(team, lead["id"])


def test_the_next_contact_is_in_the_task_list_and_the_stand_up_in_time_order(team: Team,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = lead_of(team), lead_of(team, name="Zofia Wiśniewska", email=None, phone="+48 601 222 333")
    anna = team.as_("anna")
    anna.activities.set_next_contact(second["id"], "2026-03-02T11:00")
    anna.activities.set_next_contact(first["id"], "2026-03-02T10:00")
    tasks = anna.tasks.list()
    contacts = [(t["lead_id"], t["due_at"]) for t in tasks if t["task"] == "next_contact"]
    assert contacts == [(first["id"], "2026-03-02T10:00:00"), (second["id"], "2026-03-02T11:00:00")]
    assert [t["due_at"] for t in tasks] == sorted(t["due_at"] for t in tasks)
    row = next(t for t in tasks if t["lead_id"] == second["id"])
    assert (row["phone"], row["email"], row["next_contact"]) == ("+48601222333", None, "2026-03-02T11:00:00")
    (day,) = anna.boards.daily()["people"]
    assert [(d["lead_id"], d["next_contact"]) for d in day["due_today"]["leads"]] == [
        (first["id"], "2026-03-02T10:00:00"), (second["id"], "2026-03-02T11:00:00")]
    at(monkeypatch, "2026-03-02T10:30:00")
    (day,) = anna.boards.daily()["people"]
    assert ([d["lead_id"] for d in day["red"]["leads"]], [d["lead_id"] for d in day["due_today"]["leads"]]) == (
        [first["id"]], [second["id"]])
    assert team.as_("piotr").tasks.list() == []  # a colleague's contacts are not theirs


def test_the_task_list_pages_and_says_how_many_there_are(team: Team) -> None:
    for i in range(4):
        lead_of(team, name=f"Klient {i}")
    anna = team.as_("anna")
    every = anna.tasks.list()
    assert len(every) == 8
    page = anna.tasks.page(limit=3, offset=2)
    assert (page["total"], page["offset"], page["limit"], page["tasks"]) == (8, 2, 3, every[2:5])
    assert anna.tasks.list(limit=3, offset=6) == every[6:]
    with pytest.raises(InvalidInputError, match="limit must be a whole number of at least 1, got 0"):
        anna.tasks.page(limit=0)


def every_page(user: Any, limit: int) -> list[Any]:
    """The task list read page by page, each after the previous page's ``next``."""
    rows, after = [], None
    while True:
        page = user.tasks.page(limit=limit, after=after)
        assert len(page["tasks"]) <= limit
        rows += page["tasks"]
        after = page["next"]
        if after is None:
            return rows


def test_the_task_list_pages_after_a_cursor_through_ties_of_time_lead_and_source(team: Team) -> None:
    leads = [lead_of(team, name=f"Klient {i}") for i in range(4)]
    anna = team.as_("anna")
    due = anna.tasks.list()[0]["due_at"]
    for lead in leads[1:3]:  # contacts at the very instant of the tasks' deadline: ties broken by lead, then source
        anna.activities.set_next_contact(lead["id"], due[:16])
    every = anna.tasks.list()
    assert len(every) == 10 and len({(t["due_at"], t["lead_id"]) for t in every}) < 10
    for limit in (1, 2, 3, 4, 9, 10, 11):
        assert every_page(anna, limit) == every
    first = anna.tasks.page(limit=4)
    assert first["total"] == 10  # next: the last row's due, lead, source (0 a task, 1 a contact) and place in its stage
    assert first["next"].split("~")[:3] == [every[3]["due_at"], str(every[3]["lead_id"]),
                                            "1" if every[3]["task"] == "next_contact" else "0"]
    assert anna.tasks.list(after=first["next"]) == every[4:]
    assert anna.tasks.page(limit=10)["next"] is None
    with pytest.raises(InvalidInputError, match="after must be the 'next' of a task list page, such as"):
        anna.tasks.page(after="yesterday")
    with pytest.raises(InvalidInputError, match="give offset or after, not both"):
        anna.tasks.page(offset=1, after=first["next"])


def test_the_directors_reviews_page_with_the_tasks(team: Team) -> None:
    for i in range(3):
        refused = lead_of(team, name=f"Odmowa {i}")
        team.as_("anna").close_lead(refused["id"], "price")
    marta = team.as_("marta")
    every = marta.tasks.list()
    assert [t["task"] for t in every] == ["review_refusal"] * 3
    assert every_page(marta, 1) == every_page(marta, 2) == every


# -- the reminder and the assignment notice, over SMTP -----------------------------------------------

@pytest.fixture
def mailing(team: Team) -> Team:
    for name, address in EMAILS.items():
        team.admin.set_user_email(name, address)
    return team


def test_the_reminder_of_a_next_contact_goes_to_the_owner_once(mailing: Team, smtp: Server, inbox: Inbox,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lead = lead_of(mailing)
    anna = mailing.as_("anna").activities
    anna.add(lead["id"], kind="call", text="call back Wednesday", outcome="left_message",
             next_contact="2026-03-04T11:00")
    anna.set_next_contact(lead["id"], "2026-03-04T14:00")  # rebooked: the first reminder will not go
    mailing.admin.run_due()
    inbox.received.clear()
    at(monkeypatch, "2026-03-04T12:59:59")
    early = mailing.admin.run_due()
    assert (early["sent"], early["cancelled"]) == (0, 1)
    at(monkeypatch, "2026-03-04T13:00:00")
    sent = mailing.admin.run_due()
    again = mailing.admin.run_due()
    assert (sent["sent"], again["sent"]) == (1, 0)
    (got,) = inbox.received
    assert (got.rcpt_tos, str(got.message["Subject"])) == (
        ["anna@example.pl"], "Przypomnienie o kontakcie: Łukasz Żółć, 2026-03-04 14:00:00")  # pl: the process's
    assert "Telefon: +48600100200" in got.message.get_content()
    reminders = [m for m in mailing.admin.list_outbox(lead_id=lead["id"]) if m["kind"] == "next_contact"]
    assert sorted((m["state"], m["last_error"]) for m in reminders) == [
        ("cancelled", f"next-contact reminder not sent: the next contact of lead {lead['id']} is booked for "
                      "2026-03-04 14:00"),
        ("sent", None)]
    assert same_as_rebuilt(mailing, lead["id"])


def test_a_salesperson_given_a_lead_is_told_with_the_contact_and_the_link(
        mailing: Team, smtp: Server, inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_PUBLIC_URL", "https://crm.example.com/")
    own = lead_of(mailing)  # her own lead: nobody is told
    waiting = lead_of(mailing, owner="marta")  # the manager adds it unassigned, then gives it to piotr
    mailing.as_("marta").assign(waiting["id"], "piotr")
    named = mailing.as_("marta").leads.add(process=PV, name="Ewa Lis", owner="anna")  # added for anna
    mailing.admin.run_due()
    notices = {(str(r.message["Subject"]), tuple(r.rcpt_tos)): r.message.get_content() for r in inbox.received
               if "Nowy lead dla Ciebie" in str(r.message["Subject"])}
    assert set(notices) == {  # in the process's language, Polish: neither salesperson chose one of their own
        ("Nowy lead dla Ciebie: Łukasz Żółć (Instalacje fotowoltaiczne)", ("piotr@example.pl",)),
        ("Nowy lead dla Ciebie: Ewa Lis (Instalacje fotowoltaiczne)", ("anna@example.pl",))}
    body = notices["Nowy lead dla Ciebie: Łukasz Żółć (Instalacje fotowoltaiczne)", ("piotr@example.pl",)]
    assert "Telefon: +48600100200\nE-mail: lukasz@example.pl\n" in body
    assert f"Otwórz lead: https://crm.example.com/leads/{waiting['id']}" in body
    assert not [m for m in mailing.admin.list_outbox(lead_id=own["id"]) if m["kind"] == "assigned"]
    assert [m["kind"] for m in mailing.admin.list_outbox(lead_id=named["id"])].count("assigned") == 1


def test_a_notice_for_a_lead_given_on_to_someone_else_is_not_sent(mailing: Team, smtp: Server,
                                                                  inbox: Inbox) -> None:
    waiting = lead_of(mailing, owner="marta")
    mailing.as_("marta").assign(waiting["id"], "piotr")
    mailing.as_("marta").assign(waiting["id"], "anna")
    result = mailing.admin.run_due()
    assert [(m["kind"], m["state"]) for m in result["mails"] if m["kind"] == "assigned"] == [
        ("assigned", "cancelled"), ("assigned", "sent")]
    assert [r.rcpt_tos for r in inbox.received if "Nowy lead" in str(r.message["Subject"])] == [["anna@example.pl"]]


# -- every lead has a team; nobody waits unseen ---------------------------------------------------------

def with_default_team(team: Team, tmp_path: Path, processes_dir: Path, default: str) -> None:
    text = (processes_dir / f"{PV}.yaml").read_text(encoding="utf-8")
    (tmp_path / f"{PV}.yaml").write_text(f"default_team: {default}\n" + text, encoding="utf-8")
    team.admin.load_process(tmp_path / f"{PV}.yaml")


def test_an_unassigned_web_lead_reaches_the_manager_of_the_right_team(team: Team, tmp_path: Path,
                                                                       processes_dir: Path) -> None:
    team.admin.tokens.add("website", process=PV)
    team.admin.tokens.add("partner", process=PV, team="south")
    with_default_team(team, tmp_path, processes_dir, "north")
    web = team.as_("website").submit_lead({"name": "Jan Kowalski", "phone": "+48 600 000 001"},
                                                process=PV)["lead"]
    partner = team.as_("partner").submit_lead({"name": "Ion Popa", "phone": "+40 721 000 111"},
                                                    process=PV)["lead"]
    assert (web["team"], partner["team"]) == ("north", "south")  # the process's default team; the token's
    assert [r["id"] for r in team.as_("marta").leads.list(unassigned=True)] == [web["id"]]
    assert [r["id"] for r in team.as_("radu").leads.list(unassigned=True)] == [partner["id"]]
    agenda = team.as_("marta").boards.daily()
    assert [q["lead_id"] for q in agenda["unassigned"]["leads"]] == [web["id"]]
    (board,) = team.as_("marta").boards.board(process=PV)
    assert board["unassigned"] is not None
    assert (board["unassigned"]["count"], board["unassigned"]["leads"][0]["lead_id"]) == (1, web["id"])
    assert team.as_("anna").boards.board(process=PV)[0]["unassigned"] is None  # one person's board has no lane
    given = team.as_("marta").assign(web["id"], "anna")
    assert (given["owner"], given["team"]) == ("anna", "north")
    with pytest.raises(PermissionDenied):
        team.as_("marta").assign(partner["id"], "anna")
    with pytest.raises(RuleViolation, match="source 'partner' sends its leads to team south, not north"):
        team.admin.tokens.add("partner", team="north")


def test_without_a_default_the_adders_team_and_a_lead_waiting_past_its_deadline_is_red(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = lead_of(team, owner="radu")
    assert (lead["owner"], lead["team"]) == (None, "south")
    at(monkeypatch, "2026-03-03T23:59:59")  # register_lead is due at the end of the next business day
    assert team.as_("radu").boards.daily()["unassigned"]["leads"][0]["overdue"] is False
    at(monkeypatch, "2026-03-04T00:00:00")
    assert team.as_("radu").boards.daily()["unassigned"]["leads"][0]["overdue"] is True
    (board,) = team.as_("radu").boards.board(process=PV)
    assert board["totals"]["red"] == 1


def test_a_deactivated_salespersons_open_leads_wait_in_their_managers_queue(team: Team) -> None:
    kept, closed = lead_of(team), lead_of(team, name="Ewa Lis")
    team.as_("anna").close_lead(closed["id"], "price")
    assert team.as_("marta").leads.list(unassigned=True) == []
    team.admin.users.set("anna", active=False)
    queue = team.as_("marta").boards.daily()["unassigned"]
    assert [(q["lead_id"], q["deactivated_owner"]) for q in queue["leads"]] == [(kept["id"], "anna")]
    assert [r["id"] for r in team.as_("marta").leads.list(unassigned=True)] == [kept["id"]]
    assert team.as_("radu").leads.list(unassigned=True) == []
    assert team.as_("marta").assign(kept["id"], "piotr")["owner"] == "piotr"
    assert team.as_("marta").leads.list(unassigned=True) == []


# -- several tasks at once -----------------------------------------------------------------------------

def test_several_tasks_of_a_lead_are_done_in_one_transaction_or_none(team: Team) -> None:
    lead = lead_of(team)
    anna = team.as_("anna")
    before = snapshot(team.url)
    with pytest.raises(NotFoundError, match="lead 1 has no task 'nope' in its current stage 'register_lead'"):
        anna.leads.complete_tasks(lead["id"], ["record_contact", "nope"])
    with pytest.raises(InvalidInputError, match="task 'record_contact' is named twice"):
        anna.leads.complete_tasks(lead["id"], ["record_contact", "record_contact"])
    assert snapshot(team.url) == before
    done = anna.leads.complete_tasks(lead["id"], ["record_contact", "check_history"], note="both")
    assert {t["id"]: t["state"] for t in done["tasks"] if t["stage"] == "register_lead"} == {
        "record_contact": "done", "check_history": "done"}
    with pytest.raises(RuleViolation, match="task 'record_contact' of lead 1 is already done"):
        anna.leads.complete_tasks(lead["id"], ["record_contact"])
    assert same_as_rebuilt(team, lead["id"])


# -- the invariant ---------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("activity"), st.sampled_from(["call", "meeting", "email", "note"]),
              st.sampled_from([None, "reached", "no_answer", "busy"])),
    st.tuples(st.just("book"), st.integers(min_value=1, max_value=30 * 24), st.just(None)),
    st.tuples(st.just("clear"), st.just(""), st.just(None)),
    st.tuples(st.just("assign"), st.sampled_from(["anna", "piotr"]), st.just(None)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=8))
def test_the_rebuild_equals_the_stored_lead_after_any_activities(team: Team, steps: list[Any]) -> None:
    import datetime as dt

    lead = lead_of(team, owner="marta")
    marta = team.as_("marta")
    for kind, a, b in steps:
        try:
            if kind == "activity":
                marta.activities.add(lead["id"], kind=a, text="done", outcome=b if a == "call" else None)
            elif kind == "book":
                when = dt.datetime(2026, 3, 2, 9) + dt.timedelta(hours=a)
                marta.activities.set_next_contact(lead["id"], when.isoformat())
            elif kind == "clear":
                marta.activities.set_next_contact(lead["id"], None)
            else:
                marta.assign(lead["id"], a)
        except InvalidInputError:
            pass
    assert same_as_rebuilt(team, lead["id"])
    stored = team.admin.stored_lead(lead["id"])
    calls = [e["data"] for e in team.admin.history(lead["id"]) if e["kind"] == "activity"]
    expected = 0
    for data in calls:
        if data["kind"] == "call" and data.get("outcome") == "no_answer":
            expected += 1
        elif data.get("outcome") == "reached" or data["kind"] == "meeting":
            expected = 0
    assert stored.unanswered_calls == expected


# -- the CLI ----------------------------------------------------------------------------------------

def test_the_cli_logs_lists_books_and_pages(team: Team) -> None:
    url = team.url
    for i in range(12):
        lead_of(team, name=f"Klient {i}")
    assert printed(url, "anna", "activity add 1 --kind call --text 'no answer' --outcome no_answer "
                                "--next-contact 2026-03-03T10:00") == (
        "Call logged on lead 1; next contact 2026-03-03 10:00\n")
    assert js(url, "anna", "lead show 1 --json")["unanswered_calls"] == 1
    listed = js(url, "anna", "activity list 1 --json")
    assert [(a["kind"], a["outcome"], a["text"]) for a in listed] == [("call", "no_answer", "no answer")]
    assert printed(url, "anna", "lead next-contact 1 --clear") == "Lead 1 has no next contact booked\n"
    table = printed(url, "anna", "task list")
    assert "24 open tasks (1-20 of 24)" in table and "and 4 more: --offset 20 for the next page" in table
    assert "+48600100200 lukasz@example.pl" in table
    assert len(js(url, "anna", "task list --json")) == 24
    assert len(js(url, "anna", "task list --json --limit 5 --offset 22")) == 2
    ok(url, "anna", "task done 2 record_contact check_history")
    line = refused(url, "piotr", "activity add 1 --kind note --text hi")
    assert line == ("Error: user 'piotr' (salesperson, team north) may not see lead 1: only its owner, a manager of "
                    "its team, its team's departments or an admin may")  # whose it is stays unsaid
    assert "Error: the next contact" in refused(url, "anna", "activity add 1 --kind note --text hi "
                                                             "--next-contact 2020-01-01T10:00")



def test_task_list_json_is_every_row_read_a_page_at_a_time(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.lead_cmds

    for i in range(6):
        lead_of(team, name=f"Klient {i}")
    team.as_("anna").activities.set_next_contact(3, "2026-03-03T10:00")
    monkeypatch.setattr(cli.lead_cmds, "JSON_PAGE", 5)  # 13 rows: three pages
    assert js(team.url, "anna", "task list --json") == team.as_("anna").tasks.list()
    assert printed(team.url, "piotr", "task list --json") == "[]\n"


# -- the HTTP API --------------------------------------------------------------------------------------

def test_the_routes_answer_the_engines_json_and_refuse_a_colleague(team: Team) -> None:
    from tests.server_fixtures import serving

    lead = lead_of(team)
    with serving(team.admin) as served:
        logged = served.call("anna", "POST", f"/v1/leads/{lead['id']}/activities",
                             json={"kind": "call", "text": "later", "outcome": "no_answer",
                                   "next_contact": "2026-03-03T10:00"})
        assert logged.status_code == 201, logged.text
        assert (logged.json()["unanswered_calls"], logged.json()["next_contact"]) == (1, "2026-03-03T10:00:00")
        before = snapshot(team.url)
        colleague = served.call("piotr", "POST", f"/v1/leads/{lead['id']}/activities", json={"kind": "note",
                                                                                              "text": "x"})
        assert colleague.status_code == 404  # a lead the caller may not see is answered as one that does not exist
        stale = served.call("anna", "POST", f"/v1/leads/{lead['id']}/next-contact", json={"if_version": 1})
        assert stale.status_code == 409
        assert snapshot(team.url) == before
        cleared = served.call("anna", "POST", f"/v1/leads/{lead['id']}/next-contact", json={})
        assert cleared.json()["next_contact"] is None
        listed = served.call("anna", "GET", "/v1/activities", params={"lead": lead["id"]})
        assert listed.json() == team.as_("anna").activities.list(lead["id"])
        page = served.call("anna", "GET", "/v1/tasks/page", params={"limit": 1}).json()
        assert (page["total"], len(page["tasks"])) == (2, 1)
        rest = served.call("anna", "GET", "/v1/tasks", params={"limit": 1, "offset": 1}).json()
        assert rest == team.as_("anna").tasks.list()[1:]
        done = served.call("anna", "POST", f"/v1/leads/{lead['id']}/tasks/done",
                           json={"task_ids": ["record_contact", "check_history"]})
        assert done.status_code == 200, done.text
        bad = served.call("anna", "POST", f"/v1/leads/{lead['id']}/tasks/done", json={"task_ids": "record_contact"})
        assert bad.status_code == 422



def test_get_tasks_answers_a_plain_list_with_the_total_and_the_next_page_in_headers(team: Team) -> None:
    from tests.server_fixtures import serving

    for i in range(3):
        lead_of(team, name=f"Klient {i}")
    every = team.as_("anna").tasks.list()
    with serving(team.admin) as served:
        whole = served.call("anna", "GET", "/v1/tasks")
        assert (whole.json(), whole.headers["X-Total-Count"], whole.headers.get("Link")) == (every, "6", None)
        rows, url, pages = [], "/v1/tasks?limit=4", 0
        while url:
            answer = served.call("anna", "GET", url)
            assert answer.status_code == 200, answer.text
            assert isinstance(answer.json(), list) and answer.headers["X-Total-Count"] == "6"
            rows += answer.json()
            link = answer.headers.get("Link")
            url = link[1:link.index(">")] if link else ""
            assert not link or link.endswith('; rel="next"')
            pages += 1
        assert (rows, pages) == (every, 2)
        bad = served.call("anna", "GET", "/v1/tasks", params={"after": "soon"})
        assert bad.status_code == 422 and "after must be the 'next' of a task list page" in bad.json()["detail"]
