"""Impersonation and abuse through HTTP with real credentials (the production resolver, ``by_token``): a forged or
ended session, a token of a deactivated user, an expired or revoked token, a token in the URL, and guessing a
password, which is 429 with Retry-After. Each refusal changes nothing but the counters it must keep."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from engine import passwords
from tests.conftest import Team, snapshot
from tests.server_fixtures import Served, serving

PASSWORD = "correct horse battery staple"


@pytest.fixture
def served(team: Team) -> Iterator[Served]:
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    try:
        for name in ("anna", "piotr"):
            team.as_(name).auth.set_password(name, PASSWORD)
        with serving(team.admin) as server:
            yield server
    finally:
        passwords.configure()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(served: Served, name: str, password: str = PASSWORD) -> str:
    answer = served.call(None, "POST", "/v1/auth/login", json={"name": name, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_forged_and_ended_sessions_are_401(team: Team, served: Served) -> None:
    session = login(served, "anna")
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(session)).json()["name"] == "anna"
    before = snapshot(team.url)
    for forged in (f"lfs_{secrets.token_urlsafe(32)}", session[:-2] + "xx", f"lfp_{secrets.token_urlsafe(32)}"):
        answer = served.call(None, "GET", "/v1/whoami", headers=bearer(forged))
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", answer.text
    assert snapshot(team.url) == before
    assert served.call(None, "POST", "/v1/auth/logout", headers=bearer(session)).status_code == 200
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(session)).status_code == 401


def test_tokens_of_a_deactivated_user_and_revoked_or_expired_ones_are_401(team: Team, served: Served,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    anna = team.as_("anna").tokens.add_personal(name="laptop")["token"]
    piotr = team.as_("piotr").tokens.add_personal(name="laptop", expires_days=1)
    revoked = team.as_("piotr").tokens.add_personal(name="old")
    team.as_("piotr").tokens.revoke(revoked["id"])
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(anna)).json()["name"] == "anna"
    team.admin.users.set("anna", active=False)
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(anna)).status_code == 401
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(revoked["token"])).status_code == 401
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(piotr["token"])).json()["name"] == "piotr"
    monkeypatch.setenv("LEADFLOW_NOW", "2026-03-03T09:00:01")  # the server's (test) clock: a day and a second on
    assert served.call(None, "GET", "/v1/whoami", headers=bearer(piotr["token"])).status_code == 401


def test_a_real_token_in_the_url_is_refused_and_not_echoed(served: Served, team: Team) -> None:
    token = team.as_("anna").tokens.add_personal(name="laptop")["token"]
    for key in ("token", "access_token", "api_key"):
        answer = served.call(None, "GET", "/v1/whoami", params={key: token})
        assert answer.status_code == 400 and token not in answer.text


def test_guessing_a_password_is_429_with_retry_after_even_for_the_right_one(team: Team, served: Served) -> None:
    for _ in range(5):
        answer = served.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": "wrong password!"})
        assert answer.status_code == 401, answer.text
    before = snapshot(team.url)
    for password in ("wrong password!", PASSWORD):
        answer = served.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": password})
        assert answer.status_code == 429, answer.text
        assert 0 < int(answer.headers["retry-after"]) <= 15 * 60
        assert "token" not in answer.json()
    assert snapshot(team.url) == before  # a refused attempt counts nothing more
    assert login(served, "piotr")  # another user is not locked out


def address_buckets(team: Team) -> set[str]:
    """The client addresses that failed logins were counted against."""
    import sqlalchemy as sa

    from engine.store import rate_limits

    with team.admin.transaction() as conn:
        keys = conn.execute(sa.select(rate_limits.c.key)).scalars()
        return {key.removeprefix("login:addr:") for key in keys if key.startswith("login:addr:")}


@pytest.mark.parametrize("trusted", [False, True])
def test_x_forwarded_for_chooses_the_rate_limit_bucket_only_behind_a_trusted_proxy(team: Team, trusted: bool) -> None:
    """``leadflow serve --trust-proxy`` (``create_app(trust_proxy=True)``): the address a proxy appended to
    X-Forwarded-For is the client's, for the per-address login limit; without it a forged header changes nothing."""
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    try:
        with serving(team.admin, trust_proxy=trusted) as server:
            for forged in ("203.0.113.7", "10.0.0.1, 198.51.100.9"):
                answer = server.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": "wrong!"},
                                     headers={"X-Forwarded-For": forged})
                assert answer.status_code == 401, answer.text
    finally:
        passwords.configure()
    assert address_buckets(team) == ({"203.0.113.7", "198.51.100.9"} if trusted else {"127.0.0.1"})


def test_leadflow_serve_has_the_trust_proxy_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag sets LEADFLOW_TRUST_PROXY for the app (and the worker processes); uvicorn itself never believes
    the forwarding headers (it would from 127.0.0.1 by default)."""
    from click.testing import CliRunner

    from cli.main import cli
    from cli.server import run

    served: list[dict[str, object]] = []
    monkeypatch.setattr(run, "serve", lambda **options: served.append(options))
    for argv, trusted in ((["serve"], False), (["serve", "--trust-proxy"], True)):
        result = CliRunner().invoke(cli, ["--db", "sqlite:///unused.db", *argv])
        assert result.exit_code == 0, result.output
        assert served.pop()["trust_proxy"] is trusted
    assert run.uvicorn_options("127.0.0.1", 8080)["proxy_headers"] is False
