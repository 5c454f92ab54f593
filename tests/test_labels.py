"""Labels in several languages (issue 17, "process files speak too"): a label of a process file is plain text or a
mapping of language to text, checked by the schema and the loader, stored as written, and shown in the reader's
language through one function (``engine.i18n.label``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import i18n, messages
from engine.errors import RuleViolation
from engine.formats import LABEL_SLOTS, upgrade_stored
from engine.i18n import LANGUAGES, Text, label
from engine.loader import check_bytes, load_file
from engine.spec import ProcessSpec
from tests.conftest import Team, ok, printed, refused
from tests.test_formats import line_of, located, problems_of

PROCESSES = Path(__file__).parent.parent / "processes"

# Every label slot of the format in several languages; the process speaks Polish.
SPOKEN = """\
format: 2
id: spoken
title: {en: Solar panels, pl: Panele słoneczne, ro: Panouri solare, ru: Солнечные панели}
description: {en: A process in four languages., pl: Proces w czterech językach.}
currency: PLN
calendar: PL
sales_cycle_days: 30
cool_off_days: 10
language: pl

roles:
  - {id: salesperson, name: {en: Salesperson, pl: Handlowiec}}

fields:
  - {id: roof, label: {en: Roof type, pl: Rodzaj dachu}, type: choice, options: [flat, pitched],
     option_labels: {flat: {en: Flat, pl: Płaski}, pitched: Pitched}, description: {pl: "Jaki dach?"}}

stages:
  - id: register_lead
    name: {en: Register the lead, pl: Zarejestruj leada, ro: Înregistrează lead-ul}
    description: {en: Within a day., pl: W ciągu dnia.}
    deadline_days: 1
    tasks:
      - {id: record, name: {en: Record the contact, pl: Zapisz kontakt}, owner: salesperson,
         description: {pl: Telefon i e-mail.}}
    on_enter:
      - create_task: {id: check, name: {en: Check the history, pl: Sprawdź historię}, owner: salesperson,
                      mandatory: false, description: {pl: Wcześniejsze leady.}}
  - id: sign
    name: Sign the contract
    deadline_days: 5
    tasks:
      - {id: signed, name: Collect the signature, owner: salesperson}

won_stage: sign

closure_reasons:
  - {id: no_budget, label: {en: No budget, pl: Brak budżetu, ru: Нет бюджета}, kind: refusal}
"""


def _column(text: str, needle: str) -> int:
    start = text.index(needle)
    return start - text.rfind("\n", 0, start)


# -- the loader ---------------------------------------------------------------------------------------------------

def test_every_label_slot_takes_a_mapping_of_languages() -> None:
    spec = load_file_from(SPOKEN)

    assert isinstance(spec.title, Text) and spec.title.in_("ro") == "Panouri solare"
    assert str(spec.title) == "Solar panels"  # JSON, logs and English messages read the English text
    stage = spec.stages[0]
    assert (stage.name.in_("pl"), stage.description.in_("pl")) == ("Zarejestruj leada", "W ciągu dnia.")  # type: ignore[union-attr]
    assert label(stage.task("check").name, "pl") == "Sprawdź historię"  # type: ignore[union-attr]
    assert label(stage.task("record").description, "en") == "Telefon i e-mail."  # no English: the process's language
    field = spec.field_spec("roof")
    assert field is not None and label(field.option_label("flat"), "pl") == "Płaski"
    assert field.option_label("pitched") == "Pitched" and label(field.description, "ru") == "Jaki dach?"
    assert label(spec.roles[0].name, "pl") == "Handlowiec"
    assert label(spec.closure_reasons[0].label, "ru") == "Нет бюджета"
    assert spec.stages[1].name == "Sign the contract" and not isinstance(spec.stages[1].name, Text)  # plain stays plain


def load_file_from(text: str) -> ProcessSpec:
    spec, problems = check_bytes(text.encode("utf-8"), "spoken.yaml")
    assert problems == []
    assert spec is not None
    return spec


def test_the_stored_spec_keeps_every_language_and_plain_labels_keep_their_hash() -> None:
    spec = load_file_from(SPOKEN)
    stored = json.loads(spec.canonical_json())

    assert stored["stages"][0]["name"] == {"en": "Register the lead", "pl": "Zarejestruj leada",
                                           "ro": "Înregistrează lead-ul"}
    assert stored["fields"][0]["option_labels"] == {"flat": {"en": "Flat", "pl": "Płaski"}, "pitched": "Pitched"}
    again = ProcessSpec.from_dict(upgrade_stored(stored))
    assert again == spec and again.content_hash == spec.content_hash
    # a label in another language is another version of the process
    changed = load_file_from(SPOKEN.replace("pl: Zarejestruj leada", "pl: Zapisz leada"))
    assert changed != spec and changed.content_hash != spec.content_hash
    # a file without mappings stores exactly what it stored before labels could be mapped
    plain = load_file(Path(__file__).parent / "data" / "format1" / "photovoltaics.yaml")
    assert all(isinstance(s["name"], str) for s in json.loads(plain.canonical_json())["stages"])


PLAIN = "process texts are plain, printable text: delete it"


@pytest.mark.parametrize(("old", "new", "at", "path", "message"), [
    ("pl: Panele słoneczne, ro", "pl: Panele słoneczne, de: Solarmodule, ro", "de: Solarmodule", "title.de",
     "'de' is not a language leadflow speaks; a label's languages are: en, pl, ro, ru"),
    ("ru: Солнечные панели}", "rus: Солнечные панели}", "rus: ", "title.rus",
     "'rus' is not a language leadflow speaks; did you mean 'ru'? a label's languages are: en, pl, ro, ru"),
    ("{en: Register the lead, pl: Zarejestruj leada, ro: Înregistrează lead-ul}",
     "{en: Register the lead, ro: Înregistrează lead-ul}", "{en: Register the lead, ro", "stages[0].name",
     "this label in several languages (en, ro) has no text in the process's language 'pl' (the process's "
     "'language', default en); add pl: ..."),
    ("{en: No budget, pl: Brak budżetu, ru: Нет бюджета}", "{}", "{}, kind", "closure_reasons[0].label",
     "an empty mapping says nothing; give the text, or its languages such as {en: ..., pl: ...}"),
    ("pl: Handlowiec}", "pl: 12}", "12}", "roles[0].name.pl",
     "expected text, got the number 12; write it in quotes if you mean the text '12'"),
    ("pl: Handlowiec}", "pl: ''}", "''}", "roles[0].name.pl", "must not be empty"),
    ("pl: Handlowiec}", "pl: [Handlowiec]}", "[Handlowiec]}", "roles[0].name.pl", "expected text, got a list"),
    ("pl: Zapisz kontakt}", 'pl: "Zapisz\\u202e kontakt"}', '"Zapisz', "stages[0].tasks[0].name.pl",
     "contains the bidirectional control U+202E, which shows the text around it in another order than it is "
     f"written; {PLAIN}"),
    ("pl: Sprawdź historię}", 'pl: "Sprawdź\\x1b historię"}', '"Sprawdź', "stages[0].on_enter[0].create_task.name.pl",
     f"contains the control character U+001B, which a terminal would act on; {PLAIN}"),
    ("pitched: Pitched}", "pitched: Pitched, round: Round}", "round: Round", "fields[0].option_labels.round",
     "'round' is not an option of field 'roof'; its options: flat, pitched"),
    ("flat: {en: Flat, pl: Płaski}", "flat: {en: Flat, pl: Płaski, xx: X}", "xx: X", "fields[0].option_labels.flat.xx",
     "'xx' is not a language leadflow speaks; a label's languages are: en, pl, ro, ru"),
])
def test_each_wrong_mapping_islocated(old: str, new: str, at: str, path: str, message: str) -> None:
    text = SPOKEN.replace(old, new, 1)
    assert text != SPOKEN

    assert located(problems_of(text)) == [(line_of(text, at), _column(text, at), path, message)]


def test_option_labels_belong_to_a_choice_field() -> None:
    text = SPOKEN.replace("  - {id: salesperson, name: {en: Salesperson, pl: Handlowiec}}\n",
                          "  - {id: salesperson, name: {en: Salesperson, pl: Handlowiec}}\n"
                          "fields:\n  - {id: note, label: Note, type: text, option_labels: {a: A}}\n", 1)
    text = text.replace("\nfields:\n  - {id: roof", "\n  - {id: roof", 1)

    assert located(problems_of(text)) == [
        (line_of(text, "option_labels: {a"), _column(text, "option_labels: {a"), "fields[0].option_labels",
         "'option_labels' label the options of a choice or choices field, and this field is of type text")]


def test_labels_in_several_languages_are_new_in_format_2() -> None:
    text = SPOKEN.replace("format: 2", "format: 1").replace("title: {en: Solar panels, pl: Panele słoneczne, ro: "
                                                             "Panouri solare, ru: Солнечные панели}", "title: Solar")
    at = "{en: A process"
    problems = located(problems_of(text))

    assert problems[0] == (line_of(text, at), _column(text, at), "description",
                           "a label in several languages is new in format 2, and this file is written in format 1; "
                           "write 'format: 2' at its top (leadflow process upgrade FILE does it)")
    assert "fields[0].option_labels" in [p[2] for p in problems]  # the key, and every mapped label
    assert len(problems) == 12 and all("new in format 2" in p[3] or "a key of format 2" in p[3] for p in problems)


def test_a_plain_label_keeps_its_messages() -> None:
    text = SPOKEN.replace("  - id: sign\n    name: Sign the contract\n", "  - id: sign\n    name:\n", 1)
    at = "name:\n    deadline_days: 5"

    assert located(problems_of(text)) == [(line_of(text, at), _column(text, at) + 5, "stages[1].name",
                                          "expected text, got nothing; give a value or remove the key")]


def test_the_language_codes_are_the_catalogues_and_the_schema_names_none() -> None:
    assert LANGUAGES == ("en", "pl", "ro", "ru")
    schema_text = (Path(__file__).parent.parent / "schemas" / "process.schema.json").read_text(encoding="utf-8")
    assert '"enum": [\n                "en"' not in schema_text  # one list: engine/i18n.py


# -- the view ------------------------------------------------------------------------------------------------------

def test_the_view_falls_back_to_the_process_language_then_english_then_any() -> None:
    text = Text({"en": "Send the offer", "pl": "Wyślij ofertę", "ro": "Trimite oferta"}, default="pl")
    assert [label(text, code) for code in ("en", "pl", "ro", "ru")] == [
        "Send the offer", "Wyślij ofertę", "Trimite oferta", "Wyślij ofertę"]
    no_default = Text({"en": "Send the offer", "ro": "Trimite oferta"}, default="pl")  # stored by hand, say
    assert label(no_default, "ru") == "Send the offer"
    only = Text({"ro": "Trimite oferta"}, default="pl")
    assert label(only, "ru") == "Trimite oferta" and str(only) == "Trimite oferta"
    assert label("Send the offer", "pl") == "Send the offer"  # a plain label is what it says
    with i18n.using("ro"):
        assert label(text) == "Trimite oferta"  # default: the language in effect
    assert label({"en": "Send", "pl": "Wyślij"}, "pl") == "Wyślij"  # a mapping as JSON holds it


# -- the round trip, for any valid mapping ---------------------------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")), min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and s != "")
_mappings = st.dictionaries(st.sampled_from(LANGUAGES), _texts, min_size=1).map(lambda m: {**m, "pl": m.get("pl", "x")})


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_mappings, stage=_mappings, option=_mappings, plain=st.booleans())
def test_any_valid_mapping_round_trips_through_the_stored_spec(title: dict[str, str], stage: dict[str, str],
                                                               option: dict[str, str], plain: bool) -> None:
    data: dict[str, Any] = yaml.safe_load(SPOKEN)
    data["title"] = title
    data["stages"][1]["name"] = stage["pl"] if plain else stage
    data["fields"][0]["option_labels"]["pitched"] = option
    spec = load_file_from(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))

    stored = ProcessSpec.from_dict(upgrade_stored(json.loads(spec.canonical_json())))
    assert stored == spec and stored.content_hash == spec.content_hash
    for code in LANGUAGES:
        assert label(stored.title, code) == title.get(code, title["pl"])
        assert label(stored.stages[1].name, code) == (stage["pl"] if plain else stage.get(code, stage["pl"]))
        field = stored.field_spec("roof")
        assert field is not None and label(field.option_label("pitched"), code) == option.get(code, option["pl"])


def test_the_label_slots_are_those_the_schema_marks() -> None:
    schema_text = (Path(__file__).parent.parent / "schemas" / "process.schema.json").read_text(encoding="utf-8")
    assert schema_text.count('"$ref": "#/$defs/text"') == 11  # LABEL_SLOTS (one of them twice: tasks and
    assert len(LABEL_SLOTS) == 12  # create_task share the task's definition) and a field's option labels


# -- the engine and the interfaces ----------------------------------------------------------------------------------

def test_a_refused_advance_names_the_open_tasks_in_polish(team: Team) -> None:
    lead = team.as_("anna").leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 601 200 300")
    with pytest.raises(RuleViolation) as err:
        team.as_("anna").advance(lead["id"])
    assert str(err.value).endswith("mandatory tasks open: record_contact")  # English names ids, as ever
    assert i18n.error_text(err.value, "pl") == (
        f"nie można opuścić etapu „Zarejestruj leada” leada {lead['id']}: otwarte zadania obowiązkowe: "
        "Zapisz dane kontaktowe i źródło leada")
    ok(team.url, "anna", "user set anna --language pl")
    assert refused(team.url, "anna", f"lead advance {lead['id']}").endswith("Zapisz dane kontaktowe i źródło leada")


def test_a_polish_board_and_lead_show_polish_labels_and_json_stays_english(team: Team, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lead = team.as_("anna").leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 601 200 300")
    english = printed(team.url, "marta", "board --process photovoltaics")
    assert "Photovoltaic installations" in english and "Register the lead" in english
    monkeypatch.setenv("LEADFLOW_LANG", "pl")
    board = printed(team.url, "marta", "board --process photovoltaics")
    assert "Instalacje fotowoltaiczne" in board and "Zarejestruj leada" in board and "Register the lead" not in board
    page = tmp_path / "board.html"
    ok(team.url, "marta", f"board --process photovoltaics --html {page}")
    html = page.read_text(encoding="utf-8")
    assert "Instalacje fotowoltaiczne" in html and "Zarejestruj leada" in html
    shown = printed(team.url, "anna", f"lead show {lead['id']}")
    assert "Zarejestruj leada" in shown and "Zapisz dane kontaktowe i źródło leada" in shown
    process = printed(team.url, "anna", "process show photovoltaics")
    assert "Instalacje fotowoltaiczne" in process and "Analityk wycen" in process and "Wybrał konkurencję" in process
    assert "Zarejestruj leada" in printed(team.url, "anna", "process show photovoltaics --mermaid")
    data = json.loads(printed(team.url, "anna", f"lead show {lead['id']} --json"))
    assert data["stage_name"] == "Register the lead" and data["tasks"][0]["name"] == (
        "Record the contact details and the source")  # --json: ids and the English labels, whoever reads


def test_every_shipped_process_speaks_polish_and_its_markets_languages() -> None:
    markets = {"photovoltaics": {"en", "pl", "ro"}, "leasing": {"en", "pl", "ro"},
               "mortgage": set(LANGUAGES), "life_insurance": set(LANGUAGES), "saas_trial": set(LANGUAGES)}
    for name, languages in markets.items():
        spec = load_file(PROCESSES / f"{name}.yaml")
        labels = [spec.title, spec.description, *(r.name for r in spec.roles), *(f.label for f in spec.fields),
                  *(f.description for f in spec.fields if f.description),
                  *(text for f in spec.fields for _, text in f.option_labels),
                  *(s.name for s in spec.stages), *(s.description for s in spec.stages if s.description),
                  *(t.name for s in spec.stages for t in s.all_tasks), *(r.label for r in spec.closure_reasons)]
        assert all(isinstance(text, Text) and set(dict(text.texts)) == languages for text in labels), name
        assert all(f.option_labels for f in spec.fields if f.type in ("choice", "choices")), name


def test_a_mail_shows_the_labels_in_the_language_of_its_template(tmp_path: Path) -> None:
    title = Text({"en": "Solar panels", "pl": "Panele słoneczne", "ro": "Panouri solare"}, default="pl")
    for name in ("hello.pl.txt.j2", "hello.txt.j2"):
        (tmp_path / name).write_text("Subject: {{ process.title }}\n\n{{ stage }}\n", encoding="utf-8")
    values = {"process": {"title": title}, "stage": title}

    polish = messages.render("hello", "pl", [tmp_path], values)
    assert (polish.template, polish.subject) == ("hello.pl.txt.j2", "Panele słoneczne")
    assert polish.body == "Panele słoneczne\n"
    english = messages.render("hello", "ro", [tmp_path], values)  # no Romanian template: the English one, in English
    assert (english.template, english.subject) == ("hello.txt.j2", "Solar panels")
