"""The local CLI of logging in: passwords (user add/passwd), role, team and deactivation (user set), and personal
access tokens beside integration ones (token add/list/revoke). The contract of docs/cli.md: one ``Error:`` line,
exit 1 refused, 2 usage, a refused command changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result

from engine.api import Engine
from tests.conftest import LOGIN_TOKENS, check_error, js, leadflow, ok, refused, snapshot
from tests.test_auth import _cheap_hashes
from tests.test_cli_engine import url

__all__ = ["_cheap_hashes", "url"]  # fixtures from test_auth and test_cli_engine

GOOD = "correct horse battery"


def fed(url: str, user: str, command: str, stdin: str) -> Result:
    """``leadflow COMMAND`` with ``stdin`` on standard input."""
    return leadflow(url, user, command, input=stdin)


def login(url: str, name: str, password: str) -> dict[str, Any]:
    eng = Engine.open(url, user="root")
    try:
        return eng.auth.login(name, password, address="127.0.0.1")  # type: ignore[no-any-return]
    finally:
        eng.close()


def test_user_add_with_a_password_from_stdin_or_a_one_time_one(url: str) -> None:
    result = fed(url, "root", "user add ewa --role salesperson --team north --password-stdin --json", GOOD + "\n")
    assert result.exit_code == 0, result.output
    user = json.loads(result.stdout)
    assert (user["password_set"], user["must_change_password"], user["active"]) == (True, True, True)
    assert GOOD not in result.stdout
    made = ok(url, "root", "user add jan --role salesperson --team north --one-time-password").stdout
    password = made.split("One-time password: ")[1].split("\n")[0]
    assert "It is not shown again" in made and len(password) >= 10
    eng = Engine.open(url, user="root")
    eng.auth.change_password("jan", password, GOOD, address="127.0.0.1")
    eng.close()
    assert login(url, "jan", GOOD)["user"]["name"] == "jan"
    before = snapshot(url)
    line = check_error(fed(url, "root", "user add kasia --role salesperson --password-stdin", "short\n"), 1)
    assert line == ("Error: the password is too short: 5 characters, at least 10 are needed (a few words make a "
                    "good one)")
    line = check_error(fed(url, "root", "user add kasia --role salesperson --password-stdin --one-time-password",
                           GOOD), 2)
    assert line == "Error: --password-stdin and --one-time-password exclude each other"
    line = check_error(fed(url, "root", "user add kasia --role salesperson --password-stdin", ""), 2)
    assert line == "Error: --password-stdin expects 1 line(s) on standard input, got 0"
    assert snapshot(url) == before


@pytest.mark.local_only("through a server the user has a password already: they logged in with it")
def test_user_passwd_for_oneself_and_by_an_admin(url: str) -> None:
    result = fed(url, "anna", "user passwd --password-stdin", GOOD + "\n")
    assert (result.exit_code, result.stdout) == (0, "Password of anna set\n")
    assert login(url, "anna", GOOD)["user"]["name"] == "anna"
    before = snapshot(url)
    assert check_error(fed(url, "anna", "user passwd --password-stdin", "not the old one\nanother new one\n"), 1) == (
        "Error: the old password of user 'anna' is wrong; the password was not changed")
    assert check_error(fed(url, "anna", "user passwd piotr --password-stdin", GOOD + "\n"), 1).startswith(
        "Error: user 'anna' (salesperson, team north) may not set the password of user 'piotr': only an admin may")
    assert snapshot(url) == before
    result = fed(url, "anna", "user passwd anna --password-stdin --json", f"{GOOD}\nanother new one\n")
    assert json.loads(result.stdout)["must_change_password"] is False
    result = fed(url, "root", "user passwd anna --password-stdin", "set by the admin\n")
    assert result.stdout == "Password of anna set, to be changed at the next login\n"
    one = js(url, "root", "user passwd piotr --one-time")
    assert one["name"] == "piotr" and one["must_change_password"] and len(one["password"]) >= 10


def test_user_passwd_after_an_admin_set_it(url: str) -> None:
    """The same in both modes: through a server, anna changes it from her login (its token outlives the change)."""
    result = fed(url, "root", "user passwd anna --password-stdin", "set by the admin\n")
    assert result.stdout == "Password of anna set, to be changed at the next login\n"
    assert check_error(fed(url, "anna", "user passwd --password-stdin", "not the old one\nanother new one\n"), 1) == (
        "Error: the old password of user 'anna' is wrong; the password was not changed")
    result = fed(url, "anna", "user passwd --password-stdin --json", "set by the admin\nmy very own one\n")
    assert (result.exit_code, json.loads(result.stdout)["must_change_password"]) == (0, False)
    assert login(url, "anna", "my very own one")["user"]["name"] == "anna"


@pytest.mark.local_only("through a server deactivating a user revokes their login's token: their next command is "
                        "refused as not logged in (tests/test_server_attacks.py)")
def test_user_set_role_team_and_deactivation(url: str) -> None:
    ok(url, "anna", "lead add --process photovoltaics --name 'Zofia Kamińska'")
    assert ok(url, "root", "user set piotr --team south").stdout == "User piotr: salesperson in team south\n"
    assert js(url, "root", "user set piotr --team ''")["team"] is None
    assert ok(url, "root", "user set anna --deactivate").stdout == (
        "User anna: salesperson in team north, deactivated\n"
        "1 open lead of anna to reassign: leadflow lead list --owner anna\n")
    assert refused(url, "anna", "lead list") == (
        "Error: user 'anna' is deactivated; an admin may reactivate them with 'leadflow user set anna --activate'")
    assert [r["owner"] for r in js(url, "marta", "lead list --owner anna")] == ["anna"]
    back = js(url, "root", "user set anna --activate")
    assert (back["active"], back["open_leads"]) == (True, 1)
    assert refused(url, "root", "user set anna --role analyst").startswith("Error: user 'anna' owns 1 open leads")
    assert refused(url, "root", "user set anna", code=2) == (
        "Error: nothing to change: give --email, --role, --team, --language, --deactivate or --activate")
    assert refused(url, "root", "user set root --deactivate") == (
        "Error: user 'root' is the last active admin; make another admin first")
    assert ok(url, "root", "user set anna --email anna@example.pl").stdout == "User anna: e-mail anna@example.pl\n"


@pytest.mark.local_only(LOGIN_TOKENS)
def test_personal_tokens_from_the_cli(url: str) -> None:
    made = js(url, "anna", "token add --personal --name laptop --expires 30")
    assert made["token"].startswith("lfp_") and (made["kind"], made["source"]) == ("personal", "anna")
    assert made["expires_at"] == "2026-04-01T09:00:00"
    text = ok(url, "anna", "token add --personal --name phone").stdout
    assert text.startswith("Personal token 2 (phone) of anna, expires 2026-05-31 09:00:\nlfp_")
    mine = js(url, "anna", "token list --mine")
    assert [t["name"] for t in mine] == ["laptop", "phone"] and all("token" not in t for t in mine)
    assert made["token"] not in ok(url, "anna", "token list --mine").stdout
    assert refused(url, "anna", "token list").endswith("may not manage API tokens: only an admin may")
    assert refused(url, "anna", "token add --personal", code=2) == (
        "Error: a personal token needs --name, e.g. --name laptop")
    assert refused(url, "anna", "token add --personal --name x --expires 400") == (
        "Error: the expiry of a personal token must be a whole number of days from 1 to 365, got 400")
    assert refused(url, "anna", "token add --personal --name x --source web", code=2).startswith(
        "Error: --source, --process and --read are for integration tokens")
    assert refused(url, "piotr", f"token revoke {made['id']}").endswith("only an admin may")
    assert ok(url, "anna", f"token revoke {made['id']}").stdout == f"Token {made['id']} (laptop) revoked\n"
    form = js(url, "root", "token add --source website --expires 7 --rate-limit 100")
    assert (form["kind"], form["rate_limit"], form["expires_at"]) == ("integration", 100, "2026-03-09T09:00:00")
    assert [t["kind"] for t in js(url, "root", "token list")] == ["personal", "personal", "integration"]
    assert refused(url, "root", "token add", code=2) == (
        "Error: give --source NAME for an integration token, or --personal --name NAME")
