"""Requests per second of ``POST /v1/leads`` against a real ``leadflow serve`` on loopback (SQLite).

    python -m benchmarks.intake_http --requests 2000 --clients 4

Each client is a thread with its own keep-alive connection posting JSON inquiries (a tenth of them
repeating an earlier person's e-mail, so deduplication is exercised); the server is one uvicorn process.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import httpx

from benchmarks.data import FIRST_NAMES, LAST_NAMES, out_dir
from benchmarks.import_csv import NOW, ROOT, fresh_db
from engine.api import Engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    url = fresh_db(out_dir() / "intake-http.db")
    admin = Engine.open(url, user="admin")
    token = admin.add_token("website", process="photovoltaics")["token"]
    admin.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LEADFLOW_NOW": NOW.isoformat(), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "--db", url, "serve", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        statuses: dict[int, int] = {}
        lock = threading.Lock()

        def client(start: int) -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                for i in range(start, args.requests, args.clients):
                    person = i if i % 10 else i // 2
                    answer = http.post("/v1/leads", json={
                        "name": f"{FIRST_NAMES[person % len(FIRST_NAMES)]} {LAST_NAMES[person % len(LAST_NAMES)]}",
                        "email": f"osoba.{person}@przyklad.pl", "phone": f"+48 600 {person:06d}",
                        "value": "12 500,00", "roof_type": "flat", "fields": {"roof_area_m2": 40}})
                    with lock:
                        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"POST /v1/leads: {args.requests:,} requests from {args.clients} clients in {seconds:.1f} s = "
          f"{args.requests / seconds:,.0f} requests/s; statuses {statuses}")


if __name__ == "__main__":
    main()
