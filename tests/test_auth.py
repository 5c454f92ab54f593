"""People log in: passwords, login and its rate limits, sessions, personal and integration tokens, deactivation.

Every refusal is checked to leave the database as it was, except a wrong password, whose whole point is to
count (and only the counters change then).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import clock, passwords, ratelimit
from engine.api import Engine
from engine.errors import (
    AuthenticationError,
    InvalidInputError,
    LeadflowError,
    PasswordChangeRequired,
    PermissionDenied,
    RateLimited,
    RuleViolation,
)
from engine.services import auth
from tests.conftest import TEST_NOW, Team, at_once, snapshot

T0 = dt.datetime.fromisoformat(TEST_NOW)
GOOD = "correct horse battery"
ADDRESS = "192.0.2.7"


@pytest.fixture(autouse=True)
def _cheap_hashes() -> Iterator[None]:
    """Argon2id at its smallest cost: the rules are the same, the suite stays fast."""
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    yield
    passwords.configure()


def at(minutes: float) -> AbstractContextManager[None]:
    return clock.frozen(T0 + dt.timedelta(minutes=minutes))


def with_password(team: Team, name: str = "anna", password: str = GOOD) -> None:
    """``name`` logs in with ``password`` from now on (set by themselves, so no change is due)."""
    team.as_(name).auth.set_password(name, password)


def without(tables: dict[str, list[tuple[object, ...]]], *names: str) -> dict[str, list[tuple[object, ...]]]:
    return {k: v for k, v in tables.items() if k not in names}


# -- passwords ------------------------------------------------------------------------------------------------------
def test_an_admins_password_must_be_changed_before_the_first_login(team: Team) -> None:
    team.admin.auth.set_password("anna", "given by the admin")
    user = team.as_("anna").users.whoami()
    assert (user["password_set"], user["must_change_password"]) == (True, True)
    with pytest.raises(PasswordChangeRequired, match="must change their password before logging in"):
        team.admin.auth.login("anna", "given by the admin", address=ADDRESS)
    with pytest.raises(InvalidInputError, match="must differ from the old one"):
        team.admin.auth.change_password("anna", "given by the admin", "given by the admin", address=ADDRESS)
    changed = team.admin.auth.change_password("anna", "given by the admin", GOOD, address=ADDRESS)
    assert changed["must_change_password"] is False
    session = team.admin.auth.login("anna", GOOD, address=ADDRESS, user_agent="pytest")
    assert session["token"].startswith("lfs_") and session["user"]["name"] == "anna"
    assert team.admin.auth.session(session["token"])["user"]["name"] == "anna"


def test_a_one_time_password_is_printed_once_and_must_be_changed(team: Team) -> None:
    made = team.admin.auth.one_time_password("piotr")
    assert len(made["password"]) >= passwords.MIN_LENGTH and made["user"]["must_change_password"]
    with pytest.raises(PasswordChangeRequired):
        team.admin.auth.login("piotr", made["password"], address=ADDRESS)
    team.admin.auth.change_password("piotr", made["password"], GOOD, address=ADDRESS)
    assert team.admin.auth.login("piotr", GOOD, address=ADDRESS)["user"]["name"] == "piotr"
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("anna").auth.one_time_password("piotr")


def test_add_user_with_a_password(team: Team) -> None:
    user = team.admin.users.add("ewa", "salesperson", "north", password="a long enough one")
    assert (user["password_set"], user["must_change_password"], user["active"]) == (True, True, True)
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match="too short"):
        team.admin.users.add("jan", "salesperson", "north", password="short")
    assert snapshot(team.url) == before


@pytest.mark.parametrize(("password", "message"), [
    ("x" * (passwords.MIN_LENGTH - 1), "too short: 9 characters, at least 10"),
    ("x" * (passwords.MAX_LENGTH + 1), "too long: 257 characters, at most 256"),
    ("  AnnaAnna  ", "must not be the user's name"),
    (" " * 12, "must not be blank"),
])
def test_the_password_policy(team: Team, password: str, message: str) -> None:
    team.admin.users.add("annaanna", "salesperson", "north")
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match=message):
        team.admin.auth.set_password("annaanna", password)
    assert snapshot(team.url) == before


def test_a_user_changes_their_own_password_with_the_old_one_and_nobody_elses(team: Team) -> None:
    anna = team.as_("anna")
    anna.auth.set_password("anna", GOOD)  # no password yet: no old one to give
    before = snapshot(team.url)
    with pytest.raises(AuthenticationError, match="old password of user 'anna' is wrong"):
        anna.auth.set_password("anna", "another good password")
    with pytest.raises(AuthenticationError, match="old password of user 'anna' is wrong"):
        anna.auth.set_password("anna", "another good password", old_password="not it at all")
    with pytest.raises(PermissionDenied, match="only an admin may"):
        anna.auth.set_password("piotr", "another good password")
    team.admin.tokens.add("website")
    with pytest.raises(RuleViolation, match="never logs in"):
        team.admin.auth.set_password("website", "another good password")
    assert without(snapshot(team.url), "api_tokens", "users") == without(before, "api_tokens", "users")
    assert anna.auth.set_password("anna", "another good password", old_password=GOOD)["must_change_password"] is False


def test_a_changed_password_ends_the_users_sessions(team: Team) -> None:
    with_password(team)
    token = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    team.as_("anna").auth.set_password("anna", "a brand new password", old_password=GOOD)
    with pytest.raises(AuthenticationError, match="not valid"):
        team.admin.auth.session(token)


def test_login_rehashes_a_password_made_with_other_parameters(team: Team) -> None:
    with_password(team)
    from sqlalchemy import create_engine, select

    from engine.store import users

    def stored() -> str:
        db = create_engine(team.url)
        with db.connect() as conn:
            value = conn.execute(select(users.c.password_hash).where(users.c.name == "anna")).scalar_one()
        db.dispose()
        return str(value)

    old = stored()
    passwords.configure(time_cost=2, memory_cost=16, parallelism=1)
    team.admin.auth.login("anna", GOOD, address=ADDRESS)
    new = stored()
    assert new != old and "m=16,t=2,p=1" in new and not passwords.needs_rehash(new)
    team.admin.auth.login("anna", GOOD, address=ADDRESS)
    assert stored() == new  # rehashed once


# -- logging in ---------------------------------------------------------------------------------------------------
def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(team: Team) -> None:
    with_password(team)
    answers = []
    for name, password in (("anna", "not the password"), ("nobody", GOOD), ("piotr", GOOD), ("", GOOD)):
        with pytest.raises(AuthenticationError) as refused:
            team.admin.auth.login(name, password, address=ADDRESS)
        answers.append(str(refused.value))
    assert answers == [auth.WRONG] * 4  # piotr has no password: the same answer


_TICKS = itertools.count()


def test_an_unknown_user_costs_one_hash_check_like_a_known_one(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    with_password(team)
    checked: list[str] = []
    hasher = passwords.hasher()
    real = type(hasher).verify
    monkeypatch.setattr(type(hasher), "verify", lambda self, stored, given: checked.append(stored) or real(
        self, stored, given))
    for name in ("anna", "nobody", "piotr"):  # a wrong password, an unknown user, a user without a password
        with pytest.raises(AuthenticationError):
            team.admin.auth.login(name, "not the password", address=ADDRESS)
    assert len(checked) == 3 and all(h.startswith("$argon2id$") for h in checked)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wrong=st.text(max_size=40).filter(lambda p: passwords.normalised(p) != GOOD))
def test_any_wrong_password_is_refused(team: Team, wrong: str) -> None:
    team.admin.auth.set_password("radu", GOOD)
    with at(16 * next(_TICKS)), pytest.raises(AuthenticationError, match=auth.WRONG):
        team.admin.auth.login("radu", wrong, address=ADDRESS)


def test_failed_logins_are_limited_per_user(team: Team) -> None:
    with_password(team)
    for minute in range(auth.LOGIN_FAILURES_PER_USER):
        with at(minute), pytest.raises(AuthenticationError):
            team.admin.auth.login("anna", "a wrong guess", address=f"198.51.100.{minute}")
    before = snapshot(team.url)
    with at(10), pytest.raises(RateLimited, match="try again in 300 seconds") as limited:
        team.admin.auth.login("anna", GOOD, address="203.0.113.1")  # even the right password, from elsewhere
    assert limited.value.retry_after == 300
    assert snapshot(team.url) == before  # a refusal for too many failures counts nothing more
    with at(15):  # the window of the first failure has passed
        assert team.admin.auth.login("anna", GOOD, address="203.0.113.1")["user"]["name"] == "anna"
    with at(16), pytest.raises(AuthenticationError, match=auth.WRONG):  # success cleared the user's count
        team.admin.auth.login("anna", "a wrong guess", address="203.0.113.1")


def test_failed_logins_are_limited_per_address(team: Team) -> None:
    with_password(team)
    for i in range(auth.LOGIN_FAILURES_PER_ADDRESS):
        with pytest.raises(AuthenticationError):
            team.admin.auth.login(f"guess{i}", "a wrong guess", address=ADDRESS)
    with pytest.raises(RateLimited) as limited:
        team.admin.auth.login("anna", GOOD, address=ADDRESS)
    assert limited.value.retry_after == 15 * 60
    assert team.admin.auth.login("anna", GOOD, address="203.0.113.1")["user"]["name"] == "anna"


def test_concurrent_guesses_never_check_more_passwords_than_the_limit(team: Team) -> None:
    with_password(team)

    def guess(eng: Engine, i: int) -> str:
        try:
            eng.auth.login("anna", f"wrong guess {i}", address=f"198.51.100.{i}")
        except LeadflowError as exc:
            return type(exc).__name__
        return "logged in"

    answers = at_once(team.url, "root", guess, 8)
    assert sorted(answers) == ["AuthenticationError"] * auth.LOGIN_FAILURES_PER_USER + ["RateLimited"] * 3


def test_logins_are_logged_without_passwords_or_tokens(team: Team, caplog: pytest.LogCaptureFixture) -> None:
    with_password(team)
    caplog.set_level(logging.DEBUG, logger="engine")
    with pytest.raises(AuthenticationError):
        team.admin.auth.login("anna", "the wrong secret", address=ADDRESS)
    token = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    personal = team.as_("anna").tokens.add_personal("laptop")["token"]
    team.as_("anna").tokens.request(personal)
    text = caplog.text
    assert f"login of user anna from {ADDRESS} refused" in text
    assert f"login of user anna from {ADDRESS}: session" in text
    for secret in (GOOD, "the wrong secret", token, token[4:], personal, personal[4:]):
        assert secret not in text


def test_a_login_needs_an_address_and_its_own_transaction(team: Team) -> None:
    with pytest.raises(InvalidInputError, match="client address"):
        team.admin.auth.login("anna", GOOD, address="")
    with team.admin.transaction(), pytest.raises(RuntimeError, match="transaction of its own"):
        team.admin.auth.login("anna", GOOD, address=ADDRESS)


# -- the counters -------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=60),
       limit=st.integers(min_value=1, max_value=6))
def test_a_counter_never_lets_more_than_its_limit_through_a_window(team: Team, steps: list[int], limit: int) -> None:
    import sqlalchemy as sa

    window = dt.timedelta(minutes=5)
    key = f"test:{limit}:{len(steps)}:{sum(steps)}"
    db = sa.create_engine(team.url)
    now, start, passed = T0, None, 0
    try:
        for seconds in steps:
            now += dt.timedelta(seconds=seconds)
            with db.begin() as conn:
                wait = ratelimit.hit(conn, key, limit=limit, window=window, now=now)
            if start is None or now - start >= window:
                start, passed = now, 0
            if passed < limit:  # the model: a fixed window from its first attempt
                assert wait is None
                passed += 1
            else:
                assert wait == max(1, int((start + window - now).total_seconds()))
        with db.begin() as conn:
            ratelimit.clear(conn, key)
    finally:
        db.dispose()


# -- sessions -----------------------------------------------------------------------------------------------------
def test_a_session_ends_after_inactivity_and_after_its_lifetime(team: Team) -> None:
    with_password(team)
    idle = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    with at(119):
        assert team.admin.auth.session(idle)["session"]["last_seen_at"] == (T0 + dt.timedelta(minutes=119)).isoformat()
    before = snapshot(team.url)
    with at(119 + 120), pytest.raises(AuthenticationError, match="after 2 hours without a request"):
        team.admin.auth.session(idle)
    assert snapshot(team.url) == before
    busy = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    for hour in range(1, 12):
        with at(hour * 60):
            team.admin.auth.session(busy)
    with at(12 * 60), pytest.raises(AuthenticationError, match="12 hours after its login"):
        team.admin.auth.session(busy)


def test_last_seen_is_written_at_most_once_a_minute(team: Team) -> None:
    with_password(team)
    token = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    before = snapshot(team.url)
    with at(0.5):
        team.admin.auth.session(token)
    assert snapshot(team.url) == before
    with at(1):
        assert team.admin.auth.session(token)["session"]["last_seen_at"] == (T0 + dt.timedelta(minutes=1)).isoformat()


def test_logout_and_revoking_every_session(team: Team) -> None:
    with_password(team)
    first, second, third = (team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"] for _ in range(3))
    ended = team.admin.auth.logout(first)
    assert ended["revoked_by"] == "anna" and ended["user"] == "anna"
    for token in (first, "lfs_forged", None):
        with pytest.raises(AuthenticationError):
            team.admin.auth.session(token)
    assert len(team.as_("anna").auth.list_sessions("anna")) == 2
    before = snapshot(team.url)
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("piotr").auth.revoke_sessions("anna")
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("piotr").auth.list_sessions("anna")
    assert snapshot(team.url) == before
    assert team.as_("anna").auth.revoke_sessions("anna") == {"user": "anna", "revoked": 2}
    for token in (second, third):
        with pytest.raises(AuthenticationError, match="not valid"):
            team.admin.auth.session(token)
    team.admin.auth.login("anna", GOOD, address=ADDRESS)
    assert team.admin.auth.revoke_sessions("anna")["revoked"] == 1


def test_sweep_deletes_ended_sessions_and_finished_counters(team: Team) -> None:
    with_password(team)
    ended = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    team.admin.auth.logout(ended)
    with pytest.raises(AuthenticationError):
        team.admin.auth.login("anna", "a wrong guess", address=ADDRESS)
    with at(60 * 24):
        live = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("anna").auth.sweep()
    with clock.frozen(T0 + dt.timedelta(days=31)):
        assert team.admin.auth.sweep() == {"sessions": 1, "counters": 1}
    with at(60 * 24 + 1):
        assert team.admin.auth.session(live)["user"]["name"] == "anna"


def test_run_due_sweeps_an_ended_session_and_keeps_a_live_one(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """``leadflow run-due`` on its timer is the sweep's timer too (docs/automation.md)."""
    from tests.smtp import free_port
    from tests.test_outbox import smtp_env

    smtp_env(monkeypatch, free_port())  # no mail is due: nothing connects to it
    with_password(team)
    ended = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]  # expires 12 hours after T0
    with pytest.raises(AuthenticationError):
        team.admin.auth.login("anna", "a wrong guess", address=ADDRESS)
    with at(60 * 24 * 31):
        live = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    with clock.frozen(T0 + dt.timedelta(days=31, minutes=30)):
        assert team.admin.outbox.run_due()["swept"] == {"sessions": 1, "counters": 1}
        assert team.admin.outbox.run_due()["swept"] == {"sessions": 0, "counters": 0}
        assert team.admin.auth.session(live)["user"]["name"] == "anna"
        with pytest.raises(AuthenticationError, match="not valid"):
            team.admin.auth.session(ended)


# -- tokens -------------------------------------------------------------------------------------------------------
def test_personal_tokens_act_as_their_owner_until_they_expire(team: Team) -> None:
    anna = team.as_("anna")
    made = anna.tokens.add_personal("laptop")
    assert made["token"].startswith("lfp_") and made["hint"] == made["token"][:8] + "..."
    assert (made["kind"], made["source"], made["name"], made["rate_limit"]) == ("personal", "anna", "laptop", 600)
    assert made["expires_at"] == (T0 + dt.timedelta(days=90)).isoformat()
    assert anna.tokens.authenticate(made["token"], read=True)["source"] == "anna"
    short = anna.tokens.add_personal("script", expires_days=1)
    with clock.frozen(T0 + dt.timedelta(days=1)), pytest.raises(AuthenticationError, match="expired on"):
        anna.tokens.authenticate(short["token"])
    before = snapshot(team.url)
    for days, message in ((366, "from 1 to 365"), (0, "from 1 to 365"), (True, "whole number")):
        with pytest.raises(InvalidInputError, match=message):
            anna.tokens.add_personal("long", expires_days=days)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="needs a name"):
        anna.tokens.add_personal(" ")
    with pytest.raises(PermissionDenied, match="only an admin may"):
        anna.tokens.add_personal("for piotr", owner="piotr")
    assert snapshot(team.url) == before
    assert team.admin.tokens.add_personal("for piotr", owner="piotr")["source"] == "piotr"


def test_who_lists_and_revokes_which_tokens(team: Team) -> None:
    anna, piotr = team.as_("anna"), team.as_("piotr")
    mine = anna.tokens.add_personal("laptop")
    theirs = piotr.tokens.add_personal("phone")
    form = team.admin.tokens.add("website", expires_days=30)
    assert form["expires_at"] == (T0 + dt.timedelta(days=30)).isoformat() and form["kind"] == "integration"
    assert [t["name"] for t in anna.tokens.list(mine=True)] == ["laptop"]
    assert [t["id"] for t in team.admin.tokens.list()] == [mine["id"], theirs["id"], form["id"]]
    assert [t["name"] for t in team.admin.tokens.list(owner="piotr")] == ["phone"]
    before = snapshot(team.url)
    with pytest.raises(PermissionDenied, match="only an admin may"):
        anna.tokens.list()
    with pytest.raises(PermissionDenied, match="only an admin may"):
        anna.tokens.list(owner="piotr")
    with pytest.raises(PermissionDenied, match="only an admin may"):
        anna.tokens.revoke(theirs["id"])
    with pytest.raises(PermissionDenied, match="only an admin may"):
        anna.tokens.revoke(form["id"])
    assert snapshot(team.url) == before
    assert anna.tokens.revoke(mine["id"])["revoked_by"] == "anna"
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        anna.tokens.authenticate(mine["token"])
    assert team.admin.tokens.revoke(theirs["id"])["revoked_by"] == "root"
    with pytest.raises(RuleViolation, match="already revoked"):
        piotr.tokens.revoke(theirs["id"])


def test_a_source_gets_no_personal_token_and_an_integration_token_may_expire(team: Team) -> None:
    form = team.admin.tokens.add("website", expires_days=2)
    with pytest.raises(RuleViolation, match="source of the HTTP intake"):
        team.admin.tokens.add_personal("x", owner="website")
    with clock.frozen(T0 + dt.timedelta(days=2)), pytest.raises(AuthenticationError, match="expired on"):
        team.admin.tokens.authenticate(form["token"])
    with pytest.raises(InvalidInputError, match="from 1 to 3650"):
        team.admin.tokens.add("website", expires_days=5000)


def test_every_token_has_a_request_rate_limit(team: Team) -> None:
    anna = team.as_("anna")
    made = anna.tokens.add_personal("script", rate_limit=3)
    for _ in range(3):
        assert anna.tokens.request(made["token"])["source"] == "anna"
    before = snapshot(team.url)
    with clock.frozen(T0 + dt.timedelta(seconds=20)), pytest.raises(RateLimited, match="its 3 requests a minute") as r:
        anna.tokens.request(made["token"])
    assert r.value.retry_after == 40 and snapshot(team.url) == before
    with clock.frozen(T0 + dt.timedelta(minutes=1)):
        anna.tokens.request(made["token"])
    assert anna.tokens.list(mine=True)[0]["last_used_at"] == (T0 + dt.timedelta(minutes=1)).isoformat()
    form = team.admin.tokens.add("website", rate_limit=1)
    team.admin.tokens.request(form["token"])
    with pytest.raises(RateLimited):
        team.admin.tokens.request(form["token"])
    with pytest.raises(InvalidInputError, match="rate limit"):
        team.admin.tokens.add("website", rate_limit=0)


def test_a_busy_tokens_requests_are_counted_in_blocks_and_its_limit_holds_across_processes(team: Team) -> None:
    """A limit of 300 a minute is counted 3 requests at a time (ratelimit.Leases); two engines on one database (two
    server processes) never let more than 300 through between them, and a refusal still changes nothing."""
    import sqlalchemy as sa

    def counted() -> int:
        with team.admin.db.connect() as conn:
            return int(conn.execute(sa.text("SELECT count FROM rate_limits WHERE key = :key"),
                                    {"key": f"token:{form['id']}"}).scalar_one())

    form = team.admin.tokens.add("website", rate_limit=300)
    engines = [Engine.open(team.url, user="admin"), Engine.open(team.url, user="admin")]
    try:
        with at(0.5):
            engines[0].tokens.request(form["token"])
            assert counted() == 3
            engines[0].tokens.request(form["token"])
            engines[0].tokens.request(form["token"])
            assert counted() == 3  # from the block, without writing
            engines[0].tokens.request(form["token"])
            assert counted() == 6
            let_through, refused = 4, 0
            for i in range(400):
                try:
                    engines[i % 2].tokens.request(form["token"])
                    let_through += 1
                except RateLimited as exc:
                    refused += 1
                    assert exc.retry_after == 60  # the window began with the first request
            assert 300 - 2 * 2 <= let_through <= 300 and counted() == 300 and refused == 404 - let_through
            before = snapshot(team.url)
            with pytest.raises(RateLimited):
                engines[1].tokens.request(form["token"])
            assert snapshot(team.url) == before
        with at(1.5):  # a new window: the blocks held from the last one are gone
            engines[1].tokens.request(form["token"])
            assert counted() == 3
    finally:
        for engine in engines:
            engine.close()


# -- users: role, team, deactivation -------------------------------------------------------------------------------
def test_a_deactivated_user_is_locked_out_at_once_and_their_leads_wait(team: Team) -> None:
    with_password(team)
    anna = team.as_("anna")
    lead = anna.leads.add(process="photovoltaics", name="Zofia Kamińska")
    session = team.admin.auth.login("anna", GOOD, address=ADDRESS)["token"]
    personal = anna.tokens.add_personal("laptop")["token"]
    result = team.admin.users.set("anna", active=False)
    assert (result["active"], result["open_leads"], result["deactivated_at"]) == (False, 1, TEST_NOW)
    with pytest.raises(AuthenticationError, match="not valid"):
        team.admin.auth.session(session)
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        team.admin.tokens.authenticate(personal)
    with pytest.raises(PermissionDenied, match="'anna' is deactivated"):
        anna.leads.list()
    with pytest.raises(AuthenticationError, match="'anna' is deactivated"):
        team.admin.auth.login("anna", GOOD, address=ADDRESS)
    assert team.as_("marta").leads.get(lead["id"])["owner"] == "anna"  # the lead stays, for reassignment
    with pytest.raises(PermissionDenied, match="deactivated and cannot own leads"):
        team.as_("marta").leads.assign(lead["id"], "anna")
    assert team.as_("marta").leads.assign(lead["id"], "piotr")["owner"] == "piotr"
    back = team.admin.users.set("anna", active=True)
    assert (back["active"], back["deactivated_at"]) == (True, None)
    assert team.admin.auth.login("anna", GOOD, address=ADDRESS)["user"]["name"] == "anna"
    with pytest.raises(AuthenticationError, match="unknown or revoked"):  # revoked, not suspended
        team.admin.tokens.authenticate(personal)


def test_role_and_team_changes_and_their_guards(team: Team) -> None:
    anna = team.as_("anna")
    anna.leads.add(process="photovoltaics", name="Zofia Kamińska")
    assert team.admin.users.set("piotr", team="south")["team"] == "south"
    assert team.admin.users.set("piotr", clear_team=True)["team"] is None
    assert team.admin.users.set("marta", role="admin")["role"] == "admin"
    before = snapshot(team.url)
    with pytest.raises(RuleViolation, match="owns 1 open leads, which a analyst cannot own"):
        team.admin.users.set("anna", role="analyst")
    with pytest.raises(InvalidInputError, match="neither a user role"):
        team.admin.users.set("piotr", role="wizard")
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("radu").users.set("piotr", active=False)
    team.admin.tokens.add("website")
    mid = snapshot(team.url)
    with pytest.raises(RuleViolation, match="its role and team are fixed"):
        team.admin.users.set("website", role="salesperson")
    assert snapshot(team.url) == mid
    assert without(mid, "users", "api_tokens") == without(before, "users", "api_tokens")
    team.admin.users.set("marta", active=False)
    with pytest.raises(RuleViolation, match="last active admin"):
        team.admin.users.set("root", role="manager")
    with pytest.raises(RuleViolation, match="last active admin"):
        team.admin.users.set("root", active=False)


def test_assignment_skips_deactivated_salespeople(team: Team, processes_dir: Path, tmp_path: Path) -> None:
    from tests.test_assignment import add, with_rules

    team.admin.processes.load(with_rules(processes_dir, tmp_path))
    marta = team.as_("marta")
    team.admin.users.set("anna", active=False)
    assert [add(marta, "pomorskie")["owner"] for _ in range(2)] == ["piotr", "piotr"]
    team.admin.users.set("anna", active=True)
    assert add(marta, "pomorskie")["owner"] == "anna"
