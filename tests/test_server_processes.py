"""Two ``leadflow serve`` processes on loopback over one PostgreSQL database, requests alternating between them:
a login made on one is a session on the other, a token made on one works on the other, a version read on one is
checked on the other (If-Match: 409), and the login rate limit counts the failures of both."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_NOW, Team

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


@pytest.fixture
def db_url(postgres_databases: object, request: pytest.FixtureRequest) -> Iterator[str]:
    """PostgreSQL only: SQLite is one process's database (and one machine's)."""
    if postgres_databases is None:
        pytest.skip("no PostgreSQL server: set LEADFLOW_TEST_PG_URL")
    url = postgres_databases.create()  # type: ignore[attr-defined]
    yield url
    postgres_databases.drop(url)  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_servers(team: Team) -> Iterator[list[httpx.Client]]:
    team.as_("anna").auth.set_password("anna", PASSWORD)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}, "PYTHONPATH": str(ROOT),
           "LEADFLOW_NOW": TEST_NOW, "LEADFLOW_TZ": "Europe/Warsaw"}
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--db", team.url, "--port", str(port),
                               "--test-clock"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for port in ports]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for port in ports]
    try:
        deadline = time.monotonic() + 60
        for proc, client in zip(procs, clients, strict=True):
            while True:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "a server did not start"
                try:
                    client.get("/openapi.json")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield clients
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            _, err = proc.communicate(timeout=30)
            assert b"Traceback" not in err, err.decode()


def test_logins_tokens_versions_and_rate_limits_hold_across_two_processes(team: Team,
                                                                           two_servers: list[httpx.Client]) -> None:
    a, b = two_servers
    session = a.post("/v1/auth/login", json={"name": "anna", "password": PASSWORD}).json()["token"]
    assert b.get("/v1/whoami", headers={"Authorization": f"Bearer {session}"}).json()["name"] == "anna"
    made = b.post("/v1/tokens/personal", json={"name": "laptop"}, headers={"Authorization": f"Bearer {session}"})
    assert made.status_code == 201, made.text
    anna = {"Authorization": f"Bearer {made.json()['token']}"}
    assert a.get("/v1/whoami", headers=anna).json()["name"] == "anna"
    assert b.post("/v1/auth/logout", headers={"Authorization": f"Bearer {session}"}).status_code == 200
    assert a.get("/v1/whoami", headers={"Authorization": f"Bearer {session}"}).status_code == 401

    lead = a.post("/v1/leads", json={"process": "photovoltaics", "name": "Jan Kowalski"}, headers=anna).json()
    etag = a.get(f"/v1/leads/{lead['id']}", headers=anna).headers["etag"]
    first = b.patch(f"/v1/leads/{lead['id']}", json={"values": {"need": "b wrote"}}, headers={**anna, "If-Match": etag})
    assert first.status_code == 200, first.text
    stale = a.patch(f"/v1/leads/{lead['id']}", json={"values": {"need": "a wrote"}}, headers={**anna, "If-Match": etag})
    assert stale.status_code == 409 and stale.json()["lead"]["fields"]["need"] == "b wrote"

    for i in range(5):  # five failures, alternating: the per-user limit counts them in the database
        client = (a, b)[i % 2]
        assert client.post("/v1/auth/login", json={"name": "anna", "password": "wrong password!"}).status_code == 401
    for client in (a, b):
        refused = client.post("/v1/auth/login", json={"name": "anna", "password": PASSWORD})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
