"""The state machine's cost: one shared machine per process version against one machine per lead.

    python -m benchmarks.machine --moves 20000

Prints the time to build a machine for each shipped process, the time per move through the shared
machine (its one model set to the lead's stage, then the trigger fired), the same answer from the
precomputed table, and building a machine per lead as the alternative; and checks that models do not
accumulate on the shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc

from engine import paths
from engine.loader import load_file
from engine.machine import ProcessMachine


def per_op(run: object, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        run()  # type: ignore[operator]
    return (time.perf_counter() - started) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=20_000)
    args = parser.parse_args(argv)

    spec = load_file(paths.processes_dir() / "photovoltaics.yaml")
    builds = {}
    for path in sorted(paths.processes_dir().glob("*.yaml")):
        other = load_file(path)
        builds[other.id] = statistics.median(per_op(lambda o=other: ProcessMachine(o), 20) for _ in range(3))

    machine = ProcessMachine(spec)
    fields = {"financing": "leasing"}
    shared = per_op(lambda: machine.fire("first_contact", "advance_to_first_meeting", fields), args.moves)
    table = per_op(lambda: machine.allowed("first_contact", "advance_to_first_meeting", fields), args.moves)
    attached = len(machine.machine.models)

    def machine_per_lead() -> None:
        ProcessMachine(spec).fire("first_contact", "advance_to_first_meeting", fields)

    n_own = max(200, args.moves // 50)
    own = per_op(machine_per_lead, n_own)
    tracemalloc.start()
    keep = [ProcessMachine(spec) for _ in range(200)]
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del keep

    print("building one machine per process version:")
    for name, seconds in builds.items():
        print(f"  {name:<16} {seconds * 1000:6.2f} ms")
    print(f"a move through the shared machine (set_state, fire):                {shared * 1e6:7.1f} us "
          f"({1 / shared:,.0f} moves/s)")
    print(f"the same answer from the precomputed table:                        {table * 1e6:7.1f} us "
          f"({1 / table:,.0f} moves/s)")
    print(f"a machine built per lead, then one move:                           {own * 1e6:7.1f} us "
          f"({1 / own:,.0f} moves/s), {size / 200 / 1024:.0f} KiB per machine")
    print(f"models attached to the shared machine after {args.moves:,} moves: {attached} (its one reused model)")
    return 0 if attached == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
