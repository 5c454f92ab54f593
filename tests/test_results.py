"""The result types (engine/results/), the documented JSON (docs/cli.md) and the printed JSON agree.

Two checks: the keys docs/cli.md documents for the main shapes (its key tables and JSON examples) are exactly
the keys of their TypedDicts; and what the engine returns for every kind of result, followed into nested
objects and lists, has exactly the keys of its TypedDict (the CLI prints these dicts as they are with --json).
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from engine import results
from tests.conftest import Team

CLI_MD = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def keys(shape: Any) -> set[str]:
    return set(shape.__required_keys__) | set(shape.__optional_keys__)


# -- the documented keys ------------------------------------------------------------------------------

def _section(heading: str) -> str:
    text = CLI_MD.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    end = text.find("\n#", start + len(heading) + 2)
    return text[start:end if end != -1 else len(text)]


def _tables(heading: str) -> list[set[str]]:
    """The keys in the first column of each key table of a section (``| `a`, `b` | ... |``)."""
    tables: list[set[str]] = []
    in_table = False
    for line in _section(heading).splitlines():
        if line.startswith("| `"):
            if not in_table:
                tables.append(set())
            tables[-1].update(re.findall(r"`([^`]+)`", line.split("|")[1]))
            in_table = True
        elif not line.startswith("|"):
            in_table = False
    return tables


def _example(heading: str) -> set[str]:
    """The keys of a section's JSON example (of its first element, when it is a list)."""
    block = re.search(r"```json\n(.*?)```", _section(heading), re.S)
    assert block, f"no JSON example under {heading}"
    data = json.loads(block[1])
    return set(data[0] if isinstance(data, list) else data)


@pytest.mark.parametrize(("documented", "shape"), [
    (lambda: _tables("### The lead object")[0], results.Lead),
    (lambda: _tables("### The lead object")[1], results.LeadTask),
    (lambda: _example("### Lead list rows"), results.LeadRow),
    (lambda: _tables("### History events")[0], results.HistoryEvent),
    (lambda: _tables("### Task list rows")[0], results.TaskRow),
    (lambda: _example("### User"), results.User),
    (lambda: _tables("### Process list rows")[0], results.ProcessRow),
    (lambda: _example("### Client"), results.Client),
    (lambda: _tables("### `leadflow outbox list`")[0], results.OutboxRow),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_the_documented_keys_are_the_types_keys(documented: Any, shape: Any) -> None:
    assert documented() == keys(shape)


# -- the returned keys ----------------------------------------------------------------------------------

def conforms(value: Any, shape: Any, where: str = "result") -> None:
    """``value`` has exactly the keys of ``shape`` (a TypedDict), and so on down every nested shape."""
    if typing.is_typeddict(shape):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        required = set(shape.__required_keys__)
        assert set(value) >= required, f"{where}: missing {required - set(value)}"
        assert set(value) <= keys(shape), f"{where}: undeclared {set(value) - keys(shape)}"
        hints = typing.get_type_hints(shape)
        for key, item in value.items():
            conforms(item, hints[key], f"{where}.{key}")
        return
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if origin is list and isinstance(value, list):
        for i, item in enumerate(value):
            conforms(item, args[0], f"{where}[{i}]")
    elif origin is dict and isinstance(value, dict) and typing.is_typeddict(args[1]):
        for key, item in value.items():
            conforms(item, args[1], f"{where}[{key!r}]")
    elif origin in (typing.Union, types.UnionType) and isinstance(value, dict):
        (inner,) = [a for a in args if typing.is_typeddict(a)] or [None]
        if inner is not None:
            conforms(value, inner, where)


def test_every_result_has_exactly_its_types_keys(team: Team, tmp_path: Path) -> None:
    marta, anna = team.as_("marta"), team.as_("anna")
    lead = anna.add_lead(process="photovoltaics", name="Łukasz Żółć", value="45000", email="l@example.pl")
    other = anna.add_lead(process="photovoltaics", name="Jan Nowak", value="12000")
    unassigned = marta.add_lead(process="photovoltaics", name="Ewa Lis")
    anna.complete_task(lead["id"], "record_contact", note="called back")
    reason = anna.spec("photovoltaics").closure_reasons[0].id
    checks: list[tuple[Any, Any]] = [
        (lead, results.Lead),
        (anna.get_lead(lead["id"]), results.LeadShown),
        (anna.list_leads(), list[results.LeadRow]),
        (anna.history(lead["id"]), list[results.HistoryEvent]),
        (anna.list_tasks(), list[results.TaskRow]),
        (anna.client(lead["client_id"]), results.Client),
        (anna.close_lead(other["id"], reason, note="next spring"), results.Lead),
        (marta.list_reviews(), list[results.Review]),
        (marta.list_tasks(), list[results.TaskRow]),
        (anna.complete_tasks_many([lead["id"], unassigned["id"]], "check_history", on_refusal="skip"),
         results.BulkResult),
        (team.admin.list_users(), list[results.User]),
        (team.admin.whoami(), results.User),
        (team.admin.list_processes(), list[results.ProcessRow]),
        (team.admin.load_process(Path(__file__).resolve().parent.parent / "processes" / "photovoltaics.yaml"),
         results.LoadedProcess),
        (team.admin.migrate_process("photovoltaics", 1, dry_run=True), results.Migration),
        (team.admin.init(), results.Initialised),
        (marta.board(), list[results.Board]),
        (marta.board(light="red"), list[results.Board]),
        (marta.daily(), results.Daily),
        (anna.daily(), results.Daily),
        (marta.stalled(), results.Stalled),
        (marta.rotate(dry_run=True), results.Rotation),
        (marta.revisits(), list[results.Revisit]),
        (marta.removals("2026-03"), results.Removals),
        (marta.report_refusals(matrix_by="reason", trend=True), results.RefusalsReport),
        (marta.report_funnel(), results.FunnelReport),
        (marta.report_cycle(), results.CycleReport),
        (marta.report_salespeople(), results.SalespeopleReport),
        (marta.reports.products(), results.ProductsReport),
        (marta.report_forecast(), results.ForecastReport),
        (marta.list_outbox(), list[results.OutboxRow]),
    ]
    token = team.admin.add_token("website", process="photovoltaics", read=True)
    checks += [
        (token, results.NewToken),
        (team.admin.list_tokens(), list[results.Token]),
        (team.admin.authenticate(token["token"]), results.TokenSource),
        (team.admin.as_user("website").submit_lead({"name": "Anna Web", "email": "l@example.pl"},
                                                   process="photovoltaics"), results.Submission),
        (team.admin.revoke_token(token["id"]), results.Token),
    ]
    csv = tmp_path / "leads.csv"
    csv.write_text("name,email\nOla Kot,ola@example.pl\nBad,not-an-address\n", encoding="utf-8")
    checks += [(marta.import_csv(csv, process="photovoltaics", dry_run=True), results.ImportReport),
               (marta.import_csv(csv, process="photovoltaics"), results.ImportReport)]
    for value, shape in checks:
        conforms(value, shape, getattr(shape, "__name__", str(shape)))
    # the shapes with optional parts were seen with them
    assert {"reviews", "unassigned"} <= set(marta.daily())
    assert {"matrix", "trend"} <= set(marta.report_refusals(matrix_by="reason", trend=True))
