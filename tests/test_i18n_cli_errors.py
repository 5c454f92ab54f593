"""The CLI's own words in the reader's language (issue 17): its refusals and usage errors (exit codes unchanged),
the login's lines, ``lead show``'s heading, ``process list``'s titles and the frame of ``process show``'s text
view, with each language's plural forms. The English texts are the tests' elsewhere (test_cli_process.py...);
``tests/test_i18n_messages.py`` keeps cli/ free of English written in the source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine import i18n
from tests.conftest import PLAIN_OUTPUT, Team, check_error, leadflow, printed

PV = "photovoltaics"


@pytest.fixture(autouse=True)
def _english_help_afterwards() -> Iterator[None]:
    """The commands' help back in English after a test that ran the CLI in another language (click holds the
    help text that cli/main.py's ``localize_help`` swapped in)."""
    yield
    from cli.main import cli, localize_help

    with i18n.using(i18n.SOURCE):
        localize_help(cli)


def run(code: str, args: list[str], tmp_path: Path, stdin: str | None = None) -> Result:
    """``leadflow ARGS`` with LEADFLOW_LANG=code, no database, a config directory of its own (no login)."""
    from cli.main import cli

    env = {"LEADFLOW_LANG": code, "LEADFLOW_DB": None, "LEADFLOW_SERVER": None, "LEADFLOW_TOKEN": None,
           "XDG_CONFIG_HOME": str(tmp_path / "config"), **PLAIN_OUTPUT}
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False, prog_name="leadflow")


# -- process show ---------------------------------------------------------------------------------------------------

FRAMES = {
    # the frame's words, the plural forms (1, 2-4, 10), and no English left; the labels are the process's own:
    # Polish and Romanian here, Polish for a Russian reader (photovoltaics' language)
    "pl": ["Etapy", "Powody zamknięcia", "waluta:", "cykl sprzedaży:", "60 dni", "kalendarz:",
           "PL (terminy pomijają jego weekendy i święta)", "1. Zarejestruj leada [register_lead]",
           "termin: 1 dzień roboczy, bez okna ostrzeżenia; prawdopodobieństwo wygranej 5%",
           "termin: 2 dni robocze, ostrzeżenie 1 dzień roboczy przed terminem",
           "termin: 10 dni roboczych, ostrzeżenie 3 dni robocze przed terminem",
           "wymagane pola: ", "dalej: -> Nawiąż pierwszy kontakt [first_contact]",
           "przy wejściu: wyślij e-mail 'welcome' (odbiorca: klient)",
           "Analityk wycen, obowiązkowe, tylko gdy financing = leasing", "własny termin: 4 dni robocze",
           "(tworzone przy wejściu)", "etap wygranej: jego ukończenie wygrywa sprzedaż",
           "dalej: brak (tu sprzedaż jest wygrana)",
           "lead można zamknąć jako przegrany na każdym etapie, z jednego z tych powodów",
           "- odmowa, BANT B (Budżet), ponowny kontakt za 180 dni, sprawdzane przez dyrektora sprzedaży",
           "- usunięcie, bez ponownego kontaktu"],
    "ro": ["Etape", "Motive de închidere", "monedă:", "ciclu de vânzare:", "60 de zile",
           "termen: 1 zi lucrătoare, fără fereastră de avertizare; probabilitate de câștig 5%",
           "termen: 2 zile lucrătoare, avertizare cu 1 zi lucrătoare înainte",
           "termen: 10 zile lucrătoare, avertizare cu 3 zile lucrătoare înainte",
           "doar când financing = leasing", "termen propriu: 4 zile lucrătoare", "(creată la intrare)",
           "trimite e-mailul 'welcome' către clientul",
           "- refuz, BANT B (Buget), revenire după 180 de zile, analizat de directorul de vânzări"],
    "ru": ["Этапы", "Причины закрытия", "валюта:", "цикл продаж:", "60 дней", "1. Zarejestruj leada [register_lead]",
           "срок: 1 рабочий день, без окна предупреждения; вероятность выигрыша 5%",
           "срок: 2 рабочих дня, предупреждение за 1 рабочий день до срока",
           "срок: 10 рабочих дней, предупреждение за 3 рабочих дня до срока",
           "только когда financing = leasing", "собственный срок: 4 рабочих дня", "(создаётся при входе)",
           "- отказ, BANT B (Бюджет), повторный контакт через 180 дней, проверяется директором по продажам"],
}
ENGLISH_FRAME = ["Stages", "Closure reasons", "business day", "deadline", "mandatory", "optional", "only when",
                 "revisit after", "on enter", "required fields", "sales cycle", "currency", "e-mails in"]


@pytest.mark.parametrize("code", sorted(FRAMES))
def test_process_show_speaks_the_readers_language(tmp_path: Path, code: str) -> None:
    result = run(code, ["process", "show", PV], tmp_path)
    assert result.exit_code == 0, result.output
    out = " ".join(line.strip() for line in result.stdout.splitlines())  # the lines as read, not as indented
    for words in FRAMES[code]:
        assert words in out, words
    assert [word for word in ENGLISH_FRAME if word in out] == []


def test_process_show_keeps_the_conditions_notation(tmp_path: Path) -> None:
    """A condition reads the same in every language (ids and operators, as the file and the refusals write it)."""
    for code in ("en", *FRAMES):
        assert "financing = leasing" in run(code, ["process", "show", PV], tmp_path).stdout


# -- usage errors and refusals of the CLI's own -------------------------------------------------------------------

LOGIN = ["login", "https://crm.example.pl", "--user", "anna", "--password-stdin"]  # standard input: empty
BAD_SERVER = ["--server", "ftp://crm.example.pl", "lead", "list"]


@pytest.mark.parametrize(("args", "code", "error"), [
    (LOGIN, "en", "Error: --password-stdin read no password: give it on the first line of standard input"),
    (LOGIN, "pl", "Błąd: --password-stdin nie odczytał hasła: podaj je w pierwszym wierszu standardowego wejścia"),
    (LOGIN, "ro", "Eroare: --password-stdin nu a citit nicio parolă: dă-o pe prima linie a intrării standard"),
    (LOGIN, "ru", "Ошибка: --password-stdin не прочитал пароль: укажите его в первой строке стандартного ввода"),
    (BAD_SERVER, "en", "Error: server address 'ftp://crm.example.pl' is not an http:// or https:// address"),
    (BAD_SERVER, "pl", "Błąd: adres serwera 'ftp://crm.example.pl' nie jest adresem http:// ani https://"),
    (BAD_SERVER, "ro", "Eroare: adresa serverului 'ftp://crm.example.pl' nu este o adresă http:// sau https://"),
    (BAD_SERVER, "ru", "Ошибка: адрес сервера 'ftp://crm.example.pl' не является адресом http:// или https://"),
])
def test_a_usage_error_speaks_the_language(tmp_path: Path, args: list[str], code: str, error: str) -> None:
    assert check_error(run(code, args, tmp_path, ""), 2) == error  # exit 2, whatever the language
    assert not list(tmp_path.rglob("credentials.json"))  # nothing stored


@pytest.mark.parametrize(("code", "error"), [
    ("en", "Error: Invalid value for 'LEAD_ID': '0' is not a valid id: a whole number from 1 to 9223372036854775807"),
    ("pl", "Błąd: Nieprawidłowa wartość 'LEAD_ID': '0' jest poza zakresem (id): potrzebna liczba całkowita od 1 do "
           "9223372036854775807"),
])
def test_a_bad_id_is_a_usage_error_in_the_language(tmp_path: Path, code: str, error: str) -> None:
    result = run(code, ["lead", "show", "0"], tmp_path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == error


@pytest.mark.parametrize(("code", "start"), [
    ("en", "Error: --output '{path}' exists; add --force to replace it, or choose another file name"),
    ("pl", "Błąd: --output '{path}' istnieje; dodaj --force, aby go zastąpić, albo wybierz inną nazwę pliku"),
    ("ro", "Eroare: --output '{path}' există; adaugă --force pentru a-l înlocui sau alege alt nume de fișier"),
    ("ru", "Ошибка: --output '{path}' существует; добавьте --force, чтобы заменить его, или выберите другое имя "
           "файла"),
])
def test_a_file_that_exists_is_refused_in_the_language(team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       code: str, start: str) -> None:
    target = tmp_path / "leads.csv"
    target.write_text("kept\n", encoding="utf-8")
    monkeypatch.setenv("LEADFLOW_LANG", code)
    line = check_error(leadflow(team.url, "marta", ["export", "--output", str(target)]), 1)
    assert line == start.format(path=target)
    assert target.read_text(encoding="utf-8") == "kept\n"  # refused: nothing written


# -- lead show, process list ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "heading", "created"), [
    ("en", "Lead {id}  Łukasz Żółć  open", "in photovoltaics v1, owner anna"),
    ("pl", "Lead {id}  Łukasz Żółć  otwarty", "w photovoltaics v1, opiekun anna"),
    ("ro", "Lead {id}  Łukasz Żółć  deschis", "în photovoltaics v1, responsabil anna"),
    ("ru", "Лид {id}  Łukasz Żółć  открыт", "в photovoltaics v1, ответственный anna"),
])
def test_lead_show_heads_the_lead_with_its_status_in_the_language(team: Team, monkeypatch: pytest.MonkeyPatch,
                                                                   code: str, heading: str, created: str) -> None:
    lead = team.as_("anna").leads.add(process=PV, name="Łukasz Żółć", phone="+48 601 200 300")
    monkeypatch.setenv("LEADFLOW_LANG", code)
    shown = printed(team.url, "anna", f"lead show {lead['id']}")
    assert shown.splitlines()[0] == heading.format(id=lead["id"])
    assert created in " ".join(shown.split())  # the history's details, whatever the table's folding
    assert json.loads(printed(team.url, "anna", f"lead show {lead['id']} --json"))["status"] == "open"


def test_process_list_shows_the_title_in_the_readers_language(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_LANG", "pl")
    shown = printed(team.url, "marta", "process list")
    assert "Instalacje fotowoltaiczne" in shown and "Photovoltaic installations" not in shown
    rows = json.loads(printed(team.url, "marta", "process list --json"))
    assert {r["process"]: r["title"] for r in rows}[PV] == "Photovoltaic installations"  # --json: English
    monkeypatch.setenv("LEADFLOW_LANG", "en")
    assert "Photovoltaic installations" in printed(team.url, "marta", "process list")


def test_process_list_through_a_server_shows_the_readers_title(team: Team, tmp_path: Path) -> None:
    """Through a team server the CLI asks for the labels in the reader's language (X-Leadflow-Labels); --json
    does not, and prints the English title."""
    from tests.server_fixtures import serving
    from tests.test_server_i18n import PASSWORD, cli_as_anna

    with serving(team.admin) as served:
        team.as_("anna").auth.set_password("anna", PASSWORD)
        assert cli_as_anna(served, tmp_path, ["login", served.url, "--user", "anna", "--password-stdin"]).exit_code == 0
        shown = cli_as_anna(served, tmp_path, ["process", "list"], LEADFLOW_LANG="pl")
        as_json = cli_as_anna(served, tmp_path, ["process", "list", "--json"], LEADFLOW_LANG="pl")
    assert shown.exit_code == 0, shown.output
    assert "Instalacje fotowoltaiczne" in shown.stdout and "Photovoltaic installations" not in shown.stdout
    assert {r["process"]: r["title"] for r in json.loads(as_json.stdout)}[PV] == "Photovoltaic installations"


# -- the charts -----------------------------------------------------------------------------------------------------

def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text of the charts drawn from now on (titles, axes' labels, texts on the canvas), none saved."""
    pytest.importorskip("matplotlib")
    from cli.present import charts

    texts: list[str] = []

    def keep(plt: object, fig: object, path: str | Path) -> Path:
        for ax in fig.axes:  # type: ignore[attr-defined]
            texts.extend([ax.get_title(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)])
        plt.close(fig)  # type: ignore[attr-defined]
        return Path(path)

    monkeypatch.setattr(charts, "_save", keep)
    return texts


@pytest.mark.parametrize(("code", "expected"), [
    ("en", ["Refusals, 2026-03-02 to 2026-03-03: 3 in all", "refusals per day", "No won lead in the period",
            "The measured sales cycle", "Median per salesperson"]),
    ("pl", ["Odmowy, od 2026-03-02 do 2026-03-03: razem 3", "odmowy dziennie", "Brak wygranych leadów w okresie",
            "Zmierzony cykl sprzedaży", "Mediana na handlowca"]),
    ("ro", ["Refuzuri, de la 2026-03-02 la 2026-03-03: 3 în total", "refuzuri pe zi",
            "Niciun lead câștigat în perioadă", "Ciclul de vânzare măsurat", "Mediana pe agent"]),
    ("ru", ["Отказы с 2026-03-02 по 2026-03-03: всего 3", "отказов в день", "Нет выигранных лидов за период",
            "Измеренный цикл продаж", "Медиана по продавцам"]),
])
def test_the_charts_speak_the_readers_language(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: str,
                                               expected: list[str]) -> None:
    from cli.present import charts

    texts = _drawn(monkeypatch)
    days = [{"day": "2026-03-02", "count": 2, "cumulative": 2}, {"day": "2026-03-03", "count": 1, "cumulative": 3}]
    with i18n.using(code):
        charts.refusal_trend({"trend": {"days": days}, "total": 3}, tmp_path / "trend.png")
        charts.cycle({"processes": [], "by_salesperson": []}, tmp_path / "cycle.png")
    assert [text for text in expected if text not in texts] == []
