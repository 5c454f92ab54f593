"""The web app's administration (FastAPI's test client): users, API tokens and processes, for an admin only;
secrets shown once; located problems of a process file; CSRF missing changes nothing."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PROCESSES_DIR, Team
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import TestClient, client, csrf_of, import_ended, signed_in, with_passwords


@pytest.fixture
def admin(team: Team) -> tuple[TestClient, str]:
    """An admin with a password, signed in."""
    with_passwords(team, *PEOPLE)
    team.admin.users.add("ada", "admin")
    with_passwords(team, "ada")
    return signed_in(team, "ada")


def test_only_an_admin_manages_users_and_tokens(team: Team, admin: tuple[TestClient, str]) -> None:
    for name in ("marta", "anna"):
        web, csrf = signed_in(team, name)
        assert web.get("/admin/tokens").status_code == 403  # the user list is anyone's (users.list); changes are not
        assert web.post("/admin/users", data={"csrf": csrf, "name": "eve", "role": "admin"}).status_code == 403
        assert web.post("/admin/users/anna", data={"csrf": csrf, "role": "admin", "active": "yes"}).status_code == 403
    assert "eve" not in {u["name"] for u in team.admin.users.list()}
    assert team.admin.as_user("root").users.list()[0]["name"]  # the list itself is intact


def test_an_admin_adds_a_user_who_logs_in_with_the_one_time_password(team: Team,
                                                                      admin: tuple[TestClient, str]) -> None:
    web, csrf = admin
    assert web.post("/admin/users", data={"name": "ewa", "role": "salesperson", "team": "north"}).status_code == 403
    assert "ewa" not in {u["name"] for u in team.admin.users.list()}
    page = web.post("/admin/users", data={"csrf": csrf, "name": "ewa", "role": "salesperson", "team": "north",
                                          "email": "ewa@example.pl"})
    assert page.status_code == 200
    found = re.search(r'id="one-time-password">([^<]+)<', page.text)
    assert found
    assert "one-time-password" not in web.get("/admin/users").text  # shown once
    fresh = client(team)
    login = fresh.post("/login", data={"username": "ewa", "password": found.group(1),
                                       "csrf": csrf_of(fresh.get("/login").text)})
    assert 'name="new_password"' in login.text  # the password works, and must be changed first
    again = web.post("/admin/users", data={"csrf": csrf, "name": "ewa", "role": "salesperson"})
    assert again.status_code in (409, 422) and "already exists" in again.text


def test_an_admin_changes_a_role_and_team_and_deactivates(team: Team, admin: tuple[TestClient, str]) -> None:
    web, csrf = admin
    moved = web.post("/admin/users/piotr", data={"csrf": csrf, "role": "salesperson", "team": "south",
                                                 "active": "yes"})
    assert moved.status_code == 303
    users = {u["name"]: u for u in team.admin.users.list()}
    assert (users["piotr"]["team"], users["piotr"]["active"]) == ("south", True)
    bad = web.post("/admin/users/piotr", data={"csrf": csrf, "role": "wizard", "team": "south", "active": "yes"})
    assert bad.status_code == 422 and "wizard" in bad.text
    piotr, _csrf = signed_in(team, "piotr")
    assert web.post("/admin/users/piotr", data={"csrf": csrf, "role": "salesperson", "team": "south",
                                                "active": "no"}).status_code == 303
    assert not {u["name"]: u for u in team.admin.users.list()}["piotr"]["active"]
    assert piotr.get("/board").headers["location"].startswith("/login")
    assert web.post("/admin/users/nobody", data={"csrf": csrf, "role": "x"}).status_code == 404


def test_a_token_is_shown_once_and_revoked(team: Team, admin: tuple[TestClient, str]) -> None:
    web, csrf = admin
    made = web.post("/admin/tokens", data={"csrf": csrf, "kind": "intake", "name": "website",
                                           "process": "photovoltaics", "read": "no"})
    assert made.status_code == 200
    found = re.search(r'id="new-token">([^<]+)<', made.text)
    assert found and team.admin.tokens.authenticate(found.group(1))["source"] == "website"
    listed = web.get("/admin/tokens").text
    assert found.group(1) not in listed and "website" in listed
    (token,) = [t for t in team.admin.tokens.list() if t["source"] == "website"]
    assert web.post(f"/admin/tokens/{token['id']}/revoke", data={}).status_code == 403
    assert team.admin.tokens.list()[-1]["revoked_at"] is None
    assert web.post(f"/admin/tokens/{token['id']}/revoke", data={"csrf": csrf}).status_code == 303
    assert next(t for t in team.admin.tokens.list() if t["id"] == token["id"])["revoked_by"] == "ada"
    bad = web.post("/admin/tokens", data={"csrf": csrf, "kind": "personal", "name": "ci", "expires_days": "soon"})
    assert bad.status_code == 422


def test_the_versions_and_one_versions_stages_and_diagram(admin: tuple[TestClient, str]) -> None:
    web, _csrf = admin
    page = web.get("/admin/processes").text
    assert "photovoltaics" in page and 'href="/admin/processes/photovoltaics?version=1"' in page
    shown = web.get("/admin/processes/photovoltaics?version=1").text
    assert "stateDiagram-v2" in shown and "first_contact" in shown
    assert web.get("/admin/processes/nothing").status_code == 404


def test_a_new_version_is_loaded_only_without_problems_which_are_shown_located(
        team: Team, admin: tuple[TestClient, str]) -> None:
    web, csrf = admin
    text = (PROCESSES_DIR / "photovoltaics.yaml").read_text(encoding="utf-8")
    before = len(team.admin.processes.list())
    broken = text.replace("won_stage: close_contract", "won_stage: close_contrakt", 1)
    answer = web.post("/admin/processes", data={"csrf": csrf, "text": broken})
    assert answer.status_code == 422 and "nothing was loaded" in answer.text and "line " in answer.text
    assert "close_contrakt" in answer.text  # the text stays in the form to fix
    assert len(team.admin.processes.list()) == before
    assert web.post("/admin/processes", data={"text": text + "\n# v2\n"}).status_code == 403  # no CSRF token
    changed = text.replace("title:", "title: Solar v2 #", 1) if "title:" in text else text
    loaded = web.post("/admin/processes", data={"csrf": csrf, "text": changed})
    assert loaded.status_code == 200 and "as version 2" in loaded.text
    assert len(team.admin.processes.list()) == before + 1
    anna, csrf = signed_in(team, "anna")
    assert anna.post("/admin/processes", data={"csrf": csrf, "text": changed + "\n"}).status_code == 403


CSV = "name;email;phone;value;roof_type\nAnna Import;anna.import@example.pl;+48 600 111 222;1000;flat\n" \
      "Bez Maila;;;x;flat\nJan Import;jan.import@example.pl;;2000;pitched\n"


def test_an_import_is_checked_first_then_imported(team: Team) -> None:
    with_passwords(team, *PEOPLE)
    anna, csrf = signed_in(team, "anna")
    assert anna.post("/import/check", data={"csrf": csrf, "process": "photovoltaics", "text": CSV}).status_code == 403
    marta, csrf = signed_in(team, "marta")
    form = {"process": "photovoltaics", "owner": "piotr", "on_error": "skip", "text": CSV}
    assert marta.post("/import", data=form).status_code == 403  # no CSRF token
    checked = marta.post("/import/check", data={"csrf": csrf, **form})
    assert checked.status_code == 200 and "Checked: nothing was imported yet" in checked.text
    assert "line 3:" in checked.text and "Import these leads" in checked.text
    assert team.admin.search.find("Import") == []  # the dry run wrote nothing
    done = import_ended(marta, marta.post("/import", data={"csrf": csrf, **form}))
    assert done.status_code == 200 and "Imported" in done.text
    assert len(team.admin.search.find("Import")) >= 2
    aborted = import_ended(marta, marta.post("/import", data={"csrf": csrf, **form, "on_error": "abort",
                                                              "text": CSV.replace("Import", "Nowy")}))
    assert aborted.status_code == 422 and "Aborted: nothing was imported" in aborted.text
