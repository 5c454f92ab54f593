"""Start-up of `leadflow lead show` per language, two source trees side by side (issue 17: "lead show start-up
does not grow by more than 10 ms").

    python -m benchmarks.startup_languages --runs 9 OLD_TREE NEW_TREE

Each tree (a checkout, e.g. ``git archive main | tar -x -C /tmp/old``) gets its modules compiled to bytecode, as
pip installs them, and a demo database of its own (``leadflow demo --db``); then ``lead show 1`` (the table and
``--json``) runs as a whole process in English and in Polish, the trees alternating run by run. The figure is the
child's CPU time (user + sys), steadier than wall time on a shared machine: median and minimum per cell.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

COMMANDS = {"table": ["lead", "show", "1"], "--json": ["lead", "show", "1", "--json"]}
LANGUAGES = ("en", "pl")


def _demo(tree: str) -> str:
    subprocess.run([sys.executable, "-m", "compileall", "-q", f"{tree}/engine", f"{tree}/cli"], check=True)
    db = os.path.join(tempfile.mkdtemp(prefix="lf-startup-"), "demo.db")
    subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "demo", "--db", db],
                   env={**os.environ, "PYTHONPATH": tree}, check=True, stdout=subprocess.DEVNULL)
    return db


def _cpu_ms(tree: str, db: str, lang: str, argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": tree, "LEADFLOW_LANG": lang, "LEADFLOW_DB": f"sqlite:///{db}",
           "LEADFLOW_USER": "anna", "PYTHONDONTWRITEBYTECODE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *argv], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return 1000 * ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("trees", nargs=2, metavar="TREE")
    args = parser.parse_args()
    dbs = {tree: _demo(tree) for tree in args.trees}
    found: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.runs):
        for lang in LANGUAGES:
            for kind, argv in COMMANDS.items():
                for tree in args.trees:
                    found.setdefault((lang, kind, tree), []).append(_cpu_ms(tree, dbs[tree], lang, argv))
    print(f"{'language':8} {'output':7} {'tree':40} {'median ms':>9} {'min ms':>7}")
    for (lang, kind, tree), values in sorted(found.items()):
        print(f"{lang:8} {kind:7} {tree:40} {statistics.median(values):9.0f} {min(values):7.0f}")


if __name__ == "__main__":
    main()
