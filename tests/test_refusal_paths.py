"""Who may not do a thing is refused through every path there is to it, and the refusal changes nothing.

The work of issues 14, 16, 18 and 20 (activities and calls, the next contact, the task list's pages, the board and
the reports as of a past instant, import jobs, the history import, closing several leads, external ids, a person's
language) is reached from the CLI on a local database, the CLI through a team server (``cli_db``), the HTTP API
(a person's token, an integration token), the web app's forms (a test client) and a real browser. Each refusal here
is checked for its exit code or status, its message, and a database that is the same before and after
(``tests.conftest.snapshot``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import USERS as FLOOR
from tests.conftest import CliDatabase, Team, cli_floor, js, leadflow, refused, snapshot
from tests.remote import server_for
from tests.server_fixtures import Served, serving
from tests.test_web import _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import csrf_of, signed_in, with_passwords

PV = "photovoltaics"
CSV = "name,email,value\nNowy Klient,nowy@example.pl,1000\n"
#: A past instant of the test clock's day (TEST_NOW is 2026-03-02T09:00): the leads below were added at TEST_NOW.
PAST = "2026-03-01"
#: Through a server a lead the caller may not see does not exist (404), so that ids cannot be probed.
HIDDEN_LEAD = "lead 1 does not exist"
MAY_NOT_SEE_LEAD = "may not see lead 1: only its owner, a manager of its team, its team's departments or an admin may"


# -- the CLI: a local database, and a team server on SQLite and on PostgreSQL -----------------------------------

def _floor_with_leads(url: str) -> None:
    """The two-team floor (conftest's USERS), anna's lead 1 (north) and ioana's lead 2 (south)."""
    cli_floor(FLOOR)(url)
    assert js(url, "anna", f"lead add --process {PV} --name 'Jan Kowalski' --phone 600100200")["id"] == 1
    assert js(url, "ioana", f"lead add --process {PV} --name 'Ion Popescu' --external-id CRM-2")["id"] == 2


@pytest.fixture
def floor_url(cli_db: CliDatabase) -> str:
    return cli_db.template("refusal_floor", _floor_with_leads)


def case(id_: str, user: str, command: str, local: str, remote: str | None = None) -> Any:
    """A command ``user`` may not run: the refusal's words on a local database, and through a server when they
    differ there (a hidden lead)."""
    return pytest.param(user, command, local, remote if remote is not None else local, id=id_)


def hidden(id_: str, user: str, command: str) -> Any:
    """A command about anna's lead 1, which ``user`` may not see."""
    who = {"piotr": "salesperson, team north", "radu": "manager, team south"}[user]
    return case(id_, user, command, f"user '{user}' ({who}) {MAY_NOT_SEE_LEAD}", HIDDEN_LEAD)


CLI_REFUSALS = [
    hidden("call-on-a-colleagues-lead", "piotr", "activity add 1 --kind call --text x --outcome no_answer"),
    hidden("note-on-another-teams-lead", "radu", "activity add 1 --kind note --text x"),
    case("analyst-logs-on-a-lead-she-sees", "olga", "activity add 1 --kind note --text x",
         "user 'olga' (analyst, team north) may not log an activity on lead 1: it belongs to anna; only its owner "
         "or a manager of its team may"),
    case("activities-of-another-teams-lead", "anna", "activity list 2",
         "may not see lead 2", "lead 2 does not exist"),
    hidden("next-contact-on-a-colleagues-lead", "piotr", "lead next-contact 1 2026-03-05T10:00"),
    case("next-contact-by-an-analyst", "olga", "lead next-contact 1 2026-03-05T10:00",
         "user 'olga' (analyst, team north) may not book a contact on lead 1: it belongs to anna"),
    hidden("clear-next-contact-of-a-colleague", "piotr", "lead next-contact 1 --clear"),
    case("task-list-of-a-colleague", "piotr", "task list --owner anna",
         "user 'piotr' (salesperson, team north) may not see the tasks of anna: only a manager of team north or an "
         "admin may"),
    case("task-list-of-another-team", "radu", "task list --owner anna --json",
         "user 'radu' (manager, team south) may not see the tasks of anna: only a manager of team north"),
    case("close-many-with-a-colleagues-lead", "anna", "lead close 1 2 --reason bad_timing",
         "can't close 1 of 2 leads, so none was written: user 'anna' (salesperson, team north) may not see lead 2",
         "can't close 1 of 2 leads, so none was written: lead 2 does not exist"),
    case("external-id-by-an-analyst", "olga", f"lead add --process {PV} --name Z --external-id CRM-1",
         "user 'olga' (analyst) may not add leads"),
    case("company-with-external-id-by-an-analyst", "olga", "client company Firma --external-id CRM-2",
         "user 'olga' (analyst) may not add companies"),
    case("external-id-of-another-teams-lead", "anna", "lead show ext:CRM-2",
         "no lead has the external id 'CRM-2'"),
    case("external-id-of-a-colleagues-lead", "piotr", "lead show ext:CRM-2 --json",
         "no lead has the external id 'CRM-2'"),
    # an external id already used is refused without naming a lead the caller may not see
    case("external-id-of-another-teams-lead-again", "anna", f"lead add --process {PV} --name Z --external-id CRM-2",
         "external id 'CRM-2' is already another lead's; each deal has its own"),
    case("language-of-a-colleague", "anna", "user set piotr --language pl",
         "user 'anna' (salesperson, team north) may not set the language of user 'piotr': only an admin may"),
    case("language-of-another-teams-client", "anna", "client set 2 --language ro",
         "user 'anna' (salesperson) may not see client 2", "client 2 does not exist"),
]

#: As of a past instant the scope is today's rule (``ctx.scope``): whose leads, which team, which role has a board.
OWN_ONLY = "user 'anna' (salesperson) sees only their own leads"
CLI_REFUSALS += [case(f"{command.split()[0]}-as-of-{who}", user, f"{command} --as-of {PAST}", words) for who, user,
                 command, words in [
                     ("a-colleague", "anna", "board --owner piotr", OWN_ONLY),
                     ("an-analyst", "olga", "board", "user 'olga' (analyst) has no board; boards are for salespeople"),
                     ("another-team", "marta", "report funnel --team south",
                      "user 'marta' (manager, team north) may not see team south: only a manager of team south"),
                     ("a-colleague", "anna", "report forecast --owner piotr", OWN_ONLY),
                     ("another-team", "marta", "daily --owner ioana",
                      "user 'marta' (manager, team north) may not see the agenda of ioana: only a manager of team "
                      "south"),
                     ("a-colleague", "anna", "stalled --owner piotr", OWN_ONLY)]]


@pytest.mark.parametrize(("user", "command", "local", "remote"), CLI_REFUSALS)
def test_the_cli_refuses_on_a_local_database_and_through_a_server(
        cli_db: CliDatabase, floor_url: str, user: str, command: str, local: str, remote: str) -> None:
    line = refused(floor_url, user, command)
    assert (remote if cli_db.remote else local) in line, line


def test_closing_others_leads_skipping_the_refused_closes_nothing_and_hides_them_through_a_server(
        cli_db: CliDatabase, floor_url: str) -> None:
    """--skip-refused with only leads the caller may not work: exit 1, nothing closed; through a server each is
    only 'does not exist' (docs/server.md), as an id never used, never whose it is."""
    if cli_db.remote:
        server = server_for(floor_url)
        assert server is not None
        server.login("piotr")  # before the snapshot: a first login writes a token
    before = snapshot(floor_url)
    result = leadflow(floor_url, "piotr", "lead close 1 2 999 --reason bad_timing --skip-refused --json")
    assert result.exit_code == 1, result.output
    reasons = [r["reason"] for r in json.loads(result.stdout)["refused"]]
    if cli_db.remote:
        assert reasons == [f"lead {lead} does not exist" for lead in (1, 2, 999)]
    else:
        assert [r.split(":")[0] for r in reasons] == [
            "user 'piotr' (salesperson, team north) may not see lead 1",
            "user 'piotr' (salesperson, team north) may not see lead 2", "lead 999 does not exist"]
    assert snapshot(floor_url) == before


@pytest.mark.parametrize(("user", "history", "message"), [
    ("anna", False, "user 'anna' (salesperson) may not import leads: only a manager or an admin may"),
    ("olga", False, "user 'olga' (analyst) may not import leads: only a manager or an admin may"),
    ("marta", True, "user 'marta' (manager, team north) may not import the history of deals: only an admin may"),
])
def test_an_import_by_who_may_not_is_refused_on_both_paths(cli_db: CliDatabase, floor_url: str, tmp_path: Path,
                                                           user: str, history: bool, message: str) -> None:
    source = tmp_path / "leads.csv"
    source.write_text(CSV, encoding="utf-8")
    line = refused(floor_url, user, ["import", str(source), "--process", PV, *(["--history"] if history else [])])
    assert message in line, line
    # who may not import learns nothing of their files from the engine: the refusal comes before a mapping is read
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("columns: [not, a, mapping\n", encoding="utf-8")
    line = refused(floor_url, user, ["import", str(source), "--process", PV, "--mapping", str(mapping),
                                     *(["--history"] if history else [])])
    assert message in line, line


# -- the HTTP API: a person's token, an integration token -----------------------------------------------------

@pytest.fixture
def api(team: Team) -> Iterator[tuple[Team, Served, int, int]]:
    """A served team with anna's lead (north) and ioana's (south)."""
    north = team.as_("anna").leads.add(process=PV, name="Jan Kowalski", phone="600100200", external_id="CRM-1")["id"]
    south = team.as_("ioana").leads.add(process=PV, name="Ion Popescu", external_id="CRM-2")["id"]
    with serving(team.admin) as served:
        yield team, served, north, south


def _unchanged(team: Team, served: Served, who: str | dict[str, str], method: str, path: str,
               status: int, words: str, **kwargs: Any) -> None:
    """``method path`` as ``who`` (a person, or headers such as an integration token's) is answered ``status``
    with ``words`` in its detail, and the database is as it was."""
    before = snapshot(team.url)
    if isinstance(who, str):
        answer = served.call(who, method, path, **kwargs)
    else:
        answer = served.call(None, method, path, headers=who, **kwargs)
    assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
    assert words in answer.json()["detail"], answer.json()
    assert snapshot(team.url) == before, f"{method} {path} was refused but changed the database"


API_REFUSALS = [
    # who, method, path ({north}/{south}: the leads), body, status, words
    ("piotr", "POST", "/v1/leads/{north}/activities", {"kind": "call", "text": "x", "outcome": "no_answer"}, 404,
     "lead {north} does not exist"),
    ("radu", "POST", "/v1/leads/{north}/activities", {"kind": "note", "text": "x"}, 404,
     "lead {north} does not exist"),
    ("olga", "POST", "/v1/leads/{north}/activities", {"kind": "note", "text": "x"}, 403,
     "may not log an activity on lead {north}"),
    ("tomasz", "POST", "/v1/leads/{north}/activities", {"kind": "note", "text": "x"}, 403,
     "may not log an activity on lead {north}: it belongs to anna"),
    ("piotr", "POST", "/v1/leads/{north}/next-contact", {"at": "2026-03-05T10:00"}, 404,
     "lead {north} does not exist"),
    ("olga", "POST", "/v1/leads/{north}/next-contact", {"at": "2026-03-05T10:00"}, 403,
     "may not book a contact on lead {north}"),
    # a batch with a lead the caller may not see reads as one with a missing lead (422), never 'may not see'
    ("anna", "POST", "/v1/leads/bulk/close", {"lead_ids": ["{north}", "{south}"], "reason": "bad_timing"}, 422,
     "can't close 1 of 2 leads, so none was written: lead {south} does not exist"),
    ("piotr", "POST", "/v1/leads/bulk/advance", {"lead_ids": ["{north}"]}, 422,
     "can't advance 1 of 1 leads, so none was written: lead {north} does not exist"),
    ("olga", "POST", "/v1/leads/bulk/close", {"lead_ids": ["{north}"], "reason": "bad_timing"}, 422,
     "user 'olga' (analyst, team north) may not close lead {north}: it belongs to anna"),
    ("olga", "POST", "/v1/leads", {"process": PV, "name": "Z", "external_id": "CRM-1"}, 403,
     "may not add leads"),
    ("olga", "POST", "/v1/clients/companies", {"name": "Firma", "external_id": "CRM-2"}, 403,
     "may not add companies"),
    ("anna", "PATCH", "/v1/users/piotr/language", {"language": "pl"}, 403,
     "may not set the language of user 'piotr'"),
    ("anna", "POST", "/v1/reports/rebuild-stages", {}, 403, "only an admin may"),
    # a client the caller may not see is 404, as one that does not exist: ids cannot be probed (docs/server.md)
    ("anna", "PATCH", "/v1/clients/{south_client}/language", {"language": "ro"}, 404,
     "client {south_client} does not exist"),
    ("anna", "PATCH", "/v1/clients/{south_client}", {"phone": "600100300", "reason": "typo"}, 404,
     "client {south_client} does not exist"),
    ("anna", "PATCH", "/v1/clients/999999/language", {"language": "ro"}, 404, "client 999999 does not exist"),
    ("anna", "GET", "/v1/clients/{south_client}", None, 404, "client {south_client} does not exist"),
    ("anna", "POST", "/v1/clients/{south_client}/revisits", {"process": PV}, 404,
     "client {south_client} does not exist"),
    ("anna", "POST", "/v1/leads", {"process": PV, "name": "Z", "client_id": "{south_client}"}, 404,
     "client {south_client} does not exist"),
    ("olga", "PATCH", "/v1/clients/{north_client}", {"phone": "600100300", "reason": "typo"}, 403,
     "may not correct client {north_client}"),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "status", "words"), API_REFUSALS,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in API_REFUSALS])
def test_the_api_refuses_a_person_and_changes_nothing(api: Any, who: str, method: str, path: str, body: Any,
                                                       status: int, words: str) -> None:
    team, served, north, south = api
    ids = {"north": north, "south": south, "north_client": team.admin.leads.get(north)["client_id"],
           "south_client": team.admin.leads.get(south)["client_id"]}

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            text = value.format(**ids)
            return int(text) if text.isdigit() and value.startswith("{") else text
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    _unchanged(team, served, who, method, fill(path), status, fill(words), json=fill(body))


@pytest.mark.parametrize(("who", "query", "words"), [
    ("piotr", "/v1/tasks?owner=anna", "may not see the tasks of anna"),
    ("piotr", "/v1/tasks/page?owner=anna&limit=1", "may not see the tasks of anna"),
    ("radu", "/v1/tasks?owner=anna", "may not see the tasks of anna"),
    ("anna", f"/v1/board?as_of={PAST}&owner=piotr", "sees only their own leads"),
    ("olga", f"/v1/board?as_of={PAST}", "has no board"),
    ("marta", f"/v1/reports/funnel?as_of={PAST}&team=south", "may not see team south"),
    ("marta", f"/v1/reports/salespeople?as_of={PAST}&team=south", "may not see team south"),
    ("marta", f"/v1/daily?as_of={PAST}&owner=ioana", "may not see the agenda of ioana"),
    ("anna", f"/v1/stalled?as_of={PAST}&owner=piotr", "sees only their own leads"),
    ("anna", "/v1/activities?lead={south}", "lead {south} does not exist"),
    ("anna", "/v1/leads/external/CRM-2", "no lead has the external id 'CRM-2'"),
    ("radu", "/v1/leads/external/CRM-1", "no lead has the external id 'CRM-1'"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_the_api_refuses_reading_what_is_not_theirs(api: Any, who: str, query: str, words: str) -> None:
    team, served, _, south = api
    status = 404 if "does not exist" in words or "no lead has" in words else 403
    _unchanged(team, served, who, "GET", query.format(south=south), status, words.format(south=south))


def test_an_import_job_is_refused_to_who_may_not_import_and_hidden_from_everyone_else(api: Any) -> None:
    team, served, _, _ = api
    for who, params, words in [
            ("anna", {"process": PV}, "may not import leads: only a manager or an admin may"),
            ("olga", {"process": PV}, "may not import leads"),
            ("marta", {"process": PV, "history": "true"}, "may not import the history of deals: only an admin may")]:
        _unchanged(team, served, who, "POST", "/v1/import-jobs", 403, words, params=params, content=CSV.encode())
        _unchanged(team, served, who, "POST", "/v1/imports", 403, words, params=params, content=CSV.encode())
    started = served.call("marta", "POST", "/v1/import-jobs", params={"process": PV}, content=CSV.encode())
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    _job_ended(served, "marta", job)
    for other in ("radu", "anna", "piotr", "olga"):
        _unchanged(team, served, other, "GET", f"/v1/import-jobs/{job}", 404, f"import job {job} does not exist")


def _job_ended(served: Served, user: str, job: int) -> None:
    """Until import job ``job`` ended (its thread writes the leads and the job's row meanwhile)."""
    import time

    for _ in range(600):
        if served.call(user, "GET", f"/v1/import-jobs/{job}").json()["status"] != "running":
            return
        time.sleep(0.05)
    pytest.fail(f"import job {job} did not end")


def test_a_batch_skipping_refused_leads_names_a_hidden_one_as_missing(api: Any) -> None:
    """--skip-refused through the API: the report lists a lead the caller may not see as one that does not exist,
    the same words as for an id never used, and closes nothing of it."""
    team, served, north, south = api
    before = snapshot(team.url)
    answer = served.call("piotr", "POST", "/v1/leads/bulk/close",
                         json={"lead_ids": [north, south, 999999], "reason": "bad_timing", "on_refusal": "skip"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"action": "close", "done": [], "refused": [
        {"lead_id": lead, "error": "NotFoundError", "reason": f"lead {lead} does not exist"}
        for lead in (north, south, 999999)]}
    assert snapshot(team.url) == before


def test_an_integration_token_is_refused_outside_its_scope(api: Any) -> None:
    """A web form's token adds leads (and, made with --read, reads them): it logs no call, books no contact, reads
    no one's tasks, starts no import and sees no import job."""
    team, served, north, _ = api
    started = served.call("marta", "POST", "/v1/import-jobs", params={"process": PV}, content=CSV.encode())
    job = started.json()["id"]
    _job_ended(served, "marta", job)
    for read in (False, True):
        token = team.admin.tokens.add(f"website{int(read)}", process=PV, read=read)["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", f"/v1/leads/{north}/activities", {"json": {"kind": "note", "text": "x"}}),
            ("POST", f"/v1/leads/{north}/next-contact", {"json": {"at": "2026-03-05T10:00"}}),
            ("POST", "/v1/leads/bulk/close", {"json": {"lead_ids": [north], "reason": "bad_timing"}}),
            ("PATCH", "/v1/users/anna/language", {"json": {"language": "pl"}}),
            ("POST", "/v1/import-jobs", {"params": {"process": PV}, "content": CSV.encode()}),
            ("GET", f"/v1/import-jobs/{job}", {}),
            ("GET", "/v1/tasks?owner=anna", {})]
        for method, path, kwargs in calls:
            before = snapshot(team.url)
            answer = served.call(None, method, path, headers=bearer, **kwargs)
            assert answer.status_code == 403, f"read={read} {method} {path}: {answer.status_code} {answer.text}"
            detail = answer.json()["detail"]
            assert ((f"not {method} " in detail and "may only send leads" in detail)
                    or (not read and "may send leads but not read them" in detail)), detail
            assert _without_token_use(snapshot(team.url)) == _without_token_use(before), f"{method} {path}"


def _without_token_use(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """A snapshot without what every request of a token writes: its use (last_used_at) and its rate counter."""
    from engine.store import api_tokens

    kept = [c.name for c in api_tokens.columns]
    used = kept.index("last_used_at")
    return {**{k: v for k, v in rows.items() if k != "rate_limits"},
            "api_tokens": sorted(r[:used] + r[used + 1:] for r in rows["api_tokens"])}


# -- the web app's forms (a test client) -----------------------------------------------------------------------

@pytest.fixture
def web_floor(team: Team) -> tuple[Team, int, int]:
    with_passwords(team, "anna", "piotr", "marta", "radu", "olga")
    north = team.as_("anna").leads.add(process=PV, name="Jan Kowalski", phone="600100200")["id"]
    south = team.as_("ioana").leads.add(process=PV, name="Ion Popescu")["id"]
    return team, north, south


def _jobs(team: Team) -> int:
    from engine.store import import_jobs

    with team.admin.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(import_jobs)).scalar_one())


def _web_data(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """A snapshot without the sessions, whose last_seen_at every page of a signed-in person writes."""
    return {k: v for k, v in snapshot(url).items() if k not in ("sessions", "rate_limits")}


def test_a_salesperson_posting_the_import_form_is_refused_and_no_job_starts(web_floor: Any) -> None:
    team, _, _ = web_floor
    anna, csrf = signed_in(team, "anna")
    before = _web_data(team.url)
    for path in ("/import/check", "/import"):
        answer = anna.post(path, data={"csrf": csrf, "process": PV, "text": CSV})
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])
        assert "may not import leads" in answer.text
    assert _web_data(team.url) == before and _jobs(team) == 0


def test_import_forms_without_their_csrf_token_change_nothing(web_floor: Any) -> None:
    team, _, _ = web_floor
    marta, _csrf = signed_in(team, "marta")
    before = _web_data(team.url)
    for path in ("/import/check", "/import", "/settings"):
        for sent in ({}, {"csrf": "forged"}):
            answer = marta.post(path, data={**sent, "process": PV, "text": CSV, "language": "pl"})
            assert answer.status_code == 403, (path, answer.status_code)
            assert "security token is missing or wrong" in answer.text, answer.text[:300]
    assert _web_data(team.url) == before and _jobs(team) == 0


def test_an_import_jobs_page_is_another_persons_not_found(web_floor: Any) -> None:
    team, _, _ = web_floor
    marta, csrf = signed_in(team, "marta")
    started = marta.post("/import", data={"csrf": csrf, "process": PV, "text": CSV})
    assert started.status_code == 303, started.text
    page = started.headers["location"]
    for other in ("radu", "anna", "olga"):
        web, _csrf = signed_in(team, other)
        before = _web_data(team.url)
        answer = web.get(page)
        assert answer.status_code == 404 and "does not exist" in answer.text, (other, answer.status_code)
        assert _web_data(team.url) == before


def test_a_colleagues_lead_page_and_its_forms_are_not_found(web_floor: Any) -> None:
    team, north, south = web_floor
    for who, lead in (("piotr", north), ("radu", north), ("anna", south)):
        web, csrf = signed_in(team, who)
        before = _web_data(team.url)
        assert web.get(f"/leads/{lead}").status_code == 404
        for path, data in ((f"/leads/{lead}/tasks/record_contact/done", {"version": "1"}),
                           (f"/leads/{lead}/fields", {"version": "1", "value": "1000"})):
            answer = web.post(path, data={"csrf": csrf, **data})
            assert answer.status_code == 404 and "does not exist" in answer.text, (who, path, answer.status_code)
        assert _web_data(team.url) == before


def test_the_settings_page_changes_only_ones_own_language(web_floor: Any) -> None:
    """The form names no person: whoever sends it changes their own language, and a bad one is refused."""
    team, _, _ = web_floor
    anna, csrf = signed_in(team, "anna")
    before = _web_data(team.url)
    bad = anna.post("/settings", data={"csrf": csrf, "language": "xx"})
    assert bad.status_code == 422 and "xx" in bad.text
    assert _web_data(team.url) == before
    assert anna.post("/settings", data={"csrf": csrf, "language": "pl", "name": "piotr",
                                        "user": "piotr"}).status_code == 303
    people = {u["name"]: u.get("language") for u in team.admin.users.list()}
    assert (people["anna"], people["piotr"]) == ("pl", None)


def test_a_csrf_token_of_another_session_is_refused_on_the_api(web_floor: Any) -> None:
    team, north, _ = web_floor
    anna, _csrf = signed_in(team, "anna")
    _piotr, piotrs = signed_in(team, "piotr")
    before = _web_data(team.url)
    answer = anna.post(f"/v1/leads/{north}/activities", json={"kind": "note", "text": "x"},
                       headers={"X-CSRF-Token": piotrs})
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
    assert _web_data(team.url) == before


# -- a real browser ------------------------------------------------------------------------------------------------

def test_the_login_page_token_is_no_session_token(web_floor: Any) -> None:
    """The log-in form's CSRF token does not pass for a signed-in person's form."""
    from tests.web_fixtures import client

    team, _, _ = web_floor
    anna, _csrf = signed_in(team, "anna")
    login_token = csrf_of(client(team).get("/login").text)
    before = _web_data(team.url)
    answer = anna.post("/settings", data={"csrf": login_token, "language": "pl"})
    assert answer.status_code == 403
    assert _web_data(team.url) == before


def test_no_form_names_a_file_of_the_server(web_floor: Any, tmp_path: Path) -> None:
    """The import and process forms read an uploaded file from where the server wrote it (``file_path``): a form
    that sends that field itself, plain or beside a file, names no file of the server: it is neither moved into
    the import's staging nor read, whoever sends it (a salesperson, a manager whose import would run, an admin)."""
    team, _, _ = web_floor
    with_passwords(team, "root")
    victim = tmp_path / "leadflow-data.csv"
    text = "name,email\nUkryta Osoba,ukryta@example.pl\n"
    victim.write_text(text, encoding="utf-8")
    before = _web_data(team.url)
    for who in ("anna", "marta", "root"):
        web, csrf = signed_in(team, who)
        for path in ("/import/check", "/import", "/admin/processes"):
            fields = {"csrf": csrf, "process": PV, "file_path": str(victim), "file.path": str(victim),
                      "file_name": "x.csv"}
            for files in (None, {"file": ("other.csv", b"")}):
                answer = web.post(path, data=fields, files=files)
                assert answer.status_code != 500, (who, path, answer.text[:300])
                assert victim.read_text(encoding="utf-8") == text, (who, path, files)
                assert "Ukryta" not in answer.text and "ukryta@" not in answer.text, (who, path)
    after = _web_data(team.url)
    assert after["leads"] == before["leads"] and after["process_versions"] == before["process_versions"]
    assert "Ukryta" not in str(team.admin.leads.list())
