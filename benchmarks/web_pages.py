"""The web app's board and lead page at scale: ``python -m benchmarks.web_pages [--leads 1000 100000] [--pg URL]``.

For each size, builds (once, in the data dir) that many open leads spread over every shipped process, 50
salespeople in 5 teams with their managers, each lead with its stage's tasks (deadlines past and future), 30%
with a booked next contact within a week either side of "now" (so about a third of the leads are red), with the
fast bulk builder (``benchmarks.data.build``), then one lead with 500 events written through the engine
(activities, field changes, tasks, advances). Then it measures:

- **server time**: requests through the real app in this process (a test client over ``create_app``), the time
  the app itself reports in its ``Server-Timing`` header, median and p95 of repeated requests after a warm-up:
  ``GET /board`` as the admin, a team's manager and a salesperson, with the default filters, a text filter and
  a light filter, and ``GET /leads/{id}`` of the 500-event lead; beside each, the reference: the same data
  from the JSON API (``GET /v1/board``, ``GET /v1/leads/{id}``) through the same app;
- **whole-page time in a browser**: Playwright driving Debian's chromium against a real ``leadflow serve``
  process (its test clock at the data's "now"), from navigation start to the load event (the Navigation Timing
  API), median of the runs; beside them, the log-in page (the smallest rendered page) and a vendored static
  file of similar size (``/assets/htmx.min.js``) from the same server.

With ``--pg URL`` (or $LEADFLOW_BENCH_PG_URL) the server times are measured on PostgreSQL too (the SQLite
database copied into a schema of its own). The targets (issue 16): the board under 300 ms of server time at
100,000 open leads on SQLite, the lead page under 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.data import NOW, build, copy_to_postgres, out_dir, reusable
from engine import clock, paths
from engine.api import Engine

ROOT = Path(__file__).resolve().parent.parent
BOARD_TARGET_MS, LEAD_TARGET_MS = 300.0, 100.0
PEOPLE = ("admin", "manager0", "sales00")
HISTORY_EVENTS = 500


def password_of(name: str) -> str:
    return f"{name} measures the web pages 2026"


def shipped_processes() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in paths.processes_dir().glob("*.yaml")))


def _lead_with_history(admin: Engine, events: int) -> int:
    """A photovoltaics lead of sales00 with ``events`` events written through the engine, a minute apart up to
    NOW: calls and notes, field changes, its tasks done and its stages advanced."""
    eng = admin.as_user("sales00")
    at = NOW - dt.timedelta(minutes=events + 5)
    with clock.frozen(at):
        lead_id = int(eng.leads.add(process="photovoltaics", name="Łukasz Historia-Długa", phone="+48601999888",
                                    value="45000")["id"])
    written = 1
    advanced = 0
    while written < events:
        at += dt.timedelta(minutes=1)
        with clock.frozen(at):
            lead = eng.leads.get(lead_id)
            open_tasks = [t["id"] for t in lead["tasks"] if t["stage"] == lead["stage"] and t["state"] == "open"]
            if advanced < 2 and written % 100 == 50:
                done = eng.leads.complete_tasks(lead_id, open_tasks) if open_tasks else None
                written += 1 if done is not None else 0
                if advanced == 1:
                    eng.leads.set_fields(lead_id, {"roof_type": "pitched", "roof_area_m2": "38",
                                                   "financing": "leasing"})
                    written += 1
                eng.leads.advance(lead_id)
                advanced += 1
            elif written % 3 == 0:
                eng.leads.set_fields(lead_id, {"value": str(40_000 + written)})
            else:
                eng.activities.add(lead_id, kind="call" if written % 2 else "note",
                                   text=f"Rozmowa nr {written}: klient prosi o ofertę z magazynem energii")
        written = len(eng.leads.history(lead_id))
    return lead_id


def prepare(leads: int, *, fresh: bool = False, log: Any = print) -> dict[str, Any]:
    """The database of ``leads`` open leads (built once in the data dir) with passwords for PEOPLE and the
    500-event lead; returns its URL and that lead's id."""
    path = out_dir() / f"web-{leads}.db"
    facts = path.with_suffix(".json")
    if fresh or not reusable(path) or not facts.exists():
        facts.unlink(missing_ok=True)
        log(f"building {leads:,} open leads of {', '.join(shipped_processes())} in {path} ...")
        info = build(path, leads, process=shipped_processes(), contact_share=0.3, log=lambda _line: None)
        admin = Engine.open(f"sqlite:///{path}", user="admin")
        try:
            with clock.frozen(NOW - dt.timedelta(days=1)):
                for name in PEOPLE:
                    admin.as_user(name).auth.set_password(name, password_of(name))
            started = time.perf_counter()
            lead_id = _lead_with_history(admin, HISTORY_EVENTS)
            events = len(admin.leads.history(lead_id))
        finally:
            admin.close()
        log(f"built in {info['build_seconds']:.0f} s; lead {lead_id} got {events} events through the engine in "
            f"{time.perf_counter() - started:.0f} s")
        facts.write_text(json.dumps({"history_lead": lead_id, "events": events}), encoding="utf-8")
    return {"url": f"sqlite:///{path}", "path": path, **json.loads(facts.read_text(encoding="utf-8"))}


def board_pages(lead_id: int) -> dict[str, tuple[str, str, str]]:
    """What is measured: name -> (person, page path, its JSON twin's path)."""
    return {
        "board, admin, default filters": ("admin", "/board", "/v1/board?limit=12"),
        "board, manager, default filters": ("manager0", "/board", "/v1/board?limit=12"),
        "board, salesperson, default filters": ("sales00", "/board", "/v1/board?limit=12"),
        "board, manager, text filter": ("manager0", "/board?text=kaminska", "/v1/board?limit=12"),
        "board, manager, red only": ("manager0", "/board?light=red", "/v1/board?limit=12&light=red"),
        "board, admin, one process, red": ("admin", "/board?process=photovoltaics&light=red",
                                           "/v1/board?process=photovoltaics&limit=12&light=red"),
        "lead page, 500 events (salesperson)": ("sales00", f"/leads/{lead_id}", f"/v1/leads/{lead_id}"),
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": statistics.median(ordered), "p95_ms": ordered[min(len(ordered) - 1,
                                                                           round(0.95 * (len(ordered) - 1)))]}


def _server_ms(response: Any) -> float:
    """The app's own time from its Server-Timing header (``app;dur=12.3``)."""
    header = response.headers["server-timing"]
    return float(header.split("dur=")[1].split(",")[0])


def server_times(url: str, lead_id: int, repeat: int) -> dict[str, dict[str, Any]]:
    """Each page's and its JSON twin's server time (ms, median and p95 of ``repeat`` requests after a warm-up),
    through the real app in this process, as of NOW."""
    from cli.server import create_app

    with warnings.catch_warnings():  # this starlette asks for httpx2 instead of httpx
        warnings.simplefilter("ignore", UserWarning)
        from starlette.testclient import TestClient

    admin = Engine.open(url, user="admin")
    out: dict[str, dict[str, Any]] = {}
    try:
        with clock.frozen(NOW):
            app = create_app(admin)
            clients: dict[str, Any] = {}
            tokens: dict[str, str] = {}
            for name in PEOPLE:
                web = TestClient(app, follow_redirects=False)
                login = web.post("/login", data={"username": name, "password": password_of(name),
                                                 "csrf": _csrf(web.get("/login").text)})
                assert login.status_code == 303, login.text
                clients[name] = web
                tokens[name] = admin.as_user(name).tokens.add_personal("benchmark", expires_days=1)["token"]
            for what, (person, page, api) in board_pages(lead_id).items():
                web = clients[person]
                auth = {"Authorization": f"Bearer {tokens[person]}"}
                first = web.get(page)
                assert first.status_code == 200, (page, first.status_code, first.text[:500])
                assert web.get(api, headers=auth).status_code == 200
                pages, twins = [], []
                for _ in range(repeat):  # alternately, so that a busy moment hits both
                    pages.append(_server_ms(web.get(page)))
                    twins.append(_server_ms(web.get(api, headers=auth)))
                out[what] = {"page": _percentiles(pages), "json": _percentiles(twins), "bytes": len(first.content),
                             "cards": first.text.count('class="card card-')}
    finally:
        admin.close()
    return out


def _csrf(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(url: str) -> Iterator[str]:
    """A real ``leadflow serve`` over ``url`` on a free port, its test clock at NOW; yields its base URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEADFLOW_NOW": NOW.isoformat(), "LEADFLOW_USER": "admin"}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--db", url, "--port", str(port),
                               "--test-clock"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def browser_times(url: str, lead_id: int, runs: int) -> dict[str, dict[str, Any]]:
    """Navigation start to the load event (ms, median of ``runs`` after a warm-up) in chromium, per page; the
    references: the log-in page and a vendored static file, from the same server."""
    from playwright.sync_api import sync_playwright

    pages = {what: (person, page) for what, (person, page, _api) in board_pages(lead_id).items()}
    pages["reference: log-in page (signed out)"] = ("", "/login")
    pages["reference: static file /assets/htmx.min.js (52 KB)"] = ("", "/assets/htmx.min.js")
    out: dict[str, dict[str, Any]] = {}
    with serving(url) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            contexts: dict[str, Any] = {"": browser.new_context()}
            for name in PEOPLE:
                context = browser.new_context()
                tab = context.new_page()
                tab.goto(f"{base}/login")
                tab.fill("input[name=username]", name)
                tab.fill("input[name=password]", password_of(name))
                tab.click("button[type=submit]")
                tab.wait_for_url("**/board**")
                tab.close()
                contexts[name] = context
            for what, (person, page) in pages.items():
                tab = contexts[person].new_page()
                samples = []
                for i in range(runs + 1):
                    tab.goto(base + page, wait_until="load")
                    timing = tab.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                          " return [n.loadEventStart - n.startTime, n.responseStart - n.startTime,"
                                          " n.transferSize, n.decodedBodySize]; }")
                    if i:  # the first is the warm-up
                        samples.append(timing)
                tab.close()
                out[what] = {"load_ms": statistics.median(s[0] for s in samples),
                             "first_byte_ms": statistics.median(s[1] for s in samples),
                             "bytes": int(samples[-1][3])}
        finally:
            browser.close()
    return out


def print_server(label: str, leads: int, figures: dict[str, dict[str, Any]], repeat: int) -> None:
    print(f"\n{label}, {leads:,} open leads: server time (the app's Server-Timing), ms, median / p95 of {repeat}",
          flush=True)
    print(f"  {'page':<40} {'page':>15} {'JSON twin':>15} {'target':>8}  {'KB':>5} cards  met")
    for what, f in figures.items():
        target = LEAD_TARGET_MS if what.startswith("lead") else BOARD_TARGET_MS
        page, twin = f["page"], f["json"]
        print(f"  {what:<40} {page['median_ms']:6.1f} / {page['p95_ms']:6.1f} {twin['median_ms']:6.1f} / "
              f"{twin['p95_ms']:6.1f} {target:8.0f}  {f['bytes'] / 1024:5.0f} {f['cards']:5} "
              f"{'yes' if page['p95_ms'] <= target else 'NO'}", flush=True)


def print_browser(leads: int, figures: dict[str, dict[str, Any]], runs: int) -> None:
    print(f"\nSQLite, {leads:,} open leads: chromium, navigation start to load event, ms, median of {runs}",
          flush=True)
    print(f"  {'page':<52} {'load':>8} {'1st byte':>9} {'KB':>6}")
    for what, f in figures.items():
        print(f"  {what:<52} {f['load_ms']:8.1f} {f['first_byte_ms']:9.1f} {f['bytes'] / 1024:6.0f}", flush=True)


def measure(leads: int, *, repeat: int, runs: int, pg_url: str | None = None, browser: bool = True,
            fresh: bool = False) -> dict[str, Any]:
    data = prepare(leads, fresh=fresh)
    result: dict[str, Any] = {"leads": leads, "history_events": data["events"]}
    result["sqlite"] = server_times(data["url"], data["history_lead"], repeat)
    print_server("SQLite", leads, result["sqlite"], repeat)
    if pg_url:
        copy = copy_to_postgres(data["path"], pg_url, f"bench_web_{leads}", log=lambda _line: None)
        result["postgresql"] = server_times(copy["url"], data["history_lead"], repeat)
        print_server("PostgreSQL", leads, result["postgresql"], repeat)
    if browser:
        result["browser"] = browser_times(data["url"], data["history_lead"], runs)
        print_browser(leads, result["browser"], runs)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeat", type=int, default=30, help="requests per page for the server times")
    parser.add_argument("--runs", type=int, default=10, help="navigations per page in the browser")
    parser.add_argument("--pg", default=os.environ.get("LEADFLOW_BENCH_PG_URL"), metavar="URL")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="rebuild the databases even if they exist")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args(argv)
    results = [measure(n, repeat=args.repeat, runs=args.runs, pg_url=args.pg, browser=not args.no_browser,
                       fresh=args.fresh) for n in args.leads]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
