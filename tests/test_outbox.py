"""Stage actions and the outbox against a real SMTP server (aiosmtpd on loopback), on SQLite and PostgreSQL.

What a user relies on: the right mails go to the right people with the right text (UTF-8 Polish), at the
right time, exactly once; a server that is down leaves them queued and retried; a broken template or a
missing address fails one mail with its reason and never the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import outbox
from engine.api import Engine
from engine.errors import InvalidInputError, PermissionDenied, RuleViolation
from tests.conftest import Team, at_once, snapshot
from tests.smtp import Inbox, Server, free_port

EMAILS = {"anna": "anna@example.pl", "piotr": "piotr@example.pl", "olga": "olga@example.pl",
          "marta": "marta@example.pl", "root": "root@example.pl"}


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp(inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    server = Server(inbox, free_port()).start()
    smtp_env(monkeypatch, server.port)
    yield server
    server.stop()


def smtp_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("LEADFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LEADFLOW_SMTP_PORT", str(port))
    monkeypatch.setenv("LEADFLOW_SMTP_SECURITY", "none")
    monkeypatch.setenv("LEADFLOW_SMTP_FROM", "Biuro Sprzedaży <sprzedaz@example.com>")
    monkeypatch.setenv("LEADFLOW_SMTP_TIMEOUT", "5")
    for name in ("LEADFLOW_SMTP_CONFIG", "LEADFLOW_SMTP_USER", "LEADFLOW_SMTP_PASSWORD", "LEADFLOW_TEMPLATES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mailing(team: Team) -> Team:
    for name, address in EMAILS.items():
        team.admin.set_user_email(name, address)
    return team


def at(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", when)


def new_lead(eng: Engine, **extra: Any) -> dict[str, Any]:
    # a lead for another e-mail address is another person: it has no phone of Łukasz's (one phone, one client)
    phone = {} if "email" in extra else {"phone": "+48 600 100 200"}
    args: dict[str, Any] = {"process": "photovoltaics", "name": "Łukasz Żółć", "email": "lukasz@example.pl",
                            **phone, "fields": {"financing": "leasing"}, **extra}
    return eng.add_lead(**args)


def to_first_contact(team: Team, lead_id: int) -> None:
    anna = team.as_("anna")
    anna.complete_task(lead_id, "record_contact")
    anna.advance(lead_id)


def to_send_offer(team: Team, lead_id: int) -> None:
    anna = team.as_("anna")
    to_first_contact(team, lead_id)
    for task in ("call_client", "book_meeting"):
        anna.complete_task(lead_id, task)
    anna.advance(lead_id)
    anna.set_fields(lead_id, {"roof_type": "pitched", "roof_area_m2": "38", "financing": "leasing"})
    for task in ("meeting_notes", "consumption", "roof_photos", "bant", "next_contact"):
        anna.complete_task(lead_id, task)
    anna.advance(lead_id)


def mails(team: Team, **filters: Any) -> list[dict[str, Any]]:
    return team.admin.list_outbox(**filters)


# -- what is queued, and when ----------------------------------------------------------------------

def test_entering_a_stage_queues_its_mails_and_records_them(mailing: Team) -> None:
    lead = new_lead(mailing.as_("anna"))
    assert mails(mailing) == []  # register_lead has no actions

    to_first_contact(mailing, lead["id"])

    (mail,) = mails(mailing)
    assert (mail["lead_id"], mail["kind"], mail["template"], mail["to"], mail["stage"], mail["state"],
            mail["due_at"], mail["attempts"]) == (lead["id"], "email", "welcome", "client", "first_contact",
                                                  "queued", "2026-03-02T09:00:00", 0)
    advanced = mailing.admin.history(lead["id"])[-1]
    assert advanced["kind"] == "advanced"
    assert advanced["data"]["actions"] == [{"action": "send_email", "template": "welcome", "to": "client",
                                            "due_at": "2026-03-02T09:00:00", "outbox": mail["key"]}]


def test_a_refused_move_queues_nothing(mailing: Team) -> None:
    lead = new_lead(mailing.as_("anna"))
    before = snapshot(mailing.url)
    with pytest.raises(RuleViolation):
        mailing.as_("anna").advance(lead["id"])
    assert snapshot(mailing.url) == before


def test_send_offer_asks_the_analyst_and_schedules_the_owner_reminder(mailing: Team) -> None:
    lead = new_lead(mailing.as_("anna"))
    to_send_offer(mailing, lead["id"])

    entered = [m for m in mails(mailing) if m["stage"] == "send_offer"]
    assert [(m["template"], m["to"], m["kind"], m["due_at"]) for m in entered] == [
        ("pricing_request", "analyst", "email", "2026-03-02T09:00:00"),
        ("offer_in_preparation", "client", "email", "2026-03-02T09:00:00"),
        ("offer_follow_up", "owner", "reminder", "2026-03-09T09:00:00"),  # 5 business days after Monday
    ]
    # the create_task action is a task in the analyst's list
    olga = [(t["lead_id"], t["task"], t["due_at"]) for t in mailing.as_("olga").list_tasks()]
    assert (lead["id"], "notify_analyst", "2026-03-03T23:59:59") in olga
    actions = mailing.admin.history(lead["id"])[-1]["data"]["actions"]
    assert actions[0] == {"action": "create_task", "task": "notify_analyst", "owner": "analyst", "state": "open",
                          "due_at": "2026-03-03T23:59:59"}


def test_every_way_into_a_stage_runs_its_actions(mailing: Team, processes_dir: Path, tmp_path: Path) -> None:
    """created, advanced, reopened (resumed or fresh) and the director's review return."""
    text = (processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8")
    marker = ("      - {id: check_history, name: {en: \"Check the client's earlier leads\", pl: Sprawdź wcześniejsze "
              "leady klienta, ro: Verifică lead-urile anterioare ale clientului}, owner: salesperson, "
              "mandatory: false}\n")
    assert marker in text
    path = tmp_path / "photovoltaics.yaml"
    action = "    on_enter:\n      - send_email: {template: welcome, to: owner}\n"
    path.write_text(text.replace(marker, marker + action), encoding="utf-8")
    mailing.admin.load_process(path)
    anna, marta = mailing.as_("anna"), mailing.as_("marta")

    lead = new_lead(anna)
    assert [m["stage"] for m in mails(mailing)] == ["register_lead"]  # created
    assert mailing.admin.history(lead["id"])[0]["data"]["actions"][0]["template"] == "welcome"
    to_first_contact(mailing, lead["id"])  # advanced
    anna.close_lead(lead["id"], "no_budget")
    marta.reopen(lead["id"])  # back into first_contact, work kept
    anna.close_lead(lead["id"], "bad_timing")
    marta.reopen(lead["id"], "register_lead")  # a fresh start elsewhere
    anna.close_lead(lead["id"], "competitor")
    marta.review_return(lead["id"], note="call again")  # the director returns it

    assert [m["stage"] for m in mails(mailing)] == ["register_lead", "first_contact", "first_contact",
                                                    "register_lead", "register_lead"]
    kinds = [e["kind"] for e in mailing.admin.history(lead["id"]) if "actions" in e["data"]]
    assert kinds == ["created", "advanced", "reopened", "reopened", "reopened"]
    assert mailing.admin.rebuild_lead(lead["id"]).comparable() == mailing.admin.stored_lead(lead["id"]).comparable()


# -- sending ---------------------------------------------------------------------------------------

def test_run_due_sends_polish_utf8_mail_once(mailing: Team, smtp: Server, inbox: Inbox) -> None:
    lead = new_lead(mailing.as_("anna"))
    to_first_contact(mailing, lead["id"])

    result = mailing.admin.run_due()

    assert (result["sent"], result["retrying"], result["failed"], result["cancelled"], result["smtp_error"]) == (
        1, 0, 0, 0, None)
    (got,) = inbox.received
    (mail,) = mails(mailing)
    msg = got.message
    assert got.mail_from == "sprzedaz@example.com"
    assert got.rcpt_tos == ["lukasz@example.pl"]
    assert str(msg["To"]) == "Łukasz Żółć <lukasz@example.pl>"
    assert str(msg["From"]) == "Biuro Sprzedaży <sprzedaz@example.com>"
    assert str(msg["Subject"]) == "Dziękujemy za zapytanie, Łukasz Żółć"
    assert str(msg["Message-ID"]) == f"<{mail['key']}@example.com>"
    assert (msg["Auto-Submitted"], msg["X-Leadflow-Lead"]) == ("auto-generated", str(lead["id"]))
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert body.startswith("Dzień dobry,\n\ndziękujemy za zapytanie.")
    assert "Pani/Pana doradcą jest anna (anna@example.pl)." in body
    assert body.endswith("Z poważaniem\nanna\nBiuro Sprzedaży\n")

    (mail,) = mails(mailing)
    assert (mail["state"], mail["attempts"], mail["to_address"], mail["sent_at"], mail["message_id"]) == (
        "sent", 1, "lukasz@example.pl", "2026-03-02T09:00:00", f"<{mail['key']}@example.com>")
    event = mailing.admin.history(lead["id"])[-1]
    assert (event["kind"], event["actor"], event["data"]) == ("mail_sent", "root", {
        "outbox": mail["id"], "kind": "email", "template": "welcome", "to": "client",
        "address": "lukasz@example.pl", "message_id": mail["message_id"]})
    assert mailing.admin.rebuild_lead(lead["id"]).comparable() == mailing.admin.stored_lead(lead["id"]).comparable()

    again = mailing.admin.run_due()  # run twice: nothing goes out twice
    assert (again["sent"], again["mails"], len(inbox.received)) == (0, [], 1)


def test_mail_to_a_role_goes_to_its_users_in_the_team(mailing: Team, smtp: Server, inbox: Inbox) -> None:
    mailing.admin.add_user("jan", "analyst", "south", email="jan@example.pl")  # another team: not him
    mailing.admin.add_user("ewa", "analyst", None, email="ewa@example.pl")  # no team: every team's
    lead = new_lead(mailing.as_("anna"))
    to_send_offer(mailing, lead["id"])

    mailing.admin.run_due()

    by_subject = {str(r.message["Subject"]): r for r in inbox.received}
    request = by_subject[f"Prośba o wycenę: Łukasz Żółć (lead {lead['id']})"]
    assert sorted(request.rcpt_tos) == ["ewa@example.pl", "olga@example.pl"]
    body = request.message.get_content()
    assert "roof_area_m2: 38\n" in body and "financing: leasing\n" in body and "budget:" not in body
    offer = by_subject["Przygotowujemy Pani/Pana ofertę"]
    assert "dla dachu o powierzchni około 38 m²" in offer.message.get_content()


def test_reminders_wait_for_their_day_and_follow_the_lead(mailing: Team, smtp: Server, inbox: Inbox,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    anna = mailing.as_("anna")
    stays, moves = new_lead(anna), new_lead(anna, name="Zofia Wiśniewska", email="zofia@example.pl")
    for lead in (stays, moves):
        to_send_offer(mailing, lead["id"])
    mailing.admin.run_due()
    inbox.received.clear()
    first = mailing.admin.run_due()
    # each lead: the first meeting's reminder to the client (due on Tuesday, but the lead has moved on)
    # and the offer's follow-up for the owner (five business days after Monday)
    assert (first["sent"], first["queued_later"], first["next_due_at"]) == (0, 4, "2026-03-03T09:00:00")

    anna.close_lead(moves["id"], "price")
    at(monkeypatch, "2026-03-09T08:59:59")
    early = mailing.admin.run_due()  # the meeting reminders are due, the follow-ups not yet
    assert (early["sent"], early["cancelled"], early["queued_later"]) == (0, 2, 2)
    at(monkeypatch, "2026-03-09T09:00:00")
    result = mailing.admin.run_due()

    assert (result["sent"], result["cancelled"]) == (1, 1)
    (got,) = inbox.received
    assert (got.rcpt_tos, str(got.message["Subject"])) == (
        ["anna@example.pl"], f"Zapytaj o decyzję w sprawie oferty: Łukasz Żółć (lead {stays['id']})")
    cancelled = {(m["lead_id"], m["template"]): m["last_error"] for m in mails(mailing, state="cancelled")}
    assert cancelled == {
        (stays["id"], "meeting_reminder"): f"reminder not sent: lead {stays['id']} has left stage 'first_meeting' "
                                           "(it is in 'send_offer')",
        (moves["id"], "meeting_reminder"): f"reminder not sent: lead {moves['id']} is lost",
        (moves["id"], "offer_follow_up"): f"reminder not sent: lead {moves['id']} is lost"}


def test_a_server_that_is_down_leaves_the_mail_queued_then_sends_it_once(
        mailing: Team, inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    smtp_env(monkeypatch, port)  # nothing listens there yet
    lead = new_lead(mailing.as_("anna"))
    to_first_contact(mailing, lead["id"])

    down = mailing.admin.run_due()

    assert (down["sent"], down["retrying"], down["still_due"]) == (0, 1, 0)
    assert down["smtp_error"].startswith(f"cannot connect to the SMTP server 127.0.0.1:{port}: ")
    (mail,) = mails(mailing)
    assert (mail["state"], mail["attempts"], mail["next_attempt_at"]) == ("queued", 1, "2026-03-02T09:01:00")
    assert mail["last_error"] == down["smtp_error"]
    assert mailing.admin.run_due()["mails"] == []  # not before its next attempt

    server = Server(inbox, port).start()
    try:
        at(monkeypatch, "2026-03-02T09:01:00")
        up = mailing.admin.run_due()
        assert (up["sent"], up["retrying"]) == (1, 0)
        assert mailing.admin.run_due()["sent"] == 0
    finally:
        server.stop()
    assert len(inbox.received) == 1
    assert mails(mailing)[0]["attempts"] == 2


def test_backoff_doubles_up_to_an_hour_and_gives_up(mailing: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 6, 7, 40)] == [60, 120, 240, 1920, 3600, 3600]
    smtp_env(monkeypatch, free_port())
    lead = new_lead(mailing.as_("anna"))
    to_first_contact(mailing, lead["id"])
    with mailing.admin.transaction() as conn:
        conn.execute(outbox.outbox.update().values(attempts=outbox.MAX_ATTEMPTS - 1))
    result = mailing.admin.run_due()
    (mail,) = mails(mailing)
    assert (result["failed"], mail["state"], mail["attempts"]) == (1, "failed", outbox.MAX_ATTEMPTS)
    assert mail["last_error"].startswith(f"gave up after {outbox.MAX_ATTEMPTS} attempts: cannot connect")
    assert mailing.admin.history(lead["id"])[-1]["kind"] == "mail_failed"


def test_refusals_permanent_fail_and_temporary_retry(mailing: Team, smtp: Server, inbox: Inbox) -> None:
    anna = mailing.as_("anna")
    gone = new_lead(anna, email="gone@example.pl")
    busy = new_lead(anna, name="Ioana Mărgărit", email="busy@example.pl")
    fine = new_lead(anna, name="Жанна Кузнецова", email="zhanna@example.pl")
    inbox.refuse = {"gone@example.pl": "550 5.1.1 no such user", "busy@example.pl": "451 4.3.0 try again later"}
    for lead in (gone, busy, fine):
        to_first_contact(mailing, lead["id"])

    result = mailing.admin.run_due()

    assert (result["sent"], result["retrying"], result["failed"]) == (1, 1, 1)
    states = {m["lead_id"]: (m["state"], m["last_error"]) for m in mails(mailing)}
    assert states[gone["id"]] == ("failed", "the server refused every recipient (gone@example.pl: 550 5.1.1 no such "
                                            "user)")
    assert states[busy["id"]] == ("queued", "the server refused every recipient (busy@example.pl: 451 4.3.0 try "
                                            "again later)")
    assert states[fine["id"]] == ("sent", None)
    assert [str(r.message["To"]) for r in inbox.received] == ["Жанна Кузнецова <zhanna@example.pl>"]


def test_what_cannot_be_sent_fails_with_its_reason(mailing: Team, smtp: Server, inbox: Inbox,
                                                   processes_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No address, an owner without e-mail, a template broken after loading, a sandbox escape."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "welcome.pl.txt.j2").write_text("Subject: Witamy {{ client.name }}\n\nDzień dobry.\n",
                                                 encoding="utf-8")
    path = tmp_path / "photovoltaics.yaml"
    text = (processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("title: {en: Photovoltaic installations", "title: {en: PV (own templates)"),
                    encoding="utf-8")
    assert mailing.admin.load_process(path)["version"] == 2  # its templates: the folder next to this file
    anna = mailing.as_("anna")
    no_address = new_lead(anna, email=None)
    broken = new_lead(anna, name="Ștefan Popescu", email="stefan@example.ro")
    escape = new_lead(anna, name="Mihai Ionescu", email="mihai@example.ro")
    fine = new_lead(anna, name="Zofia", email="zofia@example.pl")
    for lead in (no_address, broken):
        to_first_contact(mailing, lead["id"])
    # the admin breaks the template after loading: the next mails using it fail, the others go
    (templates / "welcome.pl.txt.j2").write_text("Subject: Witamy {{ client.nazwisko }}\n\nDzień dobry.\n",
                                                 encoding="utf-8")
    mailing.admin.run_due()
    (templates / "welcome.pl.txt.j2").write_text(
        "Subject: Hi\n\n{{ client.__class__.__mro__[1].__subclasses__() }}\n", encoding="utf-8")
    to_first_contact(mailing, escape["id"])
    mailing.admin.run_due()
    (templates / "welcome.pl.txt.j2").write_text("Subject: Witamy {{ client.name }}\n\nDzień dobry.\n",
                                                 encoding="utf-8")
    to_first_contact(mailing, fine["id"])
    mailing.admin.run_due()

    errors = {m["lead_id"]: (m["state"], m["last_error"]) for m in mails(mailing)}
    assert errors[no_address["id"]] == ("cancelled", no_client_address(no_address))
    assert errors[broken["id"]] == ("failed", "template welcome.pl.txt.j2 failed to render: UndefinedError: "
                                              "'dict object' has no attribute 'nazwisko'")
    assert errors[escape["id"]][0] == "failed"
    assert errors[escape["id"]][1].startswith("template welcome.pl.txt.j2 failed to render: SecurityError: access "
                                              "to attribute '__class__' of 'dict' object is unsafe")
    assert errors[fine["id"]] == ("sent", None)
    assert [str(r.message["Subject"]) for r in inbox.received] == ["Witamy Zofia"]
    failed = [e for e in mailing.admin.history(broken["id"]) if e["kind"] == "mail_failed"]
    assert failed[0]["data"]["error"] == errors[broken["id"]][1]

    # after the fix the manager queues the failed mail again
    retried = mailing.as_("marta").retry_outbox(mails(mailing, lead_id=broken["id"])[0]["id"])
    assert (retried["state"], retried["attempts"]) == ("queued", 0)
    assert mailing.admin.run_due()["sent"] == 1
    assert str(inbox.received[-1].message["To"]) == "Ștefan Popescu <stefan@example.ro>"


def no_client_address(lead: dict[str, Any]) -> str:
    return (f"not sent: client {lead['client_id']} (Łukasz Żółć) of lead {lead['id']} has no e-mail address; give "
            f"it one (leadflow client edit {lead['client_id']} --email ADDRESS --reason ...), then leadflow outbox "
            "retry")


def test_a_client_without_an_address_gets_no_mail_queued_and_the_outbox_says_why(
        mailing: Team, smtp: Server, inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/automation.md: a phone-only client's mail due at once is stored cancelled with the reason, not queued
    to fail later (failed mail is what monitoring watches); a delayed one is checked when it falls due; once the
    client has an address, outbox retry sends it."""
    at(monkeypatch, "2026-03-02T09:00:00")
    lead = new_lead(mailing.as_("anna"), email=None, phone="+48 601 200 300")
    to_first_contact(mailing, lead["id"])  # the welcome mail, due at once
    (welcome,) = mails(mailing, lead_id=lead["id"])
    assert (welcome["template"], welcome["to"], welcome["state"], welcome["attempts"]) == ("welcome", "client",
                                                                                          "cancelled", 0)
    assert welcome["last_error"] == no_client_address(lead)
    assert mails(mailing, state="queued") == []
    anna = mailing.as_("anna")
    for task in ("call_client", "book_meeting"):
        anna.complete_task(lead["id"], task)
    anna.advance(lead["id"])  # first_meeting: a reminder to the client a business day later, queued for then
    reminder = next(m for m in mails(mailing, lead_id=lead["id"]) if m["template"] == "meeting_reminder")
    assert reminder["state"] == "queued"
    at(monkeypatch, "2026-03-04T09:00:00")
    assert mailing.admin.run_due()["sent"] == 0
    reminder = next(m for m in mails(mailing, lead_id=lead["id"]) if m["template"] == "meeting_reminder")
    assert (reminder["state"], reminder["last_error"]) == ("cancelled", no_client_address(lead))
    assert mails(mailing, state="failed") == [] and inbox.received == []
    # the address arrives: the manager queues the welcome again and it goes
    mailing.admin.edit_client(lead["client_id"], email="lukasz@example.pl", reason="gave it on the phone")
    assert mailing.as_("marta").retry_outbox(welcome["id"])["state"] == "queued"
    assert mailing.admin.run_due()["sent"] == 1
    assert str(inbox.received[-1].message["To"]) == "Łukasz Żółć <lukasz@example.pl>"


def test_owner_reminder_without_an_address_and_the_queue(mailing: Team, smtp: Server, inbox: Inbox,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    mailing.admin.set_user_email("anna", "")
    anna = mailing.as_("anna")
    lead = new_lead(anna)
    to_send_offer(mailing, lead["id"])
    at(monkeypatch, "2026-03-09T09:00:00")
    mailing.admin.run_due()
    (reminder,) = mails(mailing, state="failed")
    assert reminder["last_error"] == (f"the owner of lead {lead['id']}, anna, has no e-mail address "
                                      "(leadflow user set anna --email ADDRESS)")


def test_two_runs_at_once_send_each_mail_once(mailing: Team, smtp: Server, inbox: Inbox) -> None:
    anna = mailing.as_("anna")
    for i in range(12):
        lead = new_lead(anna, name=f"Klient {i}", email=f"k{i}@example.pl")
        to_first_contact(mailing, lead["id"])
    results = at_once(mailing.url, "root", lambda eng, _i: eng.run_due(), 3)
    assert sum(r["sent"] for r in results) == 12
    assert len(inbox.received) == 12
    assert set(Counter(inbox.ids()).values()) == {1}
    assert {m["state"] for m in mails(mailing)} == {"sent"}


def test_only_an_admin_runs_due_and_config_errors_change_nothing(mailing: Team,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lead = new_lead(mailing.as_("anna"))
    to_first_contact(mailing, lead["id"])
    before = snapshot(mailing.url)
    with pytest.raises(PermissionDenied):
        mailing.as_("marta").run_due()
    for name in ("LEADFLOW_SMTP_HOST", "LEADFLOW_SMTP_FROM", "LEADFLOW_SMTP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidInputError, match="SMTP is not configured: set LEADFLOW_SMTP_HOST"):
        mailing.admin.run_due()
    smtp_env(monkeypatch, 2525)
    for name, value, message in [
            ("LEADFLOW_SMTP_PORT", "70000", "SMTP port '70000' is not between 1 and 65535"),
            ("LEADFLOW_SMTP_PORT", "abc", "SMTP port 'abc' is not a number"),
            ("LEADFLOW_SMTP_SECURITY", "tls", "SMTP security 'tls' is not one of: starttls, ssl, none"),
            ("LEADFLOW_SMTP_FROM", "leadflow", "SMTP sender (LEADFLOW_SMTP_FROM) 'leadflow' is not an address"),
            ("LEADFLOW_SMTP_USER", "anna", "SMTP login needs both LEADFLOW_SMTP_USER and LEADFLOW_SMTP_PASSWORD")]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
                mailing.admin.run_due()
    with pytest.raises(InvalidInputError):
        mailing.admin.run_due(limit=0)
    with mailing.admin.transaction(), pytest.raises(RuleViolation):
        mailing.admin.run_due()
    assert snapshot(mailing.url) == before


# -- TLS and login -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it through LEADFLOW_SMTP_CA_FILE)."""
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = (auth_data.login, auth_data.password) == (b"leadflow", "hasło-ąę".encode())
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login(mailing: Team, inbox: Inbox, certificate: tuple[Path, Path], security: str,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    # (aiosmtpd offers AUTH "only over TLS" after STARTTLS; on an implicit-TLS port it cannot tell, so it is
    # told to offer it there: the whole connection is TLS anyway)
    tls: dict[str, Any] = ({"tls_context": context, "require_starttls": True, "auth_require_tls": True}
                           if security == "starttls" else {"ssl_context": context, "auth_require_tls": False})
    server = Server(inbox, port, authenticator=_authenticator, **tls).start()
    smtp_env(monkeypatch, port)
    monkeypatch.setenv("LEADFLOW_SMTP_SECURITY", security)
    monkeypatch.setenv("LEADFLOW_SMTP_CA_FILE", str(cert))
    monkeypatch.setenv("LEADFLOW_SMTP_USER", "leadflow")
    monkeypatch.setenv("LEADFLOW_SMTP_PASSWORD", "wrong")
    try:
        lead = new_lead(mailing.as_("anna"))
        to_first_contact(mailing, lead["id"])
        refused = mailing.admin.run_due()
        assert refused["smtp_error"].startswith(f"the SMTP server 127.0.0.1:{port} refused the login of leadflow: 535")
        assert mails(mailing)[0]["state"] == "queued"
        monkeypatch.setenv("LEADFLOW_SMTP_PASSWORD", "hasło-ąę")
        at(monkeypatch, "2026-03-02T09:01:00")
        assert mailing.admin.run_due()["sent"] == 1
    finally:
        server.stop()
    assert [r.rcpt_tos for r in inbox.received] == [["lukasz@example.pl"]]


def test_an_untrusted_certificate_is_refused(mailing: Team, inbox: Inbox, certificate: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    server = Server(inbox, port, tls_context=context, require_starttls=True).start()
    smtp_env(monkeypatch, port)
    monkeypatch.setenv("LEADFLOW_SMTP_SECURITY", "starttls")  # without the CA file: the system's CAs only
    try:
        lead = new_lead(mailing.as_("anna"))
        to_first_contact(mailing, lead["id"])
        result = mailing.admin.run_due()
    finally:
        server.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in result["smtp_error"]
    assert (result["retrying"], inbox.received) == (1, [])
