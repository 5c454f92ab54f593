"""What the CLI says after a change, in the reader's language with the language's plural forms (issue 17), and
the labels of choice fields' options where a person reads a lead: ``lead show`` and the web lead page's form
(which still sends the option's id)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest

from engine import i18n
from tests.conftest import Team, ok, printed
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import signed_in, with_passwords

PV = "photovoltaics"


@pytest.fixture(autouse=True)
def _english_help_afterwards() -> Iterator[None]:
    """The commands' help back in English after a test that ran the CLI in another language (click holds the help
    text that cli/main.py's ``localize_help`` swapped in; the help tests read it)."""
    yield
    from cli.main import cli, localize_help

    with i18n.using(i18n.SOURCE):
        localize_help(cli)


@pytest.mark.parametrize(("code", "forms"), [
    ("en", {1: "1 lead advanced", 2: "2 leads advanced", 5: "5 leads advanced", 22: "22 leads advanced"}),
    ("pl", {1: "1 lead przesunięty", 2: "2 leady przesunięte", 5: "5 leadów przesuniętych",
            22: "22 leady przesunięte"}),
    ("ru", {1: "1 лид продвинут", 2: "2 лида продвинуты", 5: "5 лидов продвинуто", 22: "22 лида продвинуты"}),
    ("ro", {1: "1 lead avansat", 2: "2 lead-uri avansate", 5: "5 lead-uri avansate", 22: "22 de lead-uri avansate"}),
])
def test_the_bulk_line_takes_each_languages_plural_forms(code: str, forms: dict[int, str]) -> None:
    from cli.lead_cmds import BATCH_DONE

    with i18n.using(code):
        assert {n: BATCH_DONE["advanced"](n) for n in forms} == forms


def test_a_bulk_advance_and_the_check_speak_polish(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    anna = team.as_("anna")
    leads = [anna.leads.add(process=PV, name=f"Jan {n}", phone=f"+48 601 200 30{n}")["id"] for n in range(2)]
    for lead_id in leads:
        anna.leads.complete_task(lead_id, "record_contact")
    monkeypatch.setenv("LEADFLOW_LANG", "pl")
    shown = printed(team.url, "anna", ["lead", "advance", *map(str, leads)])
    assert shown.strip() == f"2 leady przesunięte: {leads[0]}, {leads[1]}"
    checked = printed(team.url, "root", "check")
    assert re.search(r"Sprawdzono 2 leady w .* w \d+[.,]\d s: wszystko się zgadza\.", checked), checked


def test_a_change_line_speaks_russian(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = team.as_("anna").leads.add(process=PV, name="Jan Kowalski", phone="+48 601 200 300")
    monkeypatch.setenv("LEADFLOW_LANG", "ru")
    done = printed(team.url, "anna", f"task done {lead['id']} record_contact")
    assert done.strip().startswith(f"Задача 'record_contact' лида {lead['id']} выполнена")
    won = ok(team.url, "anna", f"lead set {lead['id']} roof_type=flat").stdout
    assert won.strip() == f"Лид {lead['id']}: roof_type=flat"


def test_lead_show_names_the_chosen_options_by_their_labels(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    anna = team.as_("anna")
    lead = anna.leads.add(process=PV, name="Jan Kowalski", phone="+48 601 200 300",
                          fields={"roof_type": "flat", "financing": "loan"})
    assert anna.leads.get(lead["id"])["choice_labels"] == {"roof_type": "Flat", "financing": "Loan"}
    english = " ".join(printed(team.url, "anna", f"lead show {lead['id']}").split())
    assert "roof_type=Flat" in english and "financing=Loan" in english
    monkeypatch.setenv("LEADFLOW_LANG", "pl")
    polish = " ".join(printed(team.url, "anna", f"lead show {lead['id']}").split())
    assert "roof_type=Płaski" in polish and "financing=Kredyt" in polish and "=flat" not in polish


def _options(html: str, field: str) -> list[tuple[str, str]]:
    select = re.search(rf'<select id="f-{field}" name="f_{field}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select for {field}"
    return [(value, unescape(text)) for value, text in
            re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1))]


def test_the_web_form_shows_option_labels_and_posts_the_ids(team: Team) -> None:
    with_passwords(team, *PEOPLE, "root")
    lead: dict[str, Any] = team.as_("anna").leads.add(process=PV, name="Zofia Kowalska", phone="+48 601 200 300")
    team.admin.users.set_language("anna", "pl")
    anna, csrf = signed_in(team, "anna")
    page = anna.get(f"/leads/{lead['id']}").text
    assert _options(page, "roof_type") == [("", "–"), ("pitched", "Skośny"), ("flat", "Płaski"),
                                           ("ground", "Na gruncie")]
    sent = anna.post(f"/leads/{lead['id']}/fields", data={"csrf": csrf, "version": str(lead["version"]),
                                                          "f_roof_type": "flat"})
    assert sent.status_code in (200, 303), sent.text
    assert team.as_("anna").leads.get(lead["id"])["fields"]["roof_type"] == "flat"


def test_admin_lines_speak_romanian(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    count = len(team.admin.users.list())
    monkeypatch.setenv("LEADFLOW_LANG", "ro")
    listed = printed(team.url, "root", "user list")
    assert f"{count} {'de ' if count >= 20 else ''}utilizatori" in listed
    shown = printed(team.url, "root", "user set anna --email anna@example.pl")
    assert shown.strip() == "Utilizatorul anna: e-mail anna@example.pl"
    loaded = printed(team.url, "root", "process load --shipped").splitlines()
    assert "photovoltaics: versiunea 1 neschimbată, nimic de făcut" in loaded


@pytest.mark.parametrize("n", [1, 2, 5, 22])
def test_the_outbox_lines_take_the_plural_forms(n: int) -> None:
    with i18n.using("pl"):
        line = i18n.ngettext("{count} due mail left for the next run (--limit)",
                             "{count} due mails left for the next run (--limit)", n)
    assert line == {1: "1 należna wiadomość zostaje", 2: "2 należne wiadomości zostają",
                    5: "5 należnych wiadomości zostaje", 22: "22 należne wiadomości zostają"}[n] + (
        " na następne uruchomienie (--limit)")
