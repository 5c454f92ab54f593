"""The automation commands end to end: users' e-mail, the manager's queue, and (below) the outbox.

Same contract as tests/test_cli_engine.py: errors are one ``Error: ...`` line, exit 1 for refused input
and 2 for bad usage, and a refused command leaves the database exactly as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from tests.conftest import PROCESSES_DIR, ROOT, TEST_NOW, CliDatabase, cli_floor, js, ok, refused
from tests.smtp import Inbox, Received, Server, free_port
from tests.test_assignment import with_rules

TEAM = [
    ("marta", "manager", "north"),
    ("anna", "salesperson", "north"),
    ("piotr", "salesperson", "north"),
    ("olga", "analyst", "north"),
]


@pytest.fixture
def url(cli_db: CliDatabase) -> str:
    """A fresh copy of the session's database of TEAM, set up through the CLI (in each mode of ``cli_db``)."""
    return cli_db.template("cli_automation", cli_floor(TEAM, emails=True))


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
    ok(url, "root", ["process", "load", str(with_rules(PROCESSES_DIR, tmp_path, rules))])

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


# -- run-due and the outbox, as programs run them ---------------------------------------------------

def smtp_vars(port: int) -> dict[str, str]:
    return {"LEADFLOW_SMTP_HOST": "127.0.0.1", "LEADFLOW_SMTP_PORT": str(port), "LEADFLOW_SMTP_SECURITY": "none",
            "LEADFLOW_SMTP_FROM": "Leadflow <sales@example.com>", "LEADFLOW_SMTP_TIMEOUT": "5"}


def leads_in_first_contact(url: str, count: int) -> list[int]:
    anna = Engine.open(url, user="anna")
    try:
        ids = []
        for i in range(count):
            lead = anna.add_lead(process="photovoltaics", name=f"Klient {i} Łódź", email=f"k{i}@example.pl")
            anna.complete_task(lead["id"], "record_contact")
            anna.advance(lead["id"])
            ids.append(lead["id"])
        return ids
    finally:
        anna.close()


def outbox_rows(url: str) -> list[dict[str, Any]]:
    admin = Engine.open(url, user="root")
    try:
        return admin.list_outbox()
    finally:
        admin.close()


def run_due_process(url: str, port: int, now: str = TEST_NOW) -> subprocess.Popen[str]:
    """``leadflow run-due`` as cron runs it: a separate program."""
    env = {**os.environ, **smtp_vars(port), "LEADFLOW_DB": url, "LEADFLOW_USER": "root", "LEADFLOW_NOW": now,
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run-due"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_killed_run_due_loses_nothing_and_the_rerun_sends_the_rest(url: str) -> None:
    """run-due is killed (SIGKILL) while the server is accepting the third mail: the server has it, run-due
    never learnt it. The rerun sends the other mails at once, and the third once its lease has expired,
    with the same Message-ID: at least once, and the only copy is recognisable."""
    ids = leads_in_first_contact(url, 6)
    inbox = Inbox()
    victim: list[subprocess.Popen[str]] = []

    def kill_on_third(item: Received) -> None:
        if len(inbox.received) == 3:
            os.kill(victim[0].pid, signal.SIGKILL)
            victim[0].wait(timeout=30)

    inbox.on_data = kill_on_third
    server = Server(inbox, free_port()).start()
    try:
        victim.append(run_due_process(url, server.port))
        victim[0].communicate(timeout=120)
        assert victim[0].returncode == -signal.SIGKILL
        states = Counter(r["state"] for r in outbox_rows(url))
        assert states == {"sent": 2, "sending": 1, "queued": 3}
        in_flight = next(r for r in outbox_rows(url) if r["state"] == "sending")

        rerun = run_due_process(url, server.port)
        out, err = rerun.communicate(timeout=120)
        assert (rerun.returncode, err) == (0, "")
        assert out.startswith(f"run-due as of {TEST_NOW}: 3 sent, 0 to retry, 0 failed, 0 cancelled\n")
        assert Counter(r["state"] for r in outbox_rows(url)) == {"sent": 5, "sending": 1}

        later = run_due_process(url, server.port, "2026-03-02T09:05:01")  # the 5-minute lease has expired
        assert later.communicate(timeout=120)[0].startswith("run-due as of 2026-03-02T09:05:01: 1 sent")
        last = run_due_process(url, server.port, "2026-03-02T09:10:00")
        assert last.communicate(timeout=120)[0].startswith("run-due as of 2026-03-02T09:10:00: 0 sent")
    finally:
        server.stop()

    rows = outbox_rows(url)
    assert sorted(r["lead_id"] for r in rows) == ids
    assert {r["state"] for r in rows} == {"sent"}
    copies = Counter(inbox.ids())
    assert set(copies) == {r["message_id"] for r in rows}  # every mail arrived ...
    assert {mid: n for mid, n in copies.items() if n > 1} == {f"<{in_flight['key']}@example.com>": 2}  # one twice
    assert len(inbox.received) == 7


def test_run_due_and_outbox_commands(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = leads_in_first_contact(url, 2)
    inbox = Inbox(refuse={"k1@example.pl": "550 5.1.1 no such user"})
    server = Server(inbox, free_port()).start()
    for name, value in smtp_vars(server.port).items():
        monkeypatch.setenv(name, value)
    try:
        out = ok(url, "root", "run-due").stdout
    finally:
        server.stop()
    rows = {r["lead_id"]: r for r in js(url, "root", "outbox list")}
    failed = rows[ids[1]]
    assert out == (f"run-due as of {TEST_NOW}: 1 sent, 0 to retry, 1 failed, 0 cancelled\n"
                   f"  mail {failed['id']} (welcome to client, lead {ids[1]}): failed: the server refused every "
                   "recipient (k1@example.pl: 550 5.1.1 no such user)\n")
    assert [r["lead_id"] for r in js(url, "root", "outbox list --state failed")] == [ids[1]]
    assert [r["id"] for r in js(url, "anna", f"outbox list --lead {ids[0]}")] == [rows[ids[0]]["id"]]
    text = ok(url, "marta", "outbox list").stdout
    assert "2 mails" in text and "k0@example.pl" in text and "550 5.1.1 no such user" in text
    assert ok(url, "marta", f"outbox retry {failed['id']}").stdout == (
        f"Mail {failed['id']} (welcome to client, lead {ids[1]}) queued again; the next run-due sends it\n")
    assert js(url, "marta", f"outbox list --lead {ids[1]}")[0]["state"] == "queued"


@pytest.mark.parametrize(("user", "command", "code", "message"), [
    ("root", "outbox list --state lost", 2, "Error: Invalid value for '--state': 'lost' is not one of"),
    ("root", "outbox list --lead 0", 2, "Error: Invalid value for '--lead': '0' is not a valid id"),
    ("root", "outbox retry abc", 2, "Error: Invalid value for 'MAIL_ID': 'abc' is not a valid integer."),
    ("root", "outbox retry 999", 1, "Error: mail 999 is not in the outbox"),
    ("anna", "run-due", 1, "Error: user 'anna' (salesperson, team north) may not send the due mail: only an admin may"),
    ("root", "run-due --limit 0", 2, "Error: Invalid value for '--limit': 0 is not in the range 1<=x<=1000000."),
    ("root", "run-due", 1, "Error: SMTP is not configured: set LEADFLOW_SMTP_HOST, and LEADFLOW_SMTP_FROM; "
                           "see docs/automation.md#smtp"),
])
def test_bad_outbox_input_is_refused(url: str, user: str, command: str, code: int, message: str) -> None:
    leads_in_first_contact(url, 1)
    line = refused(url, user, command, code=code)
    assert line.startswith(message), line


def test_retry_refuses_a_mail_that_is_not_failed(url: str) -> None:
    leads_in_first_contact(url, 1)
    (row,) = js(url, "root", "outbox list")
    assert refused(url, "marta", f"outbox retry {row['id']}") == (
        f"Error: mail {row['id']} is queued; only a failed or cancelled mail is queued again")
    assert refused(url, "anna", f"outbox retry {row['id']}") == (
        f"Error: user 'anna' (salesperson, team north) may not retry mail {row['id']}: only a manager of team north "
        "or an admin may")


def test_a_smtp_config_file_with_secrets_from_a_file(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leads_in_first_contact(url, 1)
    inbox = Inbox()
    server = Server(inbox, free_port()).start()
    (tmp_path / "password").write_text("sekret\n", encoding="utf-8")
    config = tmp_path / "smtp.toml"
    config.write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
                      'from = "Sprzedaż <sprzedaz@example.pl>"\n', encoding="utf-8")
    monkeypatch.setenv("LEADFLOW_SMTP_CONFIG", str(config))
    try:
        assert ok(url, "root", "run-due --json").stdout.count('"state": "sent"') == 1
    finally:
        server.stop()
    assert str(inbox.received[0].message["From"]) == "Sprzedaż <sprzedaz@example.pl>"
    for text, message in [
            ("[smtp]\nhost = 1\nport = 'x'\n", "Error: SMTP port 'x' is not a number"),
            ("[smtp]\nhots = 'a'\n", f"Error: the SMTP configuration {config} has unknown keys: hots; allowed: host,"),
            ("[mail]\n", f"Error: the SMTP configuration {config} has no [smtp] table"),
            ("[smtp\n", f"Error: the SMTP configuration {config} is not valid TOML: "),
            ("[smtp]\nhost = 'h'\nfrom = 'a@b.pl'\nuser = 'u'\npassword_file = '/nonexistent/pw'\n",
             "Error: cannot read the SMTP password file /nonexistent/pw: No such file or directory")]:
        config.write_text(text, encoding="utf-8")
        assert refused(url, "root", "run-due").startswith(message)
    monkeypatch.setenv("LEADFLOW_SMTP_CONFIG", str(tmp_path / "missing.toml"))
    assert refused(url, "root", "run-due").startswith(
        f"Error: cannot read the SMTP configuration {tmp_path / 'missing.toml'}: No such file or directory")


def test_run_due_exits_3_while_the_server_is_down_and_loses_nothing(url: str) -> None:
    """As cron runs it: a server that is down is an exit code cron and systemd notice, and no mail is lost."""
    ids = leads_in_first_contact(url, 1)
    port = free_port()  # nobody listens here yet
    down = run_due_process(url, port)
    out, err = down.communicate(timeout=120)
    assert (down.returncode, err) == (3, "")
    assert out.splitlines()[-2:] == [
        f"Stopped: cannot connect to the SMTP server 127.0.0.1:{port}: Connection refused; 0 due mails stay queued "
        "for the next run", "1 mail queued for later; the next is due at 2026-03-02 09:01"]
    (row,) = js(url, "root", "outbox list")
    assert (row["lead_id"], row["state"], row["attempts"]) == (ids[0], "queued", 1)

    inbox = Inbox()
    server = Server(inbox, port).start()
    try:
        up = run_due_process(url, port, "2026-03-02T09:05:00")
        out, err = up.communicate(timeout=120)
    finally:
        server.stop()
    assert (up.returncode, err) == (0, "")
    assert out.startswith("run-due as of 2026-03-02T09:05:00: 1 sent")
    assert len(inbox.received) == 1
