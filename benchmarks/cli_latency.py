"""CLI latency: the wall time of whole `leadflow` processes, against Python's own start-up (the floor).

    python -m benchmarks.cli_latency --leads 100000 --runs 15

Builds (once) a database of ``--leads`` leads with ``benchmarks.data.build``, then runs, alternately,
``python -c pass``, ``python -c 'import sqlalchemy'`` (the database toolkit's import, which every
command that reads the database pays), ``leadflow lead show ID --json``, ``leadflow task done ID TASK``
(each run on another lead whose task is open, so every run really writes) and ``leadflow board --json``,
each as a new process
(``python -m cli.main``, what the installed ``leadflow`` script runs, with its modules compiled to bytecode
as pip installs them), and prints the median wall time, the ratio to the floor, and the peak memory (RSS)
of each command.
"""

from __future__ import annotations

import argparse
import compileall
import os
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.data import NOW, build, out_dir, reusable

ROOT = Path(__file__).resolve().parent.parent


#: Runs a command as a child of a bare Python (no site packages): the child's peak RSS then counts the command,
#: not the pages a fork inherits from this (large) benchmark process. Prints "seconds rss_kib" on stderr.
_WRAPPER = """import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\n{time.perf_counter() - started} {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_once(argv: list[str], env: dict[str, str], *, output: bool = False) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and (with ``output``) the standard output of one process, which must
    succeed."""
    proc = subprocess.run([sys.executable, "-S", "-c", _WRAPPER, *argv], env=env,
                          stdout=subprocess.PIPE if output else subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=ROOT, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    seconds, rss = proc.stderr.split()[-2:]
    return float(seconds), int(rss), proc.stdout or ""


def open_tasks(path: Path, n: int) -> list[tuple[int, str, str]]:
    """``n`` open leads with an open task in their stage, with their owner: (lead id, task id, owner)."""
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT l.id, t.task_id, l.owner FROM leads l JOIN lead_tasks t ON t.lead_id = l.id AND t.stage = l.stage "
            "WHERE l.status = 'open' AND t.state = 'open' GROUP BY l.id ORDER BY l.id LIMIT ?", (n,)).fetchall()
    finally:
        con.close()


def measure(leads: int, runs: int, log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    path = out_dir() / f"cli-{leads}.db"
    if not reusable(path):
        log(f"building {leads:,} leads in {path} ...")
        build(path, leads, open_share=0.8)
    work = out_dir() / f"cli-{leads}-work.db"
    from engine.store import copy_sqlite_files

    copy_sqlite_files(path, work)
    targets = open_tasks(work, runs)
    # leadflow as installed: pip compiles its modules to bytecode at install time; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module on every run (about 100 ms here)
    for package in ("engine", "cli"):
        compileall.compile_dir(ROOT / package, quiet=1)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPATH": str(ROOT),
           "LEADFLOW_DB": f"sqlite:///{work}", "LEADFLOW_NOW": NOW.isoformat()}
    py = [sys.executable]
    commands: dict[str, Callable[[int], tuple[list[str], dict[str, str]]]] = {
        "python -c pass (floor)": lambda i: ([*py, "-c", "pass"], env),
        # what every command that touches the database pays before any leadflow code runs
        "python -c 'import sqlalchemy'": lambda i: ([*py, "-c", "import sqlalchemy, sqlalchemy.dialects.sqlite"],
                                                    env),
        "lead show ID --json": lambda i: ([*py, "-m", "cli.main", "lead", "show", str(targets[i][0]), "--json"],
                                          {**env, "LEADFLOW_USER": targets[i][2]}),
        "task done ID TASK": lambda i: ([*py, "-m", "cli.main", "task", "done", str(targets[i][0]), targets[i][1]],
                                        {**env, "LEADFLOW_USER": targets[i][2]}),
        "board --json": lambda i: ([*py, "-m", "cli.main", "board", "--json"], {**env, "LEADFLOW_USER": "admin"}),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    memory: dict[str, int] = dict.fromkeys(commands, 0)
    for i in range(runs):
        for name, command in commands.items():
            argv, command_env = command(i)
            seconds, rss, _ = run_once(argv, command_env)
            times[name].append(seconds)
            memory[name] = max(memory[name], rss)
    floor = statistics.median(times["python -c pass (floor)"])
    return {name: {"median_s": statistics.median(values), "ratio": statistics.median(values) / floor,
                   "peak_rss_mib": memory[name] / 1024} for name, values in times.items()}


def print_table(results: dict[str, dict[str, float]], leads: int, runs: int) -> None:
    print(f"\nCLI latency on {leads:,} leads (SQLite), median of {runs} runs each, whole processes:")
    print(f"  {'command':<30} {'wall':>9} {'vs floor':>9} {'peak RSS':>10}")
    for name, r in results.items():
        print(f"  {name:<30} {r['median_s'] * 1000:>6.0f} ms {r['ratio']:>8.1f}x {r['peak_rss_mib']:>7.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    print_table(measure(args.leads, args.runs), args.leads, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
