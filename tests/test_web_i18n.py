"""The web app in the person's language (cli/web/text.py, docs/web.md#languages): the user's own, else the
browser's Accept-Language, else the server's; the formats in the same locale; requests in different languages at
once never mix; the settings page; and the menu shows exactly the pages the engine lets each person open."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from cli.web import text
from cli.web.views import NAV
from tests.conftest import Team
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import client, signed_in, with_passwords

_NAV_LINK = re.compile(r'<li><a href="([^"]+)"')


def plain(html: str) -> str:
    """The page with CLDR's no-break spaces as plain ones (``45 000,00 zł``)."""
    return html.replace("\xa0", " ").replace("\u202f", " ")


@pytest.fixture
def floor(team: Team) -> dict[str, Any]:
    with_passwords(team, *PEOPLE, "root")
    lead = team.as_("anna").leads.add(process="photovoltaics", name="Zofia Kowalska", value="1580000")
    return {"team": team, "lead": lead}


@pytest.mark.parametrize(("header", "expected"), [
    ("pl", "pl"), ("pl-PL,pl;q=0.9,en;q=0.8", "pl"), ("ro;q=0.5, ru;q=0.9", "ru"), ("de, ro;q=0.1", "ro"),
    ("en-US,en;q=0.9,pl;q=0.8", "en"), ("pl;q=0, ro", "ro"), ("de-DE", None), ("*", None), ("", None),
    ("ru;q=abc, pl;q=0.2", "pl"), ("RO-ro", "ro"),
])
def test_accept_language_is_negotiated_with_its_q_values(header: str, expected: str | None) -> None:
    assert text.accepted(header) == expected


def test_the_login_page_speaks_the_browsers_language(floor: dict[str, Any]) -> None:
    web = client(floor["team"])
    page = web.get("/login", headers={"Accept-Language": "de;q=0.9, pl;q=0.8, en;q=0.1"})
    assert '<html lang="pl">' in page.text and "Zaloguj się do leadflow" in page.text
    assert ">Nazwa użytkownika<" in page.text and 'name="username"' in page.text
    english = web.get("/login", headers={"Accept-Language": "de"})
    assert '<html lang="en">' in english.text and "Sign in to leadflow" in english.text
    russian = web.get("/login", headers={"Accept-Language": "ru-RU"})
    assert "Вход в leadflow" in russian.text


def test_a_polish_user_reads_the_board_and_the_lead_in_polish_with_polish_formats(floor: dict[str, Any]) -> None:
    team = floor["team"]
    team.admin.users.set_language("anna", "pl")
    anna, _csrf = signed_in(team, "anna")
    board = plain(anna.get("/board", headers={"Accept-Language": "en"}).text)  # her own language wins
    assert '<html lang="pl">' in board
    assert ">Szukaj<" in board and ">Tablica<" in board and ">Ustawienia<" in board
    assert "1 580 000,00 zł" in board and "1580000.00 PLN" not in board
    lead = plain(anna.get(f"/leads/{floor['lead']['id']}").text)
    assert "Zapisz pola" in lead and "Zadania tego etapu" in lead and "1 580 000,00 zł" in lead
    assert re.search(r"\d{1,2}\.\d{2}\.\d{4}", lead)  # dates day first, as Polish writes them
    tasks = lead[lead.index("Zadania tego etapu"):].split("</ul>")[0]
    assert "· otwarty" in lead and '<span class="muted">otwarte' in tasks  # words of the language, not ids


def test_a_closed_leads_tasks_left_open_read_not_done_in_the_readers_language(floor: dict[str, Any]) -> None:
    """A lead closed with tasks of its stage still open: nobody is to do them, so the lead's page says "not done"
    (no deadline), and the status is a word of the page's language."""
    team, lead_id = floor["team"], floor["lead"]["id"]
    team.as_("anna").leads.close(lead_id, "price")
    anna, _csrf = signed_in(team, "anna")
    english = plain(anna.get(f"/leads/{lead_id}").text)
    tasks = english[english.index("Tasks of this stage"):]
    assert "not done" in tasks and ", due" not in tasks.split("</ul>")[0] and "· lost" in english
    team.admin.users.set_language("anna", "pl")
    polish = plain(anna.get(f"/leads/{lead_id}").text)
    assert "niewykonane" in polish and "· przegrany" in polish and "· lost" not in polish


def test_the_users_language_wins_over_the_browsers_and_the_browsers_over_the_servers(
        floor: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    team = floor["team"]
    monkeypatch.setenv("LEADFLOW_LANG", "ru")
    piotr, _csrf = signed_in(team, "piotr")
    assert ">Найти<" in piotr.get("/today").text  # no choice of his, no header: the server's
    assert ">Caută<" in piotr.get("/today", headers={"Accept-Language": "ro"}).text
    team.admin.users.set_language("piotr", "pl")
    assert ">Szukaj<" in piotr.get("/today", headers={"Accept-Language": "ro"}).text


def test_a_person_chooses_their_language_on_the_settings_page(floor: dict[str, Any]) -> None:
    team = floor["team"]
    anna, csrf = signed_in(team, "anna")
    page = anna.get("/settings")
    assert page.status_code == 200 and 'href="/settings"' in anna.get("/board").text
    assert anna.post("/settings", data={"language": "ro"}).status_code == 403  # no CSRF token
    assert {u["name"]: u["language"] for u in team.admin.users.list()}["anna"] is None
    saved = anna.post("/settings", data={"csrf": csrf, "language": "ro"})
    assert saved.status_code == 303 and saved.headers["location"] == "/settings?saved=1"
    assert {u["name"]: u["language"] for u in team.admin.users.list()}["anna"] == "ro"
    assert "Salvat." in anna.get("/settings?saved=1").text
    wrong = anna.post("/settings", data={"csrf": csrf, "language": "xx"})
    assert wrong.status_code == 422 and "xx" in wrong.text
    assert anna.post("/settings", data={"csrf": csrf, "language": ""}).status_code == 303  # back to the default
    assert {u["name"]: u["language"] for u in team.admin.users.list()}["anna"] is None


def test_requests_in_different_languages_at_once_do_not_mix(floor: dict[str, Any]) -> None:
    team = floor["team"]
    team.admin.users.set_language("anna", "pl")
    team.admin.users.set_language("marta", "ru")
    people = {"pl": signed_in(team, "anna")[0], "ru": signed_in(team, "marta")[0]}
    words = {"pl": (">Szukaj<", ">Найти<"), "ru": (">Найти<", ">Szukaj<")}
    mixed: list[str] = []
    start = threading.Barrier(2)

    def browse(code: str) -> None:
        start.wait()
        for _ in range(8):
            page = people[code].get("/board").text
            mine, other = words[code]
            if mine not in page or other in page or f'<html lang="{code}">' not in page:
                mixed.append(code)

    threads = [threading.Thread(target=browse, args=(code,)) for code in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mixed == []


@pytest.mark.parametrize("name", [*PEOPLE, "root"])
def test_the_menu_shows_exactly_the_pages_the_engine_lets_a_person_open(floor: dict[str, Any], name: str) -> None:
    web, _csrf = signed_in(floor["team"], name)
    shown = set(_NAV_LINK.findall(web.get("/today").text))
    for item in NAV:
        opens = web.get(item.path).status_code == 200
        assert (item.path in shown) is opens, (name, item.path)
    assert "/today" in shown


def test_the_engine_answers_what_each_role_may_open(floor: dict[str, Any]) -> None:
    team = floor["team"]
    allowed = {name: {k for k, v in team.as_(name).users.permissions().items() if v}
               for name in ("anna", "marta", "olga", "root")}
    assert allowed["anna"] == {"board", "daily", "users"}
    assert allowed["olga"] == {"users"}
    assert allowed["marta"] == {"board", "daily", "reviews", "rotate", "import", "users"}
    assert allowed["root"] == {"board", "daily", "reviews", "rotate", "import", "import_history", "users",
                               "manage_users", "tokens", "load_processes"}
