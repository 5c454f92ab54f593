"""The remote CLI's latency: whole ``leadflow`` processes working through a team server, against Python's own
start-up (the floor) and a bare ``urllib`` request, all in the same run.

    python -m benchmarks.remote_cli --runs 15                                # a canned server on loopback
    python -m benchmarks.remote_cli --server URL --token lfp_... --lead ID   # a running team server

Runs, alternately, ``python -c pass``, a Python that makes one ``urllib`` request to the server (what any client
pays to ask once), ``leadflow lead show ID --json``, ``leadflow lead show ID`` (the table, with rich),
``leadflow task list --json`` and ``leadflow task list``, each as a new process (``python -m cli.main``, what the
installed ``leadflow`` script runs, its modules compiled to bytecode as pip installs them), and prints the
median wall time and its ratio to the floor. The target (issue 14): within 6x of ``python -c pass``.

Without ``--server``, the server is a stdlib HTTP server on loopback that answers every request with the JSON a
real server returns for a lead of the photovoltaics journey and its task list (recorded once from a local
engine): the figures are then the client's own cost, and a real server adds its time per request (docs/
performance.md).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.cli_latency import run_once

ROOT = Path(__file__).resolve().parent.parent
TARGET = 6.0

URLLIB = """import os, urllib.request
req = urllib.request.Request(os.environ["LEADFLOW_SERVER"] + "/v1/leads/" + os.environ["BENCH_LEAD"],
                             headers={"Authorization": "Bearer " + os.environ["LEADFLOW_TOKEN"]})
urllib.request.urlopen(req).read()
"""


def recorded_answers() -> dict[str, Any]:
    """What a server answers for a lead one stage into the journey, its history, and anna's task list."""
    from engine.api import Engine

    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("LEADFLOW_NOW", "2026-03-02T09:00:00")
        admin = Engine.open(f"sqlite:///{Path(folder) / 'bench.db'}", user="root")
        try:
            admin.init()
            admin.processes.load(ROOT / "processes" / "photovoltaics.yaml")
            admin.users.add("anna", "salesperson", "north")
            anna = admin.as_user("anna")
            lead = anna.leads.add(process="photovoltaics", name="Zofia Kamińska", phone="+48 600 100 200")
            for i in range(20):
                anna.leads.add(process="photovoltaics", name=f"Client {i}", email=f"c{i}@example.pl")
            anna.leads.complete_task(lead["id"], "record_contact")
            return {f"/v1/leads/{lead['id']}": anna.leads.get(lead["id"]),
                    f"/v1/leads/{lead['id']}/history": anna.leads.history(lead["id"]),
                    "/v1/tasks": anna.tasks.list(), "lead": lead["id"]}
        finally:
            admin.close()


@contextmanager
def canned_server(answers: dict[str, Any]) -> Iterator[str]:
    bodies = {path: json.dumps(data).encode() for path, data in answers.items() if path.startswith("/")}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = bodies.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            body = body if body is not None else b'{"detail": "not found"}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def measure(server: str, token: str, lead: int, runs: int) -> dict[str, dict[str, float]]:
    for package in ("cli",):  # as pip installs it: compiled to bytecode
        compileall.compile_dir(ROOT / package, quiet=1)
    with tempfile.TemporaryDirectory() as config:
        env = {**{k: v for k, v in os.environ.items()
                  if k not in ("PYTHONDONTWRITEBYTECODE", "LEADFLOW_DB", "LEADFLOW_USER")},
               "PYTHONPATH": str(ROOT), "LEADFLOW_SERVER": server, "LEADFLOW_TOKEN": token, "BENCH_LEAD": str(lead),
               "XDG_CONFIG_HOME": config}
        py = [sys.executable]
        commands = {
            "python -c pass (floor)": [*py, "-c", "pass"],
            "python: one urllib request": [*py, "-c", URLLIB],
            "lead show ID --json": [*py, "-m", "cli.main", "lead", "show", str(lead), "--json"],
            "lead show ID": [*py, "-m", "cli.main", "lead", "show", str(lead)],
            "task list --json": [*py, "-m", "cli.main", "task", "list", "--json"],
            "task list": [*py, "-m", "cli.main", "task", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                times[name].append(run_once(argv, env)[0])
    floor = statistics.median(times["python -c pass (floor)"])
    return {name: {"median_s": statistics.median(values), "ratio": statistics.median(values) / floor}
            for name, values in times.items()}


def print_table(results: dict[str, dict[str, float]], where: str, runs: int) -> None:
    print(f"\nThe CLI through a server ({where}), median of {runs} runs each, whole processes:")
    print(f"  {'command':<30} {'wall':>9} {'vs floor':>9}")
    for name, r in results.items():
        mark = "" if name.startswith("python") else ("  ok" if r["ratio"] <= TARGET else f"  over {TARGET:g}x")
        print(f"  {name:<30} {r['median_s'] * 1000:>6.0f} ms {r['ratio']:>8.1f}x{mark}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--server", help="A running team server (default: a canned one on loopback).")
    parser.add_argument("--token", help="A personal access token for --server.")
    parser.add_argument("--lead", type=int, help="A lead the token's user may see, for --server.")
    args = parser.parse_args(argv)
    if args.server:
        if not (args.token and args.lead):
            parser.error("--server needs --token and --lead")
        print_table(measure(args.server, args.token, args.lead, args.runs), args.server, args.runs)
        return 0
    answers = recorded_answers()
    with canned_server(answers) as url:
        print_table(measure(url, "lfp_benchmark", answers["lead"], args.runs), "canned answers on loopback",
                    args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
