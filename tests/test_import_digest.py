"""An import tells each salesperson it gives leads to in ONE mail (engine/notices.py, the digest), over SMTP, on
SQLite and PostgreSQL: the count, the first leads with the client's contact details and links, in the salesperson's
language; the history import tells nobody of closed deals."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import notices
from tests import test_outbox as outbox_tests
from tests.conftest import Team
from tests.smtp import Inbox, Server
from tests.test_history_import import deal, history_file

PV = "photovoltaics"


# the SMTP test server and the users' addresses, as the outbox's tests have them
inbox, smtp, mailing = outbox_tests.inbox, outbox_tests.smtp, outbox_tests.mailing


def csv_file(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["name;email;phone;owner", *rows]) + "\n", encoding="utf-8")
    return path


def digests(inbox: Inbox) -> dict[str, tuple[str, str]]:
    """The digests received, by recipient: (subject, body); each salesperson gets one."""
    got = {}
    for mail in inbox.received:
        if mail.message["X-Leadflow-Digest"] is None:
            continue
        (to,) = mail.rcpt_tos
        assert to not in got, f"{to} got two mails"
        got[to] = (str(mail.message["Subject"]), mail.message.get_content())
    return got


def test_an_import_sends_each_salesperson_one_digest_in_their_language(
        mailing: Team, smtp: Server, inbox: Inbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_PUBLIC_URL", "https://crm.example.com/")
    monkeypatch.setattr(notices, "DIGEST_LEADS", 2)
    mailing.admin.users.set_language("anna", "en")
    mailing.admin.users.set_language("piotr", "ru")
    path = csv_file(tmp_path / "leads.csv", [
        "Łukasz Żółć;lukasz@example.pl;+48 600 100 200;anna",
        "Zofia Wiśniewska;zofia@example.pl;;anna",
        "Jan Kowalski;;+48 601 222 333;anna",
        "Жанна Иванова;zhanna@example.ru;;piotr",
        "Nobody Yet;nobody@example.pl;;",  # unassigned: the manager's queue, nobody is told
    ])
    report = mailing.admin.intake.import_csv(path, process=PV)
    assert (report["imported"], report["mails_queued"]) == (5, 2)
    first = report["first_lead_id"]
    queued = [m for m in mailing.admin.list_outbox() if m["kind"] == notices.DIGEST]
    assert sorted((m["lead_id"], m["to"], m["state"]) for m in queued) == [
        (first, "owner", "queued"), (first + 3, "owner", "queued")]
    mailing.as_("marta").assign(first + 1, "piotr")  # given on before run-due: no longer in anna's digest
    sent = mailing.admin.run_due()
    assert sorted((m["kind"], m["state"]) for m in sent["mails"]) == [
        ("assigned", "sent"), ("import_digest", "sent"), ("import_digest", "sent")]
    got = digests(inbox)
    assert set(got) == {"anna@example.pl", "piotr@example.pl"}
    subject, body = got["anna@example.pl"]
    assert subject == "New leads for you from an import: 2 (Photovoltaic installations)"
    assert body.startswith("Hello anna,\n\nan import gave you leads of Photovoltaic installations: 2 in all.\n")
    assert (f"Lead {first}: Łukasz Żółć, stage \"Register the lead\"\n  Phone: +48600100200\n"
            f"  E-mail: lukasz@example.pl\n  Open the lead: https://crm.example.com/leads/{first}\n") in body
    assert f"Lead {first + 2}: Jan Kowalski" in body and "Zofia" not in body and "more" not in body
    subject, body = got["piotr@example.pl"]
    assert subject == "Новые лиды для вас из импорта: 1 (Instalacje fotowoltaiczne)"  # no Russian title: the process's
    assert f"Лид {first + 3}: Жанна Иванова" in body and "E-mail: zhanna@example.ru" in body
    assert mailing.admin.run_due()["sent"] == 0  # once


def test_a_digest_lists_the_first_leads_and_counts_the_rest(mailing: Team, smtp: Server, inbox: Inbox,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notices, "DIGEST_LEADS", 2)
    mailing.admin.users.set_language("anna", "en")
    path = csv_file(tmp_path / "leads.csv", [f"Klient {i};k{i}@example.pl;;" for i in range(5)])
    report = mailing.as_("marta").intake.import_csv(path, process=PV, owner="anna")
    assert report["mails_queued"] == 1
    mailing.admin.run_due()
    (subject, body), = digests(inbox).values()
    assert subject == "New leads for you from an import: 5 (Photovoltaic installations)"
    assert "5 in all, the first 2 below" in body and "Klient 1" in body and "Klient 2" not in body
    assert "And 3 more: all are in your task list" in body


def test_a_digest_whose_leads_all_went_elsewhere_is_not_sent(mailing: Team, smtp: Server, inbox: Inbox,
                                                             tmp_path: Path) -> None:
    path = csv_file(tmp_path / "leads.csv", ["Klient;k@example.pl;;anna"])
    report = mailing.admin.intake.import_csv(path, process=PV)
    mailing.as_("marta").assign(report["first_lead_id"], "piotr")
    result = mailing.admin.run_due()
    (digest,) = [m for m in result["mails"] if m["kind"] == notices.DIGEST]
    assert (digest["state"], digest["error"]) == (
        "cancelled", "import digest not sent: none of its leads is still open and anna's")
    assert [r.rcpt_tos for r in inbox.received] == [["piotr@example.pl"]]  # the manager's assignment notice


def test_a_dry_run_says_how_many_digests_it_would_queue_and_queues_none(mailing: Team, tmp_path: Path) -> None:
    path = csv_file(tmp_path / "leads.csv", ["A;a@example.pl;;anna", "B;b@example.pl;;piotr", "C;c@example.pl;;"])
    dry = mailing.admin.intake.import_csv(path, process=PV, dry_run=True)
    assert dry["mails_queued"] == 2
    assert mailing.admin.list_outbox() == []


def test_the_history_import_tells_the_owners_of_open_deals_only(mailing: Team, smtp: Server, inbox: Inbox,
                                                                tmp_path: Path) -> None:
    mailing.admin.users.set_email("ioana", "ioana@example.ro")
    report = mailing.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True)
    assert report["mails_queued"] == 2  # anna's open D-3 and ioana's D-4; piotr's only deal is lost: nothing
    mailing.admin.run_due()
    got = digests(inbox)
    assert set(got) == {"anna@example.pl", "ioana@example.ro"}
    assert "Orlen SA" in got["anna@example.pl"][1] and "Budimex" not in got["anna@example.pl"][1]
    # no language of her own: the process's, Polish
    assert got["ioana@example.ro"][0] == "Nowe leady dla Ciebie z importu: 1 (Instalacje fotowoltaiczne)"
    assert "import przydzielił Ci leady procesu Instalacje fotowoltaiczne, łącznie: 1.\n" in got["ioana@example.ro"][1]
    again = mailing.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True)
    assert again["mails_queued"] == 0  # the same deals again: nobody is told twice


def test_closed_deals_alone_tell_nobody(mailing: Team, tmp_path: Path) -> None:
    rows = [deal("W-1", name="Anna Lis", status="won", stage="close_contract", created_at="2025-01-06",
                 closed_at="2025-02-10", owner="anna"),
            deal("L-1", name="Ewa Lis", stage="send_offer", status="lost", created_at="2025-03-03",
                 closed_at="2025-04-01", close_reason="price", owner="piotr")]
    report = mailing.admin.intake.import_csv(history_file(tmp_path, rows), process=PV, history=True)
    assert (report["imported"], report["mails_queued"]) == (2, 0)
    assert mailing.admin.list_outbox() == []


