"""The whole benchmark suite in one run: ``python -m benchmarks [--scale small|full] [--json FILE]``.

Each section builds its data with a fixed seed and runs its contenders alternately in this one process
run (see each module's docstring); the suite prints every section's table and, at the end, a summary of
medians and ratios. ``--scale small`` is a quick look (and what CI runs, to prove the suite works and its
results are sane, not to judge timings); ``--scale full`` gives the figures of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCALES: dict[str, dict[str, dict[str, int]]] = {
    "small": {"advance": {"leads": 30, "rounds": 1}, "cli": {"leads": 2_000, "runs": 2},
              "machine": {"moves": 2_000}, "board": {"leads": 20_000, "repeat": 1},
              "rotate": {"leads": 2_000}},
    "full": {"advance": {"leads": 500, "rounds": 5}, "cli": {"leads": 100_000, "runs": 15},
             "machine": {"moves": 20_000}, "board": {"leads": 1_000_000, "repeat": 5},
             "rotate": {"leads": 100_000}},
}


def _advance(size: dict[str, int]) -> dict[str, Any]:
    from benchmarks import advance

    medians = advance.measure(size["leads"], size["rounds"], log=lambda _line: None)
    advance.print_table(medians, size["leads"], size["rounds"])
    floor, spiff, own = medians["sqlite3 floor"], medians["SpiffWorkflow"], medians["transitions per lead"]
    return {"steps_per_s": medians, "leadflow_vs_spiff": medians["leadflow"] / spiff,
            "leadflow_vs_machine_per_lead": medians["leadflow"] / own, "floor_vs_leadflow": floor / medians["leadflow"]}


def _cli(size: dict[str, int]) -> dict[str, Any]:
    from benchmarks import cli_latency

    results = cli_latency.measure(size["leads"], size["runs"], log=lambda _line: None)
    cli_latency.print_table(results, size["leads"], size["runs"])
    return results


def _script(module: str, *flags: str) -> Callable[[dict[str, int]], dict[str, Any]]:
    def run(size: dict[str, int]) -> dict[str, Any]:
        import importlib

        argv = [*(f"--{k}={v}" for k, v in size.items()), *flags]
        code = importlib.import_module(f"benchmarks.{module}").main(argv)
        if code:
            raise RuntimeError(f"benchmarks.{module} {' '.join(argv)} exited with {code}")
        return {"exit_code": code}
    return run


SECTIONS: dict[str, Callable[[dict[str, int]], dict[str, Any]]] = {
    "advance": _advance,
    "machine": _script("machine"),
    "cli": _cli,
    "board": _script("board"),
    "rotate": _script("rotate"),
}


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
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"scale": args.scale, "sections": {}}
    failed = []
    for name, run in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name} ({args.scale}) ===", flush=True)
        started = time.perf_counter()
        try:
            section = run(SCALES[args.scale][name])
        except Exception as exc:  # a section that breaks is reported, and the suite fails at the end
            print(f"section {name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
            continue
        section["seconds"] = time.perf_counter() - started
        if not sane(section):
            print(f"section {name} printed figures that are not sane: {section}", file=sys.stderr)
            failed.append(name)
        results["sections"][name] = section
    print("\n=== summary ===")
    for name, section in results["sections"].items():
        print(f"  {name:<10} {section['seconds']:7.1f} s")
    if "advance" in results["sections"]:
        a = results["sections"]["advance"]
        print(f"  leadflow advance: {a['leadflow_vs_spiff']:.1f}x SpiffWorkflow, "
              f"{a['leadflow_vs_machine_per_lead']:.1f}x a machine per lead, "
              f"the sqlite3 floor is {a['floor_vs_leadflow']:.1f}x faster")
    if args.json_path:
        args.json_path.write_text(json.dumps(results, indent=2))
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
