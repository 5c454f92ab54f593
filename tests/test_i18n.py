"""Internationalisation: the choice of language, the catalogues, plural forms, translated refusals and help, and
the locale's formats (engine/i18n.py, cli/present/formats.py, docs/i18n.md)."""

from __future__ import annotations

import datetime as dt
import gettext
import os
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from cli.present import formats
from engine import i18n
from engine.errors import InvalidInputError, PermissionDenied, RuleViolation
from tests.conftest import TEST_NOW, Team, js, leadflow, ok, printed, refused
from tests.smtp import Inbox, Server
from tests.test_outbox import inbox, mailing, new_lead, smtp, to_first_contact

__all__ = ["inbox", "mailing", "smtp"]  # the outbox tests' fixtures, used here

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.SOURCE]


# -- choosing the language ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "en"),
    ({"LANG": "pl_PL.UTF-8"}, "pl"),
    ({"LANG": "pl_PL.UTF-8", "LC_MESSAGES": "ro_RO.UTF-8"}, "ro"),
    ({"LANG": "pl_PL.UTF-8", "LC_MESSAGES": "ro_RO", "LC_ALL": "ru_RU.UTF-8"}, "ru"),
    ({"LC_ALL": "ru_RU.UTF-8", "LEADFLOW_LANG": "pl"}, "pl"),
    ({"LANG": "de_DE.UTF-8"}, "en"),  # no catalogue: English
    ({"LEADFLOW_LANG": "xx", "LANG": "ro_RO.UTF-8"}, "ro"),  # an unknown one falls through to the next source
    ({"LANG": "C.UTF-8"}, "en"),
])
def test_the_environment_chooses_the_language(environ: dict[str, str], expected: str) -> None:
    assert i18n.environment_language(environ) == expected


def test_the_users_language_comes_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_LANG", "ro")
    assert i18n.language() == "ro"
    i18n.set_user_language("pl")
    assert i18n.language() == "pl"
    with i18n.using("ru"):
        assert i18n.language() == "ru"
    i18n.reset()
    assert i18n.language() == "ro"


# -- the catalogues -----------------------------------------------------------------------------------------------

def _extracted() -> dict[tuple[str, str | None], tuple[str, ...]]:
    """Every message the sources mark, as babel.cfg extracts them (the .pot's content, made afresh), by its msgid
    and its context (``pgettext("lead status", "open")``: a word another language says differently elsewhere)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[tuple[str, str | None], tuple[str, ...]] = {}
    for _file, _line, message, _comments, context in extract_from_dir(str(ROOT), method_map, options_map):
        forms = (message,) if isinstance(message, str) else tuple(message)
        found[(forms[0], context)] = forms
    return found


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(code: str) -> None:
    with (ROOT / "engine" / "locale" / code / "LC_MESSAGES" / "leadflow.po").open("rb") as f:
        catalogue = read_po(f, locale=code)
    assert catalogue.num_plurals == 3  # Polish, Romanian and Russian: one, few, many
    problems = []
    for (msgid, context), forms in _extracted().items():
        message = catalogue.get(msgid, context=context)
        if message is None:
            problems.append(f"missing: {msgid!r}")
            continue
        translations = [message.string] if isinstance(message.string, str) else list(message.string)
        if "fuzzy" in message.flags or not all(translations):
            problems.append(f"untranslated or fuzzy: {msgid!r}")
            continue
        wanted = set().union(*(i18n.placeholders(f) for f in forms))
        for text in translations:
            if i18n.placeholders(text) - wanted or (len(forms) == 1 and i18n.placeholders(text) != wanted):
                problems.append(f"placeholders of {msgid!r} differ: {text!r}")
    assert problems == []


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_compiled_catalogues_are_those_of_the_po_files(code: str) -> None:
    folder = ROOT / "engine" / "locale" / code / "LC_MESSAGES"
    with (folder / "leadflow.po").open("rb") as f:
        source = read_po(f, locale=code)
    with (folder / "leadflow.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    for message in source:
        if not message.id or "fuzzy" in message.flags:
            continue
        if isinstance(message.id, str) and message.context:
            assert compiled.pgettext(message.context, message.id) == message.string, "run pybabel compile"
        elif isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, "run pybabel compile (docs/i18n.md)"
        else:
            for n, form in [(1, 0), (2, 1), (5, 2 if code != "ro" else 1)]:
                assert compiled.ngettext(message.id[0], message.id[1], n) == message.string[form]


def test_a_catalogue_is_a_null_translations_for_jinja() -> None:
    from jinja2 import Environment

    env = Environment(extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.null_translations_for("pl"), newstyle=True)  # type: ignore[attr-defined]
    assert env.from_string("{{ _('History') }}").render() == "Historia"
    assert isinstance(i18n.null_translations_for("de"), gettext.NullTranslations)


@pytest.mark.parametrize(("code", "expected"), [
    ("en", ["1 open task", "2 open tasks", "5 open tasks", "22 open tasks"]),
    ("pl", ["1 otwarte zadanie", "2 otwarte zadania", "5 otwartych zadań", "22 otwarte zadania"]),
    ("ro", ["1 sarcină deschisă", "2 sarcini deschise", "5 sarcini deschise", "22 de sarcini deschise"]),
    ("ru", ["1 открытая задача", "2 открытые задачи", "5 открытых задач", "22 открытые задачи"]),
])
def test_plural_forms_for_1_2_5_and_22(code: str, expected: list[str]) -> None:
    with i18n.using(code):
        assert [i18n.ngettext("{count} open task", "{count} open tasks", n) for n in (1, 2, 5, 22)] == expected


# -- errors carry their template ----------------------------------------------------------------------------------

def test_an_error_is_english_and_translated_at_presentation() -> None:
    tasks = [i18n.Named("call_client", {"en": "Call the client", "pl": "Zadzwoń do klienta"})]
    error = RuleViolation(i18n.N_("can't leave stage '{stage}' of lead {lead}: mandatory tasks open: {tasks}"),
                          stage=i18n.Named("first_contact", "First contact"), lead=7, tasks=tasks)
    assert str(error) == "can't leave stage 'first_contact' of lead 7: mandatory tasks open: call_client"
    assert i18n.error_text(error, "pl") == ("nie można opuścić etapu „First contact” leada 7: otwarte zadania "
                                            "obowiązkowe: Zadzwoń do klienta")
    assert i18n.error_text(RuleViolation("an older message, formatted already"), "pl") == \
        "an older message, formatted already"


def _refused_advance(team: Team) -> int:
    lead = team.as_("anna").leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 601 200 300")
    return int(lead["id"])


@pytest.mark.parametrize(("code", "start"), [
    # the stage and the open task by their labels in the reader's language (photovoltaics speaks en, pl and ro);
    # a Russian reader gets the process's own language, Polish
    ("pl", "Błąd: nie można opuścić etapu „Zarejestruj leada” leada {lead}: otwarte zadania obowiązkowe: "
           "Zapisz dane kontaktowe i źródło leada"),
    ("ro", "Eroare: nu se poate părăsi etapa „Înregistrează lead-ul” a lead-ului {lead}: sarcini obligatorii "
           "deschise: Înregistrează datele de contact și sursa"),
    ("ru", "Ошибка: нельзя покинуть этап «Zarejestruj leada» лида {lead}: открыты обязательные задачи: "
           "Zapisz dane kontaktowe i źródło leada"),
])
def test_a_refused_advance_speaks_the_users_language(team: Team, code: str, start: str) -> None:
    lead = _refused_advance(team)
    assert js(team.url, "anna", f"user set anna --language {code}")["language"] == code
    line = refused(team.url, "anna", f"lead advance {lead}")
    assert line == start.format(lead=lead)  # the open task by its label, not its id
    i18n.reset()
    english = refused(team.url, "piotr", f"user set anna --language {code}")  # only she or an admin
    assert english.startswith("Error: user 'piotr' (salesperson, team north) may not set the language of user")


def test_the_environment_language_speaks_until_a_user_chose_one(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = _refused_advance(team)
    monkeypatch.setenv("LEADFLOW_LANG", "pl")
    assert refused(team.url, "anna", f"lead advance {lead}").startswith("Błąd: nie można opuścić etapu")
    ok(team.url, "anna", "user set anna --language en")
    assert refused(team.url, "anna", f"lead advance {lead}").startswith("Error: can't leave stage 'register_lead'")
    assert js(team.url, "anna", ["user", "set", "anna", "--language", ""])["language"] is None
    monkeypatch.setenv("LEADFLOW_LANG", "en")
    assert refused(team.url, "anna", "user set anna --language de") == (
        "Error: language 'de' is not one leadflow speaks; choose one of en, pl, ro, ru")


def test_json_stays_language_neutral(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = _refused_advance(team)
    english = js(team.url, "anna", f"lead show {lead} --json")
    monkeypatch.setenv("LEADFLOW_LANG", "ru")
    assert js(team.url, "anna", f"lead show {lead} --json") == english


@pytest.mark.parametrize(("code", "words"), [
    ("pl", ["Historia", "opiekun anna (zespół north)", "2.03.2026, 09:00"]),
    ("ro", ["Istoric", "responsabil anna (echipa north)", "02.03.2026, 09:00"]),
    ("ru", ["История", "ответственный anna (команда north)", "02.03.2026, 09:00"]),
])
def test_lead_show_in_each_language(team: Team, monkeypatch: pytest.MonkeyPatch, code: str,
                                    words: list[str]) -> None:
    lead = team.as_("anna").leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 601 200 300",
                                      value="1580000")
    monkeypatch.setenv("LEADFLOW_LANG", code)
    shown = printed(team.url, "anna", f"lead show {lead['id']}")
    for word in [*words, formats.money("1580000.00", "PLN", code)]:
        assert word in shown, shown


# -- formats ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "money", "day", "instant", "ago"), [
    ("en", "1580000.00 PLN", "2026-03-16", "2026-03-16 10:00", "3 days ago"),
    ("pl", "1\xa0580\xa0000,00\xa0zł", "16.03.2026", "16.03.2026, 10:00", "3 dni temu"),
    ("ro", "1.580.000,00\xa0RON", "16.03.2026", "16.03.2026, 10:00", "acum 3 zile"),
    ("ru", "1\xa0580\xa0000,00\xa0₽", "16.03.2026", "16.03.2026, 10:00", "3 дня назад"),
])
def test_money_and_dates_in_each_language(code: str, money: str, day: str, instant: str, ago: str) -> None:
    currency = {"ro": "RON", "ru": "RUB"}.get(code, "PLN")
    assert formats.money("1580000.00", currency, code).replace("\u202f", "\xa0") == money
    assert formats.date("2026-03-16", code) == day
    assert formats.short_time("2026-03-16T10:00:00", code) == instant
    assert formats.relative(dt.timedelta(days=-3), code) == ago


def test_the_demo_and_help_need_the_catalogue_only_when_asked() -> None:
    assert i18n.translations("en").gettext("History") == "History"
    assert TEST_NOW  # the suite's clock: the CLI tests above ran at it


@pytest.mark.parametrize(("code", "summary", "option"), [
    ("pl", "Przesuń leady do następnego etapu", "Następny etap, gdy proces dopuszcza kilka."),
    ("ro", "Mută lead-urile în etapa următoare", "Etapa următoare, când procesul permite mai multe."),
    ("ru", "Перевести лиды на следующий этап", "Следующий этап, когда процесс допускает несколько."),
])
def test_help_is_translated_and_english_again_after(monkeypatch: pytest.MonkeyPatch, code: str, summary: str,
                                                    option: str) -> None:
    monkeypatch.setenv("LEADFLOW_LANG", code)
    shown = " ".join(printed(None, None, "lead advance --help").split())
    assert summary in shown and option in shown
    top = " ".join(printed(None, None, "--help").split())
    assert {"pl": "procesy sprzedaży", "ro": "procese de vânzare", "ru": "процессы продаж"}[code] in top
    monkeypatch.delenv("LEADFLOW_LANG")
    assert "Move leads to their next stage" in " ".join(printed(None, None, "lead advance --help").split())


# -- the board, terminal and HTML -------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "words"), [
    ("pl", ["stan na 2.03.2026, 09:00: 2 otwarte leady, 1\xa0580\xa0045,00\xa0zł", "czerwone: 0", "opiekun",
            "2 leady, 1\xa0580\xa0045,00\xa0zł", "0 dn."]),
    ("ro", ["la data de 02.03.2026, 09:00: 2 lead-uri deschise, 1.580.045,00\xa0PLN", "roșii: 0", "responsabil",
            "2 lead-uri"]),
    ("ru", ["на 02.03.2026, 09:00: 2 открытых лида, 1\xa0580\xa0045,00\xa0PLN", "красные: 0", "ответственный",
            "2 лида", "0 дн."]),
])
def test_the_board_in_each_language(team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str,
                                    words: list[str]) -> None:
    anna = team.as_("anna")
    for value in ("1580000", "45"):
        anna.leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 601 200 300", value=value)
    monkeypatch.setenv("LEADFLOW_LANG", code)
    shown = " ".join(printed(team.url, "marta", "board --process photovoltaics").replace("\xa0", " ").split())
    for word in words:
        assert word.replace("\xa0", " ") in shown, shown
    page = tmp_path / "board.html"
    ok(team.url, "marta", f"board --process photovoltaics --html {page}")
    html = page.read_text(encoding="utf-8")
    assert f'<html lang="{code}">' in html
    assert {"pl": "Tablica szans sprzedaży", "ro": "Panoul oportunităților", "ru": "Доска возможностей"}[code] in html
    assert {"pl": "2 otwarte leady", "ro": "2 lead-uri deschise", "ru": "2 открытых лида"}[code] not in html  # split
    assert {"pl": "otwarte leady", "ro": "lead-uri deschise", "ru": "открытых лида"}[code] in html


@pytest.mark.parametrize(("code", "words"), [
    ("pl", ["Lejek photovoltaics (Instalacje fotowoltaiczne), leady utworzone", "2 leady",
            "konwersja od leada do wygranej 0,0%", "dotarło", "100,0%", "Wygrane"]),
    ("ro", ["Pâlnia photovoltaics", "2 lead-uri", "conversie de la lead la câștig 0,0%", "au ajuns", "100,0%"]),
    ("ru", ["Воронка photovoltaics", "2 лида", "конверсия от лида до выигрыша 0,0%", "дошли", "100,0%"]),
])
def test_a_report_in_each_language(team: Team, monkeypatch: pytest.MonkeyPatch, code: str, words: list[str]) -> None:
    anna = team.as_("anna")
    for name in ("Łukasz Żółć", "Anna Kowalska"):
        anna.leads.add(process="photovoltaics", name=name, phone="+48 601 200 300")
    monkeypatch.setenv("LEADFLOW_LANG", code)
    shown = " ".join(printed(team.url, "marta", "report funnel --period all --process photovoltaics").split())
    for word in words:
        assert word in shown, shown


# -- input in the user's language -------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "typed", "stored"), [
    ("pl", ["35 000,00", "35\u00a0000,50", "35.000,00", "1 580 000"],
     ["35000.00", "35000.50", "35000.00", "1580000.00"]),
    ("ro", ["35.000,00", "35.000", "35 000,5", "1.580.000"], ["35000.00", "35000.00", "35000.50", "1580000.00"]),
    ("ru", ["35 000,00", "35,5", "35.000,00", "1 580 000,00"], ["35000.00", "35.50", "35000.00", "1580000.00"]),
    ("en", ["35,000.00", "35000.5", "35,000", "1,580,000"], ["35000.00", "35000.50", "35000.00", "1580000.00"]),
])
def test_amounts_are_read_in_the_users_language(team: Team, code: str, typed: list[str], stored: list[str]) -> None:
    ok(team.url, "anna", f"user set anna --language {code}")
    for text, expected in zip(typed, stored, strict=True):
        lead = js(team.url, "anna", ["lead", "add", "--process", "photovoltaics", "--name", "Łukasz Żółć",
                                     "--value", text, "--json"])
        assert lead["value"] == expected, text
        after = js(team.url, "anna", ["lead", "set", str(lead["id"]), f"budget={text}", "--json"])
        assert after["fields"]["budget"] == expected, text


@pytest.mark.parametrize(("code", "error"), [
    ("pl", "Błąd: value '35.000' jest niejednoznaczne: napisz 35000 dla tysięcy albo 35,000 dla części ułamkowej"),
    ("ru", "Ошибка: value '35.000' неоднозначно: напишите 35000 для тысяч или 35,000 для дробной части"),
])
def test_an_ambiguous_amount_is_refused_clearly(team: Team, code: str, error: str) -> None:
    ok(team.url, "anna", f"user set anna --language {code}")
    assert refused(team.url, "anna", ["lead", "add", "--process", "photovoltaics", "--name", "X", "--value",
                                      "35.000"]) == error
    assert refused(team.url, "anna", ["lead", "add", "--process", "photovoltaics", "--name", "X", "--value",
                                      "35.00.0"]).startswith("Błąd: value musi być liczbą" if code == "pl"
                                                             else "Ошибка: value должно быть числом")


@pytest.mark.parametrize(("code", "typed"), [("pl", "16.03.2026"), ("ro", "16.03.2026"), ("ru", "16/03/2026"),
                                             ("en", "2026-03-16")])
def test_dates_take_iso_and_the_locales_short_form(team: Team, code: str, typed: str) -> None:
    ok(team.url, "anna", f"user set anna --language {code}")
    lead = js(team.url, "anna", ["lead", "add", "--process", "mortgage", "--name", "Łukasz Żółć", "--json"])
    for text in (typed, "2026-03-16"):
        after = js(team.url, "anna", ["lead", "set", str(lead["id"]), f"purchase_by={text}", "--json"])
        assert after["fields"]["purchase_by"] == "2026-03-16"
    if code == "en":
        refused(team.url, "anna", ["lead", "set", str(lead["id"]), "purchase_by=16.03.2026"])


# -- exports for spreadsheets -------------------------------------------------------------------------------------

def _export_leads(team: Team) -> None:
    anna = team.as_("anna")
    anna.leads.add(process="photovoltaics", name="=HYPERLINK(\"http://x\")", phone="+48 601 111 001",
                   value="42500.50", fields={"budget": "40000", "roof_area_m2": "45,5"})
    anna.leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 601 200 300", value="1580000")


def test_the_xlsx_export_has_real_numbers_dates_and_text_phones(team: Team, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    _export_leads(team)
    book = tmp_path / "leads.xlsx"
    result = leadflow(team.url, "anna", f"export --process photovoltaics --xlsx {book}")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"Exported 2 leads to {book}\n")
    sheet = load_workbook(book).active
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, sheet[2], strict=True))
    assert first["id"].data_type == "n" and first["id"].value == 1
    assert first["value"].data_type == "n" and first["value"].value == 42500.5
    assert first["value"].number_format == '#,##0.00 "PLN"'
    assert first["budget"].data_type == "n" and first["budget"].value == 40000
    assert first["roof_area_m2"].data_type == "n" and first["roof_area_m2"].value == 45.5
    assert first["created_at"].is_date and first["created_at"].value == dt.datetime.fromisoformat(TEST_NOW)
    assert first["phone"].data_type == "s" and first["phone"].value == "+48601111001"  # E.164, no apostrophe
    assert first["name"].data_type == "s" and first["name"].value == '=HYPERLINK("http://x")'  # not a formula
    assert sheet.cell(3, header.index("value") + 1).value == 1580000


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_the_excel_csv_uses_the_decimal_comma_and_libreoffice_reads_numbers(
        team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    import shutil
    import subprocess

    from openpyxl import load_workbook

    _export_leads(team)
    monkeypatch.setenv("LEADFLOW_LANG", code)
    csv_file = tmp_path / "leads.csv"
    assert leadflow(team.url, "anna", f"export --process photovoltaics --excel --output {csv_file}").exit_code == 0
    text = csv_file.read_text(encoding="utf-8-sig")
    assert ";42500,50;" in text and ";1580000,00;" in text and ";45,5" in text
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) must be installed in CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui")
    locale_id = {"pl": 1045, "ro": 1048, "ru": 1049}[code]  # the CSV filter's language, as Excel's would be
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to",
                    "xlsx", f"--infilter=CSV:59,34,76,1,,{locale_id}", "--outdir", str(tmp_path), str(csv_file)],
                   check=True, capture_output=True, timeout=180)
    sheet = load_workbook(tmp_path / "leads.xlsx").active
    header = [c.value for c in sheet[1]]
    value = sheet.cell(2, header.index("value") + 1)
    assert value.data_type == "n" and value.value == 42500.5
    assert sheet.cell(3, header.index("value") + 1).value == 1580000
    assert sheet.cell(2, header.index("roof_area_m2") + 1).value == 45.5


# -- mails in the client's language --------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "subject", "opening"), [
    (None, "Dziękujemy za zapytanie, Łukasz Żółć", "Dzień dobry,"),  # the process's language: photovoltaics, pl
    ("en", "Thank you for your inquiry, Łukasz Żółć", "Dear Łukasz Żółć,"),
    ("ro", "Vă mulțumim pentru solicitare, Łukasz Żółć", "Bună ziua,"),
    ("ru", "Спасибо за ваше обращение, Łukasz Żółć", "Здравствуйте!"),
])
def test_a_client_mail_goes_in_the_clients_language(mailing: Team, smtp: Server, inbox: Inbox, code: str | None,
                                                    subject: str, opening: str) -> None:
    lead = new_lead(mailing.as_("anna"))
    client = mailing.as_("anna").clients.set_language(lead["client_id"], code)
    assert client["language"] == code
    to_first_contact(mailing, lead["id"])
    assert mailing.admin.run_due()["sent"] == 1
    (got,) = inbox.received
    assert str(got.message["Subject"]) == subject
    assert got.message.get_content().startswith(opening)
    head = got.raw.split(b"\r\n\r\n")[0].replace(b"\r\n ", b" ")  # unfolded
    assert head.isascii()  # every header encoded (RFC 2047), the UTF-8 subject and names included
    (line,) = [h for h in head.split(b"\r\n") if h.startswith(b"Subject: ")]
    assert b"=?utf-8?" in line
    assert str(make_header(decode_header(line.decode("ascii").removeprefix("Subject: ")))) == subject


def test_a_clients_language_is_checked_and_needs_a_lead_one_may_work(team: Team) -> None:
    lead = team.as_("anna").leads.add(process="photovoltaics", name="Łukasz Żółć")
    with pytest.raises(InvalidInputError, match="language 'de' is not one leadflow speaks"):
        team.as_("anna").clients.set_language(lead["client_id"], "de")
    with pytest.raises(PermissionDenied):
        team.as_("piotr").clients.set_language(lead["client_id"], "pl")
    assert team.as_("marta").clients.set_language(lead["client_id"], "")["language"] is None

