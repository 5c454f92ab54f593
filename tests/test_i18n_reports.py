"""The CLI's reports, the stand-up and the refusals in Polish, Romanian and Russian (issue 17): headings, counts
with each language's plural forms, and the locale's dates; English as it always was."""

from __future__ import annotations

import pytest

from engine import i18n
from tests.conftest import Team, printed, refused
from tests.test_board import add


@pytest.mark.parametrize(("code", "heading", "red", "due_today", "new"), [
    ("en", "Stand-up as of 2026-03-06T09:00:00", "1 red", "1 due today", "1 new"),
    ("pl", "Odprawa na 6 mar 2026, 09:00:00", "1 czerwony", "1 na dziś", "1 nowy"),
    ("ro", "Ședința zilnică la 6 mar. 2026, 09:00:00", "1 roșu", "1 scadent azi", "1 nou"),
    ("ru", "Планёрка на 6 мар. 2026 г., 09:00:00", "1 красный", "1 на сегодня", "1 новый"),
])
def test_the_stand_up_speaks_the_language(team: Team, monkeypatch: pytest.MonkeyPatch, code: str, heading: str,
                                          red: str, due_today: str, new: str) -> None:
    add(team, "2026-02-23T09:00", name="Overdue")
    add(team, "2026-03-05T15:00", name="Fresh")
    monkeypatch.setenv("LEADFLOW_LANG", code)
    shown = " ".join(printed(team.url, "anna", "daily", now="2026-03-06T09:00:00").split())
    assert shown.startswith(heading)
    assert f"anna: {red}, {due_today}, " in shown
    assert f", {new}, " in shown


@pytest.mark.parametrize(("code", "cycle", "salespeople", "forecast", "column"), [
    ("en", "Sales cycle of the leads won", "Salespeople, won and lost", "Forecast photovoltaics", "expected wins"),
    ("pl", "Cykl sprzedaży leadów wygranych", "Handlowcy, wygrane i przegrane", "Prognoza photovoltaics",
     "oczekiwane wygrane"),
    ("ro", "Ciclul de vânzare al lead-urilor câștigate", "Agenți de vânzări, câștigate și pierdute",
     "Prognoză photovoltaics", "câștiguri așteptate"),
    ("ru", "Цикл сделки лидов, выигранных", "Менеджеры по продажам, выиграно и проиграно",
     "Прогноз photovoltaics", "ожидаемые выигрыши"),
])
def test_the_reports_speak_the_language(team: Team, monkeypatch: pytest.MonkeyPatch, code: str, cycle: str,
                                        salespeople: str, forecast: str, column: str) -> None:
    add(team, "2026-02-23T09:00", name="Open one", value="45000.50")
    monkeypatch.setenv("LEADFLOW_LANG", code)
    assert cycle in " ".join(printed(team.url, "marta", "report cycle").split())
    assert salespeople in " ".join(printed(team.url, "marta", "report salespeople").split())
    shown = " ".join(printed(team.url, "marta", "report forecast --process photovoltaics").split())
    assert forecast in shown
    assert column in shown
    if code == "pl":
        assert "45 000,50" in shown  # amounts in the locale's separators
    if code == "en":
        assert "45000.50" in shown


@pytest.mark.parametrize(("code", "line"), [
    ("en", "Error: lead 424242 does not exist"),
    ("pl", "Błąd: lead 424242 nie istnieje"),
    ("ro", "Eroare: lead-ul 424242 nu există"),
    ("ru", "Ошибка: лид 424242 не существует"),
])
def test_a_refusal_that_was_an_f_string_speaks_the_language(team: Team, monkeypatch: pytest.MonkeyPatch, code: str,
                                                             line: str) -> None:
    monkeypatch.setenv("LEADFLOW_LANG", code)
    assert refused(team.url, "anna", "lead show 424242") == line


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_a_permission_refusal_names_the_actor_and_the_deed_in_the_language(team: Team,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           code: str) -> None:
    monkeypatch.setenv("LEADFLOW_LANG", code)
    line = refused(team.url, "anna", "user add someone --role salesperson")
    expected = {"pl": "użytkownik „anna” (salesperson, zespół north) nie może dodawać użytkowników: może to tylko "
                      "administrator",
                "ro": "utilizatorul „anna” (salesperson, echipa north) nu poate adăuga utilizatori: doar un "
                      "administrator poate",
                "ru": "пользователь «anna» (salesperson, команда north) не может добавлять пользователей: это может "
                      "только администратор"}[code]
    assert line.endswith(expected)


#: The stand-up's and the reports' counted words, in 1, 2, 5 and 22: Polish and Russian have three forms, Romanian
#: says "de" from 20.
STALLED = ('{count} stalled lead', '{count} stalled leads')
RED = ('[bold red]{count} red[/]', '[bold red]{count} red[/]')  # its colour is left out of the expected forms
REVISITS = ('{count} revisit', '{count} revisits')
LEADS = ('{count} lead', '{count} leads')
PLURALS = [
    (*STALLED, 'en', '1 stalled lead | 2 stalled leads | 5 stalled leads | 22 stalled leads'),
    (*STALLED, 'pl', '1 zastały lead | 2 zastałe leady | 5 zastałych leadów | 22 zastałe leady'),
    (*STALLED, 'ro', '1 lead blocat | 2 lead-uri blocate | 5 lead-uri blocate | 22 de lead-uri blocate'),
    (*STALLED, 'ru', '1 застрявший лид | 2 застрявших лида | 5 застрявших лидов | 22 застрявших лида'),
    (*RED, 'en', '1 red | 2 red | 5 red | 22 red'),
    (*RED, 'pl', '1 czerwony | 2 czerwone | 5 czerwonych | 22 czerwone'),
    (*RED, 'ro', '1 roșu | 2 roșii | 5 roșii | 22 de roșii'),
    (*RED, 'ru', '1 красный | 2 красных | 5 красных | 22 красных'),
    (*REVISITS, 'en', '1 revisit | 2 revisits | 5 revisits | 22 revisits'),
    (*REVISITS, 'pl', '1 powrót | 2 powroty | 5 powrotów | 22 powroty'),
    (*REVISITS, 'ro', '1 revenire | 2 reveniri | 5 reveniri | 22 de reveniri'),
    (*REVISITS, 'ru', '1 возврат | 2 возврата | 5 возвратов | 22 возврата'),
    (*LEADS, 'en', '1 lead | 2 leads | 5 leads | 22 leads'),
    (*LEADS, 'pl', '1 lead | 2 leady | 5 leadów | 22 leady'),
    (*LEADS, 'ro', '1 lead | 2 lead-uri | 5 lead-uri | 22 de lead-uri'),
    (*LEADS, 'ru', '1 лид | 2 лида | 5 лидов | 22 лида'),
]


@pytest.mark.parametrize(("singular", "plural", "code", "expected"), PLURALS)
def test_plural_forms_of_the_stand_up_and_reports_for_1_2_5_and_22(singular: str, plural: str, code: str,
                                                                   expected: str) -> None:
    with i18n.using(code):
        forms = [i18n.ngettext(singular, plural, n) for n in (1, 2, 5, 22)]
    assert [f.removeprefix("[bold red]").removesuffix("[/]") for f in forms] == expected.split(" | ")
