"""The admin's ``task list`` over about 40,000 open tasks (issue 18): wall time and peak memory of the whole command.

``python benchmarks/task_list.py DB [--leads N]`` builds the database once (``benchmarks.data.build``: every lead
open, its current stage's tasks open) and prints how many open tasks the admin's list covers; the command itself is
measured as a process with ``/usr/bin/time -f '%e s %M KiB'`` (docs/performance.md has the command lines). The
script imports ``benchmarks.data`` and the engine from ``sys.path``, so ``PYTHONPATH=/path/to/another/checkout``
builds that checkout's database (the figures before a change).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db", type=Path)
    parser.add_argument("--leads", type=int, default=22_200)
    args = parser.parse_args()
    from benchmarks import data

    if not data.reusable(args.db):
        data.build(args.db, args.leads, log=lambda *a: print(*a, file=sys.stderr))
    engine = sa.create_engine(f"sqlite:///{args.db}")
    with engine.connect() as conn:
        tasks = conn.execute(sa.text(
            "SELECT count(*) FROM lead_tasks t JOIN leads l ON l.id = t.lead_id "
            "WHERE t.state = 'open' AND l.status = 'open' AND t.stage = l.stage")).scalar_one()
    print(f"{args.db}: {tasks} open tasks of open leads")


if __name__ == "__main__":
    main()
