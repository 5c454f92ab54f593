"""``leadflow lead advance`` and ``lead win`` with several leads: the bulk API at the terminal."""

from __future__ import annotations

import json

from tests.conftest import check_error, js, leadflow, ok, refused
from tests.test_cli_engine import url  # noqa: F401 - the fixture


def add_leads(url: str, n: int) -> list[int]:  # noqa: F811
    return [js(url, "anna", f"lead add --process photovoltaics --name 'Ștefan {i}'")["id"] for i in range(n)]


def test_advancing_several_leads_is_all_or_nothing_unless_refused_leads_are_skipped(url: str) -> None:  # noqa: F811
    one, two, three = add_leads(url, 3)
    for lead_id in (one, three):
        ok(url, "anna", f"task done {lead_id} record_contact")
    line = refused(url, "anna", f"lead advance {one} {two} {three}")
    assert line == (f"Error: can't advance 1 of 3 leads, so none was written: can't leave stage 'register_lead' of "
                    f"lead {two}: mandatory tasks open: record_contact")
    result = leadflow(url, "anna", f"lead advance {one} {two} {three} --skip-refused --json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"action": "advance", "done": [one, three], "refused": [
        {"lead_id": two, "error": "RuleViolation",
         "reason": f"can't leave stage 'register_lead' of lead {two}: mandatory tasks open: record_contact"}]}
    assert [js(url, "anna", f"lead show {i}")["stage"] for i in (one, two, three)] == [
        "first_contact", "register_lead", "first_contact"]
    ok(url, "anna", f"task done {two} record_contact")
    assert ok(url, "anna", f"lead advance {two}").stdout.startswith(  # one lead: the one-lead command as before
        f"Lead {two} advanced to 'Make the first contact' (first_contact), due ")
    for lead_id in (one, two):
        for task in ("call_client", "book_meeting"):
            ok(url, "anna", f"task done {lead_id} {task}")
    assert ok(url, "anna", f"lead advance {one} {two}").stdout == f"2 leads advanced: {one}, {two}\n"


def test_the_refused_leads_are_listed_in_a_table(url: str) -> None:  # noqa: F811
    one, two = add_leads(url, 2)
    ok(url, "anna", f"task done {one} record_contact")
    result = leadflow(url, "anna", f"lead advance {one} {two} 999 --skip-refused")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"1 lead advanced: {one}\n")
    assert "Refused (2)" in result.stdout and "lead 999 does not exist" in result.stdout


def test_winning_several_leads_and_bad_ids(url: str) -> None:  # noqa: F811
    one, two = add_leads(url, 2)
    line = refused(url, "anna", f"lead win {one} {two}")
    assert line.startswith("Error: can't win 2 of 2 leads, so none was written: can't win lead ")
    assert check_error(leadflow(url, "anna", f"lead win {one} 0"), 2).endswith(
        "'0' is not a valid id: a whole number from 1 to 9223372036854775807")
    assert check_error(leadflow(url, "anna", f"lead advance {one} {one}"), 1) == (
        f"Error: lead {one} is listed twice; list each lead once (nothing was written)")


def test_closing_several_leads_is_all_or_nothing_unless_refused_leads_are_skipped(url: str) -> None:  # noqa: F811
    one, two, three = add_leads(url, 3)
    ok(url, "anna", f"lead close {three} --reason bad_timing")
    line = refused(url, "anna", f"lead close {one} {two} {three} --reason bad_timing")
    assert line.startswith(
        f"Error: can't close 1 of 3 leads, so none was written: can't close lead {three}: it is lost")
    check_error(leadflow(url, "anna", f"lead close {one} {two} --reason bad_timing --if-version 1"), 2)
    result = leadflow(url, "anna", f"lead close {one} {two} {three} --reason bad_timing --skip-refused")
    assert result.exit_code == 1 and result.stdout.startswith(f"2 leads closed: {one}, {two}\n")
    assert [js(url, "anna", f"lead show {i}")["status"] for i in (one, two)] == ["lost", "lost"]
