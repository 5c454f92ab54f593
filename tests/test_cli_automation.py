"""The automation commands end to end: users' e-mail, the manager's queue, and (below) the outbox.

Same contract as tests/test_cli_engine.py: errors are one ``Error: ...`` line, exit 1 for refused input
and 2 for bad usage, and a refused command leaves the database exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_assignment import with_rules
from tests.test_cli_engine import PROCESSES, js, ok, refused, url_of, user_add

TEAM = [
    ("marta", "manager", "north"),
    ("anna", "salesperson", "north"),
    ("piotr", "salesperson", "north"),
    ("olga", "analyst", "north"),
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = url_of(tmp_path / "leadflow.db")
    ok(url, "root", "init")
    ok(url, "root", ["process", "load", str(PROCESSES)])
    for name, role, team in TEAM:
        ok(url, "root", user_add(name, role, team) + f" --email {name}@example.pl")
    return url


def test_user_email_add_set_and_list(url: str) -> None:
    out = ok(url, "root", "user add ewa --role salesperson --team north --email Ewa.Nowak@example.pl").stdout
    assert out == "User ewa added as salesperson in team north, e-mail Ewa.Nowak@example.pl\n"
    assert ok(url, "root", "user set ewa --email ''").stdout == "User ewa: no e-mail address\n"
    assert ok(url, "root", "user set ewa --email ewa@example.pl").stdout == "User ewa: e-mail ewa@example.pl\n"
    users = {u["name"]: u for u in js(url, "root", "user list")}
    assert (users["ewa"]["email"], users["anna"]["email"], users["root"]["email"]) == (
        "ewa@example.pl", "anna@example.pl", None)
    assert "ewa@example.pl" in ok(url, "root", "user list").stdout


@pytest.mark.parametrize(("command", "message"), [
    ("user add jan --role salesperson --email jan.example.pl",
     "Error: e-mail of jan 'jan.example.pl' is not an address such as name@example.com"),
    (["user", "add", "jan", "--role", "salesperson", "--email", "jan@example.pl\x1b[2J"],
     "Error: e-mail of jan contains control characters"),
    ("user set nobody --email a@example.pl", "Error: user 'nobody' does not exist"),
    ("user set anna --email 'Анна <anna@example.pl>'",
     "Error: e-mail of anna 'Анна <anna@example.pl>' is not an address such as name@example.com"),
])
def test_bad_user_email_is_refused(url: str, command: str | list[str], message: str) -> None:
    assert refused(url, "root", command) == message


def test_only_an_admin_changes_users(url: str) -> None:
    assert refused(url, "marta", "user set anna --email x@example.pl") == (
        "Error: user 'marta' (manager, team north) may not change users: only an admin may")


def test_the_manager_queue_in_lead_list_and_daily(url: str, tmp_path: Path) -> None:
    rules = "\nassignment:\n  rules:\n    - team: north\n      when: {field: region, op: eq, value: pomorskie}\n"
    ok(url, "root", ["process", "load", str(with_rules(PROCESSES, tmp_path, rules))])

    placed = js(url, "marta", "lead add --process photovoltaics --name 'Zofia Wiśniewska' --set region=pomorskie")
    queued = js(url, "marta", "lead add --process photovoltaics --name '[bold]Ștefan Popescu' --set region=podlaskie")

    assert (placed["owner"], queued["owner"], queued["team"]) == ("anna", None, "north")
    listed = js(url, "marta", "lead list --unassigned")
    assert [r["id"] for r in listed] == [queued["id"]]
    text = ok(url, "marta", "lead list --unassigned").stdout
    assert "[bold]Ștefan Popescu" in text and "Zofia" not in text
    daily = js(url, "marta", "daily")
    assert daily["unassigned"]["count"] == 1
    text = ok(url, "marta", "daily").stdout
    assert "Unassigned leads (no rule could place them; 'leadflow lead assign ID --to NAME'): 1" in text
    assert f"#{queued['id']} [bold]Ștefan Popescu (photovoltaics, north) waiting 0 d" in text
    # a salesperson sees neither the queue nor a lead that is not theirs
    assert js(url, "anna", "lead list --unassigned") == []


def test_unassigned_and_owner_exclude_each_other(url: str) -> None:
    line = refused(url, "marta", "lead list --unassigned --owner anna", code=2)
    assert line == "Error: --unassigned and --owner exclude each other"
