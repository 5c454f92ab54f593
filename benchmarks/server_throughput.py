"""Throughput of the team server: requests per second and p50/p99 latency of a real ``leadflow serve`` under a
bounded load on loopback, beside the floor of its stack, in one run (issue 14).

    python -m benchmarks.server_throughput                      # SQLite (a file in benchmarks/out)
    python -m benchmarks.server_throughput --pg URL             # and PostgreSQL (a schema of its own)
    python -m benchmarks.server_throughput --seconds 5 --clients 1,8,32 --workers 1
    python -m benchmarks.server_throughput --clients 32 --workers 2 --balanced   # two servers, clients spread

What is measured, at each number of concurrent clients (default 1, 8 and 32):

- **intake**: ``POST /v1/leads`` with a web form's integration token, a JSON inquiry per request (a tenth of them
  repeating an earlier person's e-mail and phone, so the lead joins that person's client);
- **lead set**: ``PATCH /v1/leads/{id}`` of a process field with ``If-Match`` (the version the previous answer's
  ``ETag`` gave), a salesperson's personal token, each client going round leads of its own (``LEADS_PER_CLIENT``,
  so that a lead's history grows as a busy day's would, not by thousands of events; no 409 is expected: one is
  counted as an error);
- **floor**: a minimal FastAPI app (``floor_app`` below) on uvicorn with the same server settings and worker count,
  whose endpoint reads the JSON body and inserts one row into a table of the same database, through the same
  connection setup (``create_db_engine``: WAL, ``BEGIN IMMEDIATE`` on SQLite), its work on the thread pool as the
  server's engine calls are. The ratio column is the floor's rate over leadflow's: what leadflow costs above the
  cheapest write this stack can make.

Beside the rate and the latencies, "server CPU ms" is the CPU time the server process used per answered request
(from /proc): on a shared machine the rates move with everybody else's load, the CPU per request much less.
"Generator CPU ms" is this process's (the load generator's) per answered request: what the clients take of the
same cores. "CPU shares" is each busiest server process's part of the server's CPU: with ``--workers N`` uvicorn's
workers share one listening socket, and the first to wake may accept every kept-alive connection (32 clients'
connections are opened at once), so N workers can serve as one; ``--balanced`` runs N servers of one process each
on ports of their own instead and spreads the clients over them (client n to server n mod N), as a load balancer
in front of N ``leadflow serve`` processes would.

The load generator is in this process: one asyncio task per client, each with its own keep-alive connection,
sending its next request as soon as the previous answer is read (a closed loop: N clients keep at most N requests
in flight), for ``--seconds`` after a warm-up. It is a few lines of raw HTTP/1.1 on asyncio streams, much cheaper
per request than an HTTP library, but it still SHARES THE MACHINE's cores with the server: on a 2-core machine a
fraction of one core goes to it, so the figures are a lower bound of what the server does with the machine to
itself (``uptime`` is printed too: other work on the machine lowers both leadflow and the floor, so the ratio is
the fair figure). No C load generator (wrk, ab, hey, oha) is assumed installed; ``--generator-only`` is not
needed for them: point one at a server started by hand.

Each server is a subprocess (``python -m cli.main serve``, or this module's ``--floor-server``), on a free port,
its output discarded; the databases are made fresh for every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request  # the floor endpoint's annotation, resolved by FastAPI from this module

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: Targets of issue 14 at 32 clients on SQLite: requests per second, and the largest ratio to the floor.
TARGETS = {"intake": 1_000, "lead set": 500}
FLOOR_RATIO = 3.0
WARM_UP = 1.5
#: Leads each lead-set client goes round.
LEADS_PER_CLIENT = 20
#: The people an intake client sends (person n * 40 * this + client * this + request in a cell of n clients: no
#: cell of 1 to 32 clients sends another's people, and every person's phone has 7 digits after +48 60).
PEOPLE_PER_CLIENT = 6_000


# -- the load generator ---------------------------------------------------------------------------------------

class Client:
    """One client's requests: ``request()`` the bytes of its next one, ``answered()`` what came back."""

    def __init__(self, number: int):
        self.number = number
        self.sent = 0

    def request(self) -> bytes:
        raise NotImplementedError

    def answered(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        pass


def http_request(method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Content-Type: application/json",
             f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    counted_from: float = 0.0
    counted_to: float = 0.0


async def _drive(port: int, client: Client, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while True:
            started = time.perf_counter()
            if started >= tally.counted_to:
                return
            writer.write(client.request())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            headers = dict(line.split(b": ", 1) for line in head[:-4].split(b"\r\n")[1:])
            headers = {k.lower(): v for k, v in headers.items()}
            body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            done = time.perf_counter()
            client.answered(status, headers, body)
            if done >= tally.counted_from and done <= tally.counted_to:
                tally.latencies.append(done - started)
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
    finally:
        writer.close()


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU time (user and system) each process of a server used so far: the process and its children (``--workers
    N``: uvicorn's supervisor, its workers)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(p) for p in task.read_text().split()]
    used: dict[int, float] = {}
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def load(port: int | list[int], clients: list[Client], seconds: float, pid: int | list[int]) -> dict[str, Any]:
    """Run ``clients`` concurrently against the server on ``port`` (process ``pid``); their rate and latencies
    after a warm-up, and the server's CPU milliseconds per answered request (a figure that other work on the
    machine does not change much, unlike the rate). Beside it: the load generator's own CPU per request (this
    process), and the share of the server's CPU each of its busiest processes used (``--workers N``: whether the
    workers shared the connections). Several ports and pids (``--balanced``): client n goes to port n modulo
    their number, as a load balancer would spread them."""
    ports = port if isinstance(port, list) else [port]
    pids = pid if isinstance(pid, list) else [pid]
    tally = Tally()
    cpu: list[dict[int, float]] = []
    own: list[float] = []

    def sample() -> None:
        cpu.append({p: used for root in pids for p, used in cpu_by_process(root).items()})
        own.append(time.process_time())

    async def main() -> None:
        now = time.perf_counter()
        tally.counted_from, tally.counted_to = now + WARM_UP, now + WARM_UP + seconds
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + WARM_UP, sample)
        loop.call_at(loop.time() + WARM_UP + seconds, sample)
        await asyncio.gather(*(_drive(ports[c.number % len(ports)], c, tally) for c in clients))

    asyncio.run(main())
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    latencies = sorted(tally.latencies) or [float("nan")]
    answered = sum(tally.statuses.values())
    measured = answered and len(cpu) == 2
    used = {p: cpu[-1][p] - cpu[0].get(p, 0.0) for p in cpu[-1]} if measured else {}
    total = sum(used.values())
    shares = sorted((u / total for u in used.values()), reverse=True)[:len(pids) * 2] if total else []
    return {"per_s": ok / seconds, "cpu_ms": total * 1000 / answered if measured else float("nan"),
            "generator_cpu_ms": (own[-1] - own[0]) * 1000 / answered if measured else float("nan"),
            "cpu_shares": [round(s, 2) for s in shares if s >= 0.01],
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "errors": sum(n for status, n in tally.statuses.items() if not 200 <= status < 300),
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())}}


# -- what the clients send ------------------------------------------------------------------------------------

class IntakeClient(Client):
    """A web form posting inquiries (``POST /v1/leads``) with an integration token."""

    def __init__(self, number: int, token: str, offset: int):
        super().__init__(number)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.offset = offset

    def request(self) -> bytes:
        from benchmarks.data import FIRST_NAMES, LAST_NAMES

        i = self.offset + self.number * PEOPLE_PER_CLIENT + self.sent
        # every tenth inquiry is again the person this client sent five inquiries ago (same e-mail and phone): the
        # lead joins that person's client. (The first version repeated the phone's last six digits across clients
        # and cells, so nearly every inquiry matched one client by phone, which gathered hundreds of leads.)
        person = i - 5 if self.sent >= 5 and i % 10 == 0 else i
        self.sent += 1
        return http_request("POST", "/v1/leads", {
            "name": f"{FIRST_NAMES[person % len(FIRST_NAMES)]} {LAST_NAMES[person % len(LAST_NAMES)]}",
            "email": f"osoba.{person}@przyklad.pl", "phone": f"+48 60{person:07d}",
            "value": "12 500,00", "roof_type": "flat", "fields": {"roof_area_m2": 40}}, self.headers)


class LeadSetClient(Client):
    """A salesperson setting a field of their own lead, with the version the last answer's ETag said."""

    def __init__(self, number: int, token: str, versions: dict[int, int]):
        super().__init__(number)
        self.token = token
        self.versions = versions  # lead id: the version its last answer said (shared with the next round)
        self.leads = sorted(versions)
        self.lead = self.leads[0]

    def request(self) -> bytes:
        self.sent += 1
        self.lead = self.leads[self.sent % len(self.leads)]
        return http_request("PATCH", f"/v1/leads/{self.lead}", {"values": {"roof_area_m2": 10 + self.sent % 1000}},
                            {"Authorization": f"Bearer {self.token}", "If-Match": f'"{self.versions[self.lead]}"'})

    def answered(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        etag = headers.get(b"etag")
        if etag is not None:
            self.versions[self.lead] = int(etag.strip(b'"'))


class FloorClient(Client):
    def request(self) -> bytes:
        self.sent += 1
        return http_request("POST", "/floor", {"client": self.number, "n": self.sent, "name": "Zofia Kamińska"}, {})


# -- the floor: FastAPI inserting one row ---------------------------------------------------------------------

def floor_app(url: str) -> Any:
    """The least a write request costs on this stack: parse a JSON body, insert one row, answer JSON."""
    import sqlalchemy as sa
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from engine.store.database import create_db_engine

    db = create_db_engine(url)
    table = sa.Table("bench_floor", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("body", sa.Text, nullable=False), sa.Column("created_at", sa.DateTime, nullable=False))
    table.metadata.create_all(db)
    statement = sa.insert(table).returning(table.c.id)

    def insert(body: dict[str, Any]) -> int:
        import datetime as dt

        with db.begin() as conn:
            return int(conn.execute(statement, {"body": json.dumps(body), "created_at": dt.datetime.now()})
                       .scalar_one())

    app = FastAPI()

    @app.post("/floor")
    async def floor(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        return JSONResponse({"id": await run_in_threadpool(insert, body)}, status_code=201)

    return app


def floor_from_environment() -> Any:
    return floor_app(os.environ["BENCH_FLOOR_DB"])


def serve_floor(url: str, port: int, workers: int) -> None:
    import uvicorn

    from cli.server.run import uvicorn_options

    os.environ["BENCH_FLOOR_DB"] = url
    options = uvicorn_options(HOST, port)
    if workers > 1:
        uvicorn.run("benchmarks.server_throughput:floor_from_environment", factory=True, workers=workers, **options)
    else:
        uvicorn.run(floor_app(url), **options)


# -- the databases and servers --------------------------------------------------------------------------------

@dataclass
class Database:
    name: str
    url: str
    intake_token: str
    person_token: str
    leads: list[dict[int, int]]  # per lead-set client: its leads' versions


def make_database(name: str, url: str, clients: int) -> Database:
    """A fresh leadflow database: photovoltaics, its users (benchmarks.import_csv.prepare), tokens without a
    practical rate limit (the benchmark is one token's flood), and ``LEADS_PER_CLIENT`` leads per lead-set client."""
    from benchmarks.import_csv import prepare
    from engine.api import Engine
    from engine.services.tokens import RATE_MAX

    prepare(url)
    admin = Engine.open(url, user="admin")
    try:
        intake = admin.tokens.add("website", process="photovoltaics", rate_limit=RATE_MAX)["token"]
        person = admin.tokens.add_personal("bench", owner="sales00", rate_limit=RATE_MAX)["token"]
        seller = admin.as_user("sales00")
        made = [seller.leads.add(process="photovoltaics", name=f"Lead {i}", email=f"lead.{i}@przyklad.pl")
                for i in range(clients * LEADS_PER_CLIENT)]
    finally:
        admin.close()
    return Database(name, url, intake, person, [
        {lead["id"]: lead["version"] for lead in made[c * LEADS_PER_CLIENT:(c + 1) * LEADS_PER_CLIENT]}
        for c in range(clients)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def server(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LEADFLOW_NOW", None)
    process = subprocess.Popen([sys.executable, *argv], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(argv)} did not listen on port {port}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def servers(argv: Callable[[int, int], list[str]], workers: int, balanced: bool,
            ) -> Iterator[tuple[list[int], list[int]]]:
    """The ports and process ids of one server of ``workers`` processes (``argv(port, workers)``), or with
    ``balanced`` of ``workers`` servers of one process each, on ports of their own."""
    with ExitStack() as stack:
        ports = [free_port() for _ in range(workers if balanced else 1)]
        started = [stack.enter_context(server(argv(port, 1 if balanced else workers), port)) for port in ports]
        yield ports, [process.pid for process in started]


def measure(databases: list[tuple[str, str]], counts: list[int], seconds: float, workers: int,
            log: Callable[[str], None] = print, balanced: bool = False) -> list[dict[str, Any]]:
    """Every (database, contender, clients) cell: its rate and latencies."""
    rows: list[dict[str, Any]] = []
    most = max(counts)

    def report(name: str, what: str, n: int, result: dict[str, Any]) -> None:
        rows.append({"database": name, "what": what, "clients": n, **result})
        log(f"  {what:<9} {n:>3} clients: {result['per_s']:8,.0f}/s  statuses {result['statuses']}  "
            f"server CPU shares {result['cpu_shares']}")

    for name, url in databases:
        log(f"{name}: building the database")
        db = make_database(name, url, most)
        contenders: dict[str, Callable[[int, Database], list[Client]]] = {
            "intake": lambda n, db: [IntakeClient(c, db.intake_token, offset=n * PEOPLE_PER_CLIENT * 40)
                                     for c in range(n)],
            "lead set": lambda n, db: [LeadSetClient(c, db.person_token, db.leads[c]) for c in range(n)],
        }
        with servers(lambda port, w, url=url: ["-m", "cli.main", "--db", url, "serve", "--port", str(port), "--workers",
                                      str(w)], workers, balanced) as (ports, pids):
            for what, make in contenders.items():
                for n in counts:  # lead set: the versions stay in db.leads
                    report(name, what, n, load(ports, make(n, db), seconds, pids))
        with servers(lambda port, w, url=url: ["-m", "benchmarks.server_throughput", "--floor-server", url,
                                                 str(port),
                                      str(w)], workers, balanced) as (ports, pids):
            for n in counts:
                report(name, "floor", n, load(ports, [FloorClient(c) for c in range(n)], seconds, pids))
    return rows


def print_table(rows: list[dict[str, Any]], seconds: float, workers: int, balanced: bool = False) -> None:
    floors = {(r["database"], r["clients"]): r["per_s"] for r in rows if r["what"] == "floor"}
    shape = (f"{workers} servers of one process, clients spread over them" if balanced
             else f"leadflow serve ({workers} worker{'s' if workers > 1 else ''})")
    print(f"\n{shape}, {seconds:g} s per cell after a {WARM_UP:g} s warm-up; load average "
          f"{os.getloadavg()[0]:.2f} at the end. Generator CPU ms: the load generator's own (this process); CPU "
          "shares: of the server's CPU, each busiest process's")
    print("| database | requests | clients | per s | p50 ms | p99 ms | errors | server CPU ms | generator CPU ms | "
          "CPU shares | floor per s | floor / leadflow | target |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
    for r in rows:
        floor = floors.get((r["database"], r["clients"]), float("nan"))
        ratio = floor / r["per_s"] if r["per_s"] else float("inf")
        target = ""
        if r["database"] == "SQLite" and r["clients"] == 32 and r["what"] in TARGETS:
            met = r["per_s"] >= TARGETS[r["what"]] and ratio <= FLOOR_RATIO
            target = f">= {TARGETS[r['what']]:,}/s, <= {FLOOR_RATIO:g}x: {'yes' if met else '**no**'}"
        shown = "-" if r["what"] == "floor" else f"{floor:,.0f}"
        shown_ratio = "-" if r["what"] == "floor" else f"{ratio:.2f}x"
        shares = " / ".join(f"{s:.0%}" for s in r["cpu_shares"])
        print(f"| {r['database']} | {r['what']} | {r['clients']} | {r['per_s']:,.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['errors']} | {r['cpu_ms']:.2f} | {r['generator_cpu_ms']:.2f} | {shares} | "
              f"{shown} | {shown_ratio} | {target} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("LEADFLOW_BENCH_PG_URL"), metavar="URL",
                        help="also run on this PostgreSQL database, in a schema of its own")
    parser.add_argument("--pg-schema", default="bench_server")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--clients", default="1,8,32", help="numbers of concurrent clients, comma-separated")
    parser.add_argument("--workers", type=int, default=1, help="server processes (both leadflow and the floor)")
    parser.add_argument("--balanced", action="store_true",
                        help="with --workers N: N servers of one process each on ports of their own, the clients "
                             "spread over them as a load balancer would (uvicorn's workers share one socket, and "
                             "one of them may accept every kept-alive connection)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write the rows to this file")
    parser.add_argument("--floor-server", nargs=3, metavar=("URL", "PORT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server:
        url, port, workers = args.floor_server
        serve_floor(url, int(port), int(workers))
        return 0
    from benchmarks.data import out_dir
    from engine.store.database import postgres_schema, remove_sqlite_files

    databases = []
    if not args.no_sqlite:
        path = out_dir() / "server-throughput.db"
        remove_sqlite_files(path)
        databases.append(("SQLite", f"sqlite:///{path}"))
    if args.pg:
        databases.append(("PostgreSQL", postgres_schema(args.pg, args.pg_schema, reset=True)))
    counts = [int(n) for n in args.clients.split(",")]
    rows = measure(databases, counts, args.seconds, args.workers, balanced=args.balanced)
    print_table(rows, args.seconds, args.workers, args.balanced)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip()}")
    if args.json_path:
        args.json_path.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
