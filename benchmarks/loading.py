"""Validating process files: milliseconds per file with each YAML reader, side by side.

    python -m benchmarks.loading [--rounds N]

Checks every shipped process (``processes/*.yaml``) N times with libyaml's reader and with PyYAML's own,
alternating the two so that a noisy machine hurts both alike, and prints the median per file, for the
reading alone (``parse``) and for the whole check (``check_bytes``: reading, schema, semantic checks).
"""

from __future__ import annotations

import argparse
import statistics
import time

from engine import loader, paths, process_yaml


def measure(rounds: int) -> dict[str, dict[str, float]]:
    files = [(str(f), f.read_bytes()) for f in sorted(paths.processes_dir().glob("*.yaml"))]
    for name, raw in files:  # warm the caches (schema, validator, templates) outside the timing
        loader.check_bytes(raw, name)
    timings: dict[str, dict[str, list[float]]] = {r: {"parse": [], "check": []} for r in process_yaml.YAML_READERS}
    saved = process_yaml.yaml_reader
    try:
        for _ in range(rounds):
            for reader in process_yaml.YAML_READERS:
                process_yaml.yaml_reader = reader
                for step, run in (("parse", loader.parse), ("check", loader.check_bytes)):
                    start = time.perf_counter()
                    for name, raw in files:
                        run(raw, name)
                    timings[reader][step].append((time.perf_counter() - start) / len(files) * 1000)
    finally:
        process_yaml.yaml_reader = saved
    return {r: {step: statistics.median(v) for step, v in steps.items()} for r, steps in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    result = measure(rounds)
    count = len(list(paths.processes_dir().glob("*.yaml")))
    print(f"{count} shipped processes, median of {rounds} rounds, ms per file")
    print(f"{'reader':<10} {'read (parse)':>14} {'whole check':>14}")
    for reader, steps in result.items():
        print(f"{reader:<10} {steps['parse']:>14.1f} {steps['check']:>14.1f}")


if __name__ == "__main__":
    main()
