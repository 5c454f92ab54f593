"""A two-year CRM history (benchmarks/history_data.py: 30 salespeople in 5 teams, products, accounts with many
deals, won, lost and open deals in every stage) imported in one command, and every report checked against a plain
Python computation over the CSV, on SQLite and PostgreSQL: as of the import, and (``as_of``) as of two past days."""

from __future__ import annotations

import csv
import datetime as dt
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from benchmarks.history_data import FLOOR, NOW, PROCESS, STAGES, generate
from engine.reports import MIN_HISTORY
from tests.conftest import PG_URL, Team, ok, user_add

DEALS = 2000


@pytest.fixture
def migrated(team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Team, list[dict[str, Any]]]:
    path = tmp_path / "history.csv"
    generate(path, DEALS)
    monkeypatch.setenv("LEADFLOW_NOW", NOW.isoformat())
    for name, role, team_name in FLOOR:
        ok(team.url, "root", user_add(name, role, team_name))
    text = ok(team.url, "root", ["import", str(path), "--process", PROCESS, "--history"], now=NOW.isoformat()).output
    assert f"Imported {DEALS} leads" in text and "0 rows rejected" in text, text
    with path.open(encoding="utf-8") as f:
        return team, list(csv.DictReader(f))


class Truth:
    """The figures computed from the CSV alone."""

    def __init__(self, rows: list[dict[str, Any]], reasons: dict[str, tuple[str, str]]):
        self.deals = []
        for r in rows:
            status = r["status"] or "open"
            stage = r["stage"] or STAGES[-1]
            closed = dt.datetime.fromisoformat(r["closed_at"]) if r["closed_at"] else None
            reason = reasons[r["close_reason"].casefold()] if r["close_reason"] else None
            self.deals.append({"owner": r["owner"], "product": r["product"], "status": status, "stage": stage,
                               "created": dt.datetime.fromisoformat(r["created_at"]), "closed": closed,
                               "value": int(r["value"]) * 100, "reason": reason,
                               "entered": max([dt.datetime.fromisoformat(r["created_at"])]
                                              + [dt.datetime.fromisoformat(r[f"reached_{s}"]) for s in STAGES[1:]
                                                 if r[f"reached_{s}"]])})

    def days(self, deals: list[dict[str, Any]]) -> list[float]:
        return [(d["closed"] - d["created"]).total_seconds() for d in deals if d["status"] == "won"]


def mean_days(seconds: list[float]) -> float | None:
    return round(sum(seconds) / len(seconds) / 86400, 2) if seconds else None


def test_the_reports_of_a_migrated_history_agree_with_the_csv(migrated: tuple[Team, list[dict[str, Any]]]) -> None:
    team, rows = migrated
    admin = team.admin
    spec = admin.spec(PROCESS)
    reasons = {}
    for r in spec.closure_reasons:
        reasons[r.label.casefold()] = (r.id, r.kind)
        reasons[r.id.casefold()] = (r.id, r.kind)
    truth = Truth(rows, reasons)
    deals = truth.deals
    assert {d["status"] for d in deals} == {"open", "won", "lost"}
    assert {(d["status"], d["stage"]) for d in deals if d["status"] != "won"} == {
        (s, stage) for s in ("open", "lost") for stage in STAGES}

    # the cycle: creation to win
    cycle = admin.reports.cycle(process=PROCESS)
    (process,) = cycle["processes"]
    won_seconds = truth.days(deals)
    assert (process["won"], process["mean_days"]) == (len(won_seconds), mean_days(won_seconds))
    assert (process["min_days"], process["max_days"]) == (round(min(won_seconds) / 86400, 2),
                                                          round(max(won_seconds) / 86400, 2))

    # per salesperson: held (open), won, lost, the win rate, the mean cycle
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in deals:
        by_owner[d["owner"]].append(d)
    people = {r["owner"]: r for r in admin.reports.salespeople(process=PROCESS)["salespeople"]}
    for owner, theirs in by_owner.items():
        count = Counter(d["status"] for d in theirs)
        won, lost = count["won"], count["lost"]
        row = people[owner]
        assert (row["held"], row["won"], row["lost"]) == (count["open"], won, lost), owner
        assert row["conversion"] == round(won / (won + lost), 4)
        assert row["mean_cycle_days"] == mean_days(truth.days(theirs))

    # per product: win rate, won value, cycle
    products = {r["product"]: r for r in admin.reports.products(process=PROCESS)["products"]}
    by_product: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in deals:
        by_product[d["product"]].append(d)
    assert set(products) == set(by_product)
    for product, theirs in by_product.items():
        won = [d for d in theirs if d["status"] == "won"]
        lost = [d for d in theirs if d["status"] == "lost"]
        row = products[product]
        assert (row["won"], row["lost"], row["conversion"]) == (len(won), len(lost),
                                                                 round(len(won) / (len(won) + len(lost)), 4))
        assert row["won_value"] == f"{sum(d['value'] for d in won) // 100}.00"
        assert row["mean_cycle_days"] == mean_days(truth.days(theirs))
        assert row["median_cycle_days"] is not None
        lower, upper = sorted(truth.days(theirs))[(len(won) - 1) // 2], sorted(truth.days(theirs))[len(won) // 2]
        assert round(lower / 86400, 2) <= row["median_cycle_days"] <= round(upper / 86400, 2)
    assert statistics.pstdev([r["conversion"] for r in products.values()]) > 0.01  # products do differ

    # the funnel: how many deals reached each stage
    (funnel,) = admin.reports.funnel(process=PROCESS)["funnels"]
    assert (funnel["leads"], funnel["open"], funnel["won"], funnel["lost"]) == (
        len(deals), *(sum(d["status"] == s for d in deals) for s in ("open", "won", "lost")))
    reached = [sum(STAGES.index(d["stage"]) >= i for d in deals) for i in range(len(STAGES))]
    assert [s["reached"] for s in funnel["stages"]] == reached
    assert [s["in_stage"] for s in funnel["stages"]] == [
        sum(d["status"] == "open" and d["stage"] == stage for d in deals) for stage in STAGES]

    # refusals (lost for a refusal, not a removal) by salesperson and by product
    refusals = admin.reports.refusals(period="all", process=PROCESS)
    refused = [d for d in deals if d["status"] == "lost" and d["reason"][1] == "refusal"]
    assert refusals["total"] == len(refused)
    assert {r["owner"]: r["count"] for r in refusals["by_salesperson"]} == dict(Counter(d["owner"] for d in refused))
    assert {r["product"]: r["count"] for r in refusals["by_product"]} == dict(Counter(d["product"] for d in refused))
    assert {r["reason"]: r["count"] for r in refusals["by_reason"]} == dict(Counter(d["reason"][0] for d in refused))

    # the open pipeline per stage, and the forecast's measured probabilities
    forecast = admin.reports.forecast(process=PROCESS, months=3)["forecasts"][0]
    stages = {s["stage"]: s for s in forecast["stages"]}
    for i, stage in enumerate(STAGES):
        held = [d for d in deals if d["status"] == "open" and d["stage"] == stage]
        assert (stages[stage]["open"], stages[stage]["value"]) == (
            len(held), f"{sum(d['value'] for d in held) // 100}.00"), stage
        closed = [d for d in deals if d["status"] != "open" and STAGES.index(d["stage"]) >= i]
        won = sum(d["status"] == "won" for d in closed)
        assert (stages[stage]["history"], stages[stage]["won"]) == (len(closed), won)
        assert len(closed) >= MIN_HISTORY and stages[stage]["probability_method"] == "measured"
        assert stages[stage]["probability"] == round(won / len(closed), 4)
    expected_wins = sum(stages[d["stage"]]["probability"] for d in deals if d["status"] == "open")
    total = forecast["later"]["expected_wins"] + sum(m["expected_wins"] for m in forecast["months"])
    assert abs(total - expected_wins) < 0.05


def as_of(deal: dict[str, Any], row: dict[str, Any], at: dt.datetime) -> dict[str, Any] | None:
    """The deal as it stood at ``at`` from its CSV row alone: None before its creation; open in the last stage it
    had reached until it was closed; the stages it had reached by then."""
    if deal["created"] > at:
        return None
    reached = [i for i, s in enumerate(STAGES) if i == 0 or (row[f"reached_{s}"] and
                                                             dt.datetime.fromisoformat(row[f"reached_{s}"]) <= at)]
    if deal["closed"] is not None and deal["closed"] <= at:
        return {**deal, "reached": STAGES.index(deal["stage"]) + 1}
    return {**deal, "status": "open", "stage": STAGES[max(reached)], "reached": max(reached) + 1}


@pytest.mark.parametrize("days_back", [120, 400])
def test_the_reports_as_of_a_past_day_agree_with_the_csv(migrated: tuple[Team, list[dict[str, Any]]],
                                                        days_back: int) -> None:
    """The funnel, the salespeople's held, won and lost, the open pipeline per stage and the forecast's history as
    of a past day (``as_of``) against the deals as the CSV says they stood at the end of that day."""
    team, rows = migrated
    admin = team.admin
    reasons = {k.casefold(): (r.id, r.kind) for r in admin.spec(PROCESS).closure_reasons for k in (r.id, r.label)}
    day = (NOW - dt.timedelta(days=days_back)).date()
    at = dt.datetime.combine(day, dt.time.max)
    then = [as_of(deal, row, at) for deal, row in zip(Truth(rows, reasons).deals, rows, strict=True)]
    deals = [d for d in then if d is not None]
    assert {d["status"] for d in deals} == {"open", "won", "lost"}
    assert sum(d["status"] == "open" for d in deals) > 50  # open then, closed since: the point of the test

    (funnel,) = admin.reports.funnel(process=PROCESS, as_of=day.isoformat())["funnels"]
    assert (funnel["leads"], funnel["open"], funnel["won"], funnel["lost"]) == (
        len(deals), *(sum(d["status"] == s for d in deals) for s in ("open", "won", "lost")))
    assert [s["reached"] for s in funnel["stages"]] == [sum(d["reached"] > i for d in deals)
                                                        for i in range(len(STAGES))]
    assert [s["in_stage"] for s in funnel["stages"]] == [
        sum(d["status"] == "open" and d["stage"] == stage for d in deals) for stage in STAGES]

    people = {r["owner"]: r for r in admin.reports.salespeople(process=PROCESS, as_of=day.isoformat())["salespeople"]}
    for owner in {d["owner"] for d in deals}:
        count = Counter(d["status"] for d in deals if d["owner"] == owner)
        held = sum(d["value"] for d in deals if d["owner"] == owner and d["status"] == "open")
        assert (people[owner]["held"], people[owner]["won"], people[owner]["lost"]) == (
            count["open"], count["won"], count["lost"]), owner
        assert people[owner]["held_value"] == f"{held // 100}.00"

    forecast = admin.reports.forecast(process=PROCESS, months=3, as_of=day.isoformat())["forecasts"][0]
    stages = {s["stage"]: s for s in forecast["stages"]}
    for i, stage in enumerate(STAGES):
        held_deals = [d for d in deals if d["status"] == "open" and d["stage"] == stage]
        assert (stages[stage]["open"], stages[stage]["value"]) == (
            len(held_deals), f"{sum(d['value'] for d in held_deals) // 100}.00"), stage
        closed = [d for d in deals if d["status"] != "open" and d["reached"] > i]
        assert (stages[stage]["history"], stages[stage]["won"]) == (
            len(closed), sum(d["status"] == "won" for d in closed)), stage


def test_every_migrated_deal_rebuilds_from_its_events(migrated: tuple[Team, list[dict[str, Any]]]) -> None:
    team, _ = migrated
    admin = team.admin
    sample = admin.leads.list(process=PROCESS, limit=100_000)[::97]
    for row in sample:
        assert admin.leads.rebuild(row["id"]).comparable() == admin.leads.stored(row["id"]).comparable()


@pytest.mark.slow
def test_the_history_benchmark_runs(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "benchmarks.history_import", "--deals", "300"], cwd=root,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(root), "LEADFLOW_BENCH_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leadflow import --history of 300 deals: 300 leads" in proc.stdout
    assert "raw sqlite3 executemany of the same rows" in proc.stdout and "300 deals" in proc.stderr
    timed = subprocess.run([sys.executable, "-m", "benchmarks.history_reports", str(tmp_path / "history.db")],
                           cwd=root, capture_output=True, text=True, timeout=600, check=False,
                           env={**os.environ, "PYTHONPATH": str(root)})
    assert timed.returncode == 0, timed.stderr[-3000:]
    lines = timed.stdout.splitlines()  # today's four, then nine calls as of each of three days
    assert len(lines) == 4 + 9 * 3 and lines[-1].endswith("stalled leads (admin), as of 2025-09-02"), lines
    if not PG_URL:
        return
    schema = f"bench_history_test_{os.getpid()}"  # the same calls on a copy in PostgreSQL, beside SQLite's
    try:
        both = subprocess.run([sys.executable, "-m", "benchmarks.history_reports", str(tmp_path / "history.db"),
                               "--pg", PG_URL, "--pg-schema", schema, "--pg-work-mem", "64kB"],
                              cwd=root, capture_output=True, text=True, timeout=600, check=False,
                              env={**os.environ, "PYTHONPATH": str(root)})
    finally:
        from benchmarks.data import drop_postgres_schema

        drop_postgres_schema(PG_URL, schema)
    assert both.returncode == 0, both.stderr[-3000:]
    out = both.stdout.splitlines()
    assert out[0] == "SQLite:" and out[32] == "PostgreSQL (work_mem 64kB):", out
    table = out[out.index(f"{'SQLite':>8} {'PostgreSQL':>11}") + 1:]
    assert [line[22:] for line in table] == [line.split(" s  ", 1)[1] for line in lines], table
    assert all(float(line[:8]) >= 0 and float(line[8:20]) >= 0 for line in table), table  # seconds on both
