"""The whole benchmark suite in one run: ``python -m benchmarks [--scale small|full] [--json FILE] [--pg URL]``.

Each section builds its data with a fixed seed (once, in the data dir: ``--data-dir`` or $LEADFLOW_BENCH_DIR,
else benchmarks/out) and runs its contenders alternately in this one process run (see each module's
docstring); the suite prints every section's table and, at the end, every target of issue 8 as a Markdown
table: target, measured, met. ``--scale small`` is a quick look (and what CI runs, to prove the suite works
and its results are sane, not to judge timings); ``--scale full`` gives the figures of docs/performance.md.
With ``--pg URL`` (or $LEADFLOW_BENCH_PG_URL) the import, the board and the reports also run on that
PostgreSQL database, each in a schema of its own, and their figures are printed beside SQLite's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCALES: dict[str, dict[str, dict[str, int]]] = {
    "small": {"advance": {"leads": 30, "rounds": 1}, "cli": {"leads": 2_000, "runs": 2},
              "machine": {"moves": 2_000}, "board": {"leads": 20_000, "repeat": 1},
              "rotate": {"leads": 2_000}, "import": {"rows": 2_000, "pg_rows": 2_000},
              "reports": {"leads": 3_000, "repeat": 1}, "search": {"clients": 3_000}},
    "full": {"advance": {"leads": 500, "rounds": 5}, "cli": {"leads": 100_000, "runs": 15},
             "machine": {"moves": 20_000}, "board": {"leads": 1_000_000, "repeat": 5},
             "rotate": {"leads": 100_000}, "import": {"rows": 1_000_000, "pg_rows": 100_000},
             "reports": {"leads": 1_000_000, "repeat": 3}, "search": {"clients": 1_000_000}},
}


@dataclass(frozen=True)
class Options:
    """What every section may use besides its size: the PostgreSQL database to run on too, if any."""

    pg_url: str | None = None
    pg_schema: str = "bench"


def _advance(size: dict[str, int], _options: Options) -> dict[str, Any]:
    from benchmarks import advance

    medians = advance.measure(size["leads"], size["rounds"], log=lambda _line: None)
    advance.print_table(medians, size["leads"], size["rounds"])
    floor, spiff, own = medians["sqlite3 floor"], medians["SpiffWorkflow"], medians["transitions per lead"]
    return {"steps_per_s": medians, "leadflow_vs_spiff": medians["leadflow"] / spiff,
            "leadflow_vs_machine_per_lead": medians["leadflow"] / own, "floor_vs_leadflow": floor / medians["leadflow"]}


def _cli(size: dict[str, int], _options: Options) -> dict[str, Any]:
    from benchmarks import cli_latency

    results = cli_latency.measure(size["leads"], size["runs"], log=lambda _line: None)
    cli_latency.print_table(results, size["leads"], size["runs"])
    return results


def _board(size: dict[str, int], _options: Options) -> dict[str, Any]:
    from benchmarks import board

    result = board.measure(size["leads"], size["repeat"])
    board.print_table(result)
    return result


def _import(size: dict[str, int], options: Options) -> dict[str, Any]:
    from benchmarks import import_csv

    result = import_csv.measure(size["rows"], pg_url=options.pg_url, pg_rows=size["pg_rows"],
                                pg_schema=options.pg_schema)
    import_csv.print_table(result)
    return result


def _reports(size: dict[str, int], options: Options) -> dict[str, Any]:
    from benchmarks import reports
    from benchmarks.data import copy_to_postgres

    path = reports.history_database(size["leads"])
    results = {"SQLite": reports.measure(f"sqlite:///{path}", size["repeat"])}
    section: dict[str, Any] = {"sqlite": results["SQLite"]}
    if options.pg_url:
        copy = copy_to_postgres(path, options.pg_url, f"{options.pg_schema}_reports_{size['leads']}")
        results["PostgreSQL"] = section["postgres"] = reports.measure(copy["url"], size["repeat"])
        section["pg_copy_seconds"] = copy["copy_seconds"]
    reports.print_table(results)
    return section


def _search(size: dict[str, int], options: Options) -> dict[str, Any]:
    from benchmarks import search
    from benchmarks.data import out_dir

    return search.run(size["clients"], data_dir=out_dir(), pg_url=options.pg_url,
                      pg_schema=f"{options.pg_schema}_search")


def _rotate(size: dict[str, int], _options: Options) -> dict[str, Any]:
    from benchmarks import rotate

    code, figures = rotate.run([f"--leads={size['leads']}"])
    if code:
        raise RuntimeError(f"benchmarks.rotate --leads={size['leads']} found problems (printed above)")
    return figures


def _script(module: str, *flags: str) -> Callable[[dict[str, int], Options], dict[str, Any]]:
    def run(size: dict[str, int], _options: Options) -> dict[str, Any]:
        import importlib

        argv = [*(f"--{k}={v}" for k, v in size.items()), *flags]
        code = importlib.import_module(f"benchmarks.{module}").main(argv)
        if code:
            raise RuntimeError(f"benchmarks.{module} {' '.join(argv)} exited with {code}")
        return {"exit_code": code}
    return run


SECTIONS: dict[str, Callable[[dict[str, int], Options], dict[str, Any]]] = {
    "advance": _advance,
    "machine": _script("machine"),
    "cli": _cli,
    "board": _board,
    "rotate": _rotate,
    "import": _import,
    "reports": _reports,
    "search": _search,
}


def summary(sections: dict[str, Any], scale: dict[str, dict[str, int]], *, judged: bool
            ) -> list[tuple[str, str, str]]:
    """(target, measured, met?) for every target of issue 8 whose section ran, in the issue's order; targets
    are ``judged`` only at the full scale (a small run's sizes are not the targets')."""
    rows: list[tuple[str, str, str]] = []

    def row(target: str, measured: str, met: bool | None) -> None:
        verdict = "-" if met is None else "not judged" if not judged else "yes" if met else "**no**"
        rows.append((target, measured, verdict))

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:,.0f} ms"

    if "advance" in sections:
        a = sections["advance"]
        rates = a["steps_per_s"]
        row("advance, a transaction per operation: >= 5x SpiffWorkflow (JSON persisted per step)",
            f"{a['leadflow_vs_spiff']:.2f}x ({rates['leadflow']:,.0f} vs {rates['SpiffWorkflow']:,.0f} steps/s)",
            a["leadflow_vs_spiff"] >= 5)
        row("advance: >= 5x a `transitions.Machine` per lead with ORM saves",
            f"{a['leadflow_vs_machine_per_lead']:.2f}x ({rates['transitions per lead']:,.0f} steps/s)",
            a["leadflow_vs_machine_per_lead"] >= 5)
        row("advance: within 4x of the raw sqlite3 floor",
            f"{a['floor_vs_leadflow']:.1f}x ({rates['sqlite3 floor']:,.0f} steps/s)", a["floor_vs_leadflow"] <= 4)
        row("batch advance, 500 leads per transaction (the advance benchmark): >= 20,000 leads/s",
            f"{rates['leadflow batch']:,.0f} steps/s", rates["leadflow batch"] >= 20_000)
    if "rotate" in sections:
        r = sections["rotate"]
        row(f"rotation-style batch (`rotate`, plan and write, {r['moved']:,} leads in one transaction): "
            ">= 20,000 leads/s", f"{r['rotate_leads_per_s']:,.0f} leads/s ({r['rotate_s']:.1f} s)",
            r["rotate_leads_per_s"] >= 20_000)
    if "import" in sections:
        i = sections["import"]
        rows_ = i["rows"]
        row(f"import of 1,000,000 rows: < 30 s (here {rows_:,} rows)", f"{i['import_s']:,.1f} s",
            i["import_s"] < 30 * rows_ / 1_000_000)
        row("import: within 8x of raw `executemany` of the same rows",
            f"{i['ratio']:.1f}x ({i['raw_s']:,.1f} s raw)", i["ratio"] <= 8)
        row("memory: peak RSS of the import < 500 MB", f"{i['peak_rss_mib'] * 1.048576:,.0f} MB",
            i["peak_rss_mib"] * 1.048576 < 500)
        if "postgres" in i:
            pg = i["postgres"]
            row(f"import on PostgreSQL, {pg['rows']:,} rows: reported", f"{pg['import_s']:,.1f} s, peak RSS "
                f"{pg['peak_rss_mib'] * 1.048576:,.0f} MB", None)
    boards = []
    if "board" in sections:
        b = sections["board"]
        boards.append((f"{b['leads']:,} open leads", b["seconds"]))
    if "reports" in sections:
        r = sections["reports"]["sqlite"]
        boards.append((f"{r['leads']:,} leads with histories", r["board"]))
    for what, seconds in boards:
        counts, board = seconds["stage counts, all leads (admin)"], seconds["full board JSON, all leads (admin)"]
        row(f"stage counts < 300 ms, SQLite, {what}", ms(counts), counts < 0.3)
        row(f"full board JSON < 2 s, SQLite, {what}", ms(board), board < 2)
    if "board" in sections:
        process = sections["board"]["board_process"]
        row(f"memory: peak RSS of `leadflow board --json`, {sections['board']['leads']:,} open leads: reported",
            f"{process['peak_rss_mib'] * 1.048576:,.0f} MB ({ms(process['median_s'])} wall)", None)
    if "reports" in sections:
        for database in ("sqlite", "postgres"):
            if database not in sections["reports"]:
                continue
            r = sections["reports"][database]
            b = r["board"]
            # "every report": the reports, the stand-up and a team's board, each as the CLI's engine call
            calls = {**r["seconds"], "daily stand-up, one team (manager)": b["daily stand-up, one team (manager)"],
                     "full board JSON, one team (manager)": b["full board JSON, one team (manager)"]}
            slowest = max(calls, key=calls.__getitem__)
            if database == "sqlite":
                row(f"every report (and the stand-up) < 3 s, SQLite, {r['leads']:,} leads with histories",
                    f"slowest {ms(calls[slowest])} ({slowest})", calls[slowest] < 3)
                continue
            row(f"PostgreSQL, {r['leads']:,} leads with histories: reported (met = within SQLite's targets)",
                f"stage counts {ms(b['stage counts, all leads (admin)'])}, full board JSON "
                f"{ms(b['full board JSON, all leads (admin)'])}, slowest report {ms(calls[slowest])} ({slowest})",
                b["stage counts, all leads (admin)"] < 0.3 and b["full board JSON, all leads (admin)"] < 2
                and calls[slowest] < 3)
    if "cli" in sections:
        c = sections["cli"]
        leads = scale["cli"]["leads"]
        for command, name in (("lead show ID --json", "lead show"), ("task done ID TASK", "task done")):
            row(f"CLI `{name}` < 300 ms wall, {leads:,} leads", ms(c[command]["median_s"]),
                c[command]["median_s"] < 0.3)
    return rows


def print_summary(rows: list[tuple[str, str, str]]) -> None:
    """The targets as a Markdown table, so docs/performance.md can take it as it is."""
    print("\n| target | measured | met? |\n| --- | --- | --- |")
    for target, measured, met in rows:
        print(f"| {target} | {measured} | {met} |")


def sane(value: Any) -> bool:
    """Every number a finite non-negative figure (a broken section shows as nan, inf or negative)."""
    if isinstance(value, dict):
        return all(sane(v) for v in value.values())
    if isinstance(value, (int, float)):
        return math.isfinite(value) and value >= 0
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write the results to this file")
    parser.add_argument("--data-dir", type=Path, help="where to keep (and reuse) the built databases and files "
                        "(default: $LEADFLOW_BENCH_DIR, else benchmarks/out)")
    parser.add_argument("--pg", default=os.environ.get("LEADFLOW_BENCH_PG_URL"), metavar="URL",
                        help="also run the import, board and reports on this PostgreSQL database, each in a schema "
                        "of its own (default: $LEADFLOW_BENCH_PG_URL)")
    parser.add_argument("--pg-schema", default="bench", help="prefix of those schemas' names (default: bench)")
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["LEADFLOW_BENCH_DIR"] = str(args.data_dir.resolve())
    options = Options(pg_url=args.pg, pg_schema=args.pg_schema)
    results: dict[str, Any] = {"scale": args.scale, "sections": {}}
    failed = []
    for name, run in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name} ({args.scale}) ===", flush=True)
        started = time.perf_counter()
        try:
            section = run(SCALES[args.scale][name], options)
        except Exception as exc:  # a section that breaks is reported, and the suite fails at the end
            print(f"section {name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
            continue
        section["section_seconds"] = time.perf_counter() - started
        if not sane(section):
            print(f"section {name} printed figures that are not sane: {section}", file=sys.stderr)
            failed.append(name)
        results["sections"][name] = section
    print(f"\n=== summary ({args.scale}) ===")
    for name, section in results["sections"].items():
        print(f"  {name:<10} {section['section_seconds']:7.1f} s")
    results["targets"] = summary(results["sections"], SCALES[args.scale], judged=args.scale == "full")
    print_summary(results["targets"])
    if args.json_path:
        args.json_path.write_text(json.dumps(results, indent=2))
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
