"""The bulk API (``Engine.complete_tasks_many``, ``advance_many``, ``win_many``), on SQLite and PostgreSQL.

A batch must check every lead by exactly the rules of the one-lead calls, refuse each lead with the reason
the one-lead call gives, write nothing when it aborts, and leave the database exactly as the same leads
advanced one by one would (states, event logs, tasks, the funnel's projection, the board's counts, the
outbox).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from engine import store
from engine.errors import (
    BatchRefused,
    ConcurrentUpdateError,
    InvalidInputError,
    LeadflowError,
    PermissionDenied,
)
from engine.state import Event, apply
from tests.conftest import Team, snapshot
from tests.test_engine_rules import finish_stage, saas_lead_at_run_trial

PV = "photovoltaics"
FIELDS = [{"roof_type": "flat", "roof_area_m2": "40", "financing": "cash"},
          {"roof_type": "pitched", "roof_area_m2": "55,5", "financing": "leasing"},
          {"roof_type": "flat", "roof_area_m2": "32", "financing": "loan", "wants_insurance": "tak"}]
NAMES = ["Łukasz Żółć", "Ștefan Dumitrescu", "Анна Кузнецова", "[bold]Zoë[/bold] O'Brien"]
INSTANTS = ["2026-03-02T09:00:00", "2026-03-02T11:30:00", "2026-03-03T10:00:00", "2026-03-05T16:45:00",
            "2026-03-09T08:15:00", "2026-03-12T13:00:00", "2026-03-16T09:00:00", "2026-03-18T17:30:00"]


def pv_leads(team: Team, n: int, owner: str = "anna") -> list[int]:
    return [team.as_(owner).add_lead(process=PV, name=NAMES[i % len(NAMES)], fields=FIELDS[i % len(FIELDS)])["id"]
            for i in range(n)]


def outcome(team: Team, call: Callable[[], Any]) -> tuple[str, str] | None:
    """The error class and message of a one-lead call, or None when it succeeds."""
    try:
        call()
    except LeadflowError as exc:
        return type(exc).__name__, str(exc)
    return None


# -- a batch equals the same leads advanced one by one ----------------------------------------------

def walk(team: Team, ids: list[int], bulk: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every lead from its first stage to won, the clock moving on between the steps."""
    clock = iter(INSTANTS[1:])

    def tick() -> None:
        monkeypatch.setenv("LEADFLOW_NOW", next(clock))

    def complete(who: str, leads: list[int], task: str) -> None:
        if bulk:
            assert team.as_(who).complete_tasks_many(leads, task, note="zrobione ✓") == {
                "action": "complete_task", "done": leads, "refused": []}
        else:
            for lead_id in leads:
                team.as_(who).complete_task(lead_id, task, note="zrobione ✓")

    def move(leads: list[int], win: bool = False) -> None:
        anna = team.as_("anna")
        if bulk:
            done = anna.win_many(leads) if win else anna.advance_many(leads)
            assert done["done"] == leads and done["refused"] == []
        else:
            for lead_id in leads:
                anna.win(lead_id) if win else anna.advance(lead_id)

    tick()
    complete("anna", ids, "record_contact")
    move(ids)
    tick()
    complete("anna", ids, "call_client")
    complete("anna", ids, "book_meeting")
    move(ids)
    tick()
    for task in ("meeting_notes", "consumption", "roof_photos", "bant", "next_contact"):
        complete("anna", ids, task)
    move(ids)
    tick()
    for lead_id in ids:
        team.as_("anna").set_fields(lead_id, {"offer_value": "30 000"})
    complete("tomasz", ids, "technical_check")
    complete("olga", ids, "pricing")
    complete("olga", ids[1::3], "leasing_offer")  # mandatory only where the financing is leasing
    tick()
    complete("anna", ids, "send_offer")
    complete("anna", ids, "draft_contract")
    move(ids)
    tick()
    complete("anna", ids, "closing_call")
    complete("anna", ids, "signed_contract")
    tick()
    move(ids, win=True)


def lead_record(team: Team, lead_id: int) -> dict[str, Any]:
    """Everything stored about a lead, without its own id and its client's."""
    state = team.admin.stored_lead(lead_id)
    assert team.admin.rebuild_lead(lead_id).comparable() == state.comparable()
    stored = {k: v for k, v in state.comparable().items() if k not in ("id", "client_id")}
    history = []
    for ev in team.admin.history(lead_id):
        data = dict(ev["data"])
        if "actions" in data:  # each mail has an outbox key of its own
            data["actions"] = [{k: v for k, v in a.items() if k != "outbox"} for a in data["actions"]]
        if "client_id" in data:
            data.pop("client_id")
        history.append((ev["kind"], ev["at"], ev["actor"], data))
    db = sa.create_engine(team.url)
    try:
        with db.connect() as conn:
            mails = [tuple(r) for r in conn.execute(
                sa.select(store.outbox.c.kind, store.outbox.c.template, store.outbox.c.recipient,
                          store.outbox.c.stage, store.outbox.c.entered_at, store.outbox.c.due_at,
                          store.outbox.c.state).where(store.outbox.c.lead_id == lead_id).order_by(store.outbox.c.id))]
            stages = [tuple(r)[1:] for r in conn.execute(
                sa.select(store.lead_stages).where(store.lead_stages.c.lead_id == lead_id)
                .order_by(store.lead_stages.c.stage))]
            tasks = [tuple(r)[1:] for r in conn.execute(
                sa.select(store.lead_tasks).where(store.lead_tasks.c.lead_id == lead_id)
                .order_by(store.lead_tasks.c.stage, store.lead_tasks.c.task_id))]
    finally:
        db.dispose()
    return {"state": stored, "history": history, "mails": mails, "stages": stages, "tasks": tasks}


def stage_counts_and_recount(url: str) -> tuple[list[Any], list[Any]]:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            c = store.stage_counts.c
            kept = sorted(tuple(r) for r in conn.execute(sa.select(c.process, c.stage, c.team, c.owner, c.leads,
                                                                     c.value_minor).where(c.leads != 0)))
            l_ = store.leads.c
            team, owner = sa.func.coalesce(l_.team, ""), sa.func.coalesce(l_.owner, "")
            counted = sorted(tuple(r) for r in conn.execute(
                sa.select(l_.process, l_.stage, team, owner, sa.func.count(),
                          sa.func.coalesce(sa.func.sum(l_.value_minor), 0))
                .where(l_.status == "open").group_by(l_.process, l_.stage, team, owner)))
            return kept, counted
    finally:
        db.dispose()


def test_a_batch_writes_exactly_what_the_same_leads_advanced_one_by_one_write(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    one_by_one = pv_leads(team, 6)
    batch = pv_leads(team, 6)
    walk(team, one_by_one, False, monkeypatch)
    walk(team, batch, True, monkeypatch)
    for single, bulk in zip(one_by_one, batch, strict=True):
        expected, got = lead_record(team, single), lead_record(team, bulk)
        assert got == expected
        assert got["state"]["status"] == "won"
    assert len(lead_record(team, batch[0])["mails"]) == 5  # the stage actions ran: welcome, reminder, 3 at the offer
    kept, counted = stage_counts_and_recount(team.url)
    assert kept == counted


def test_a_batch_in_the_middle_of_a_stage_leaves_the_others_as_they_were(team: Team) -> None:
    ids = pv_leads(team, 3)
    other = pv_leads(team, 1)[0]
    before = lead_record(team, other)
    anna = team.as_("anna")
    assert anna.complete_tasks_many(ids, "record_contact")["done"] == ids
    assert anna.advance_many(ids[:2])["done"] == ids[:2]
    assert [anna.get_lead(i)["stage"] for i in ids] == ["first_contact", "first_contact", "register_lead"]
    assert lead_record(team, other) == before
    assert anna.advance_many([]) == {"action": "advance", "done": [], "refused": []}


# -- refusals --------------------------------------------------------------------------------------



def test_advance_many_refuses_each_lead_with_the_reason_advance_gives(team: Team) -> None:
    anna = team.as_("anna")
    ok, open_task, closed, theirs, no_fields, last = (
        pv_leads(team, 3) + pv_leads(team, 1, owner="ioana") + pv_leads(team, 2))
    for lead_id in (ok, closed):
        anna.complete_task(lead_id, "record_contact")
    anna.close_lead(closed, "no_budget", note="za drogo")
    anna.set_fields(no_fields, {"roof_type": "", "financing": ""})
    for _ in range(2):
        finish_stage(team, no_fields)
        anna.advance(no_fields)
    finish_stage(team, no_fields)
    for stage in range(4):
        if stage == 3:
            anna.set_fields(last, {"offer_value": "1000"})
        finish_stage(team, last)
        anna.advance(last)
    assert anna.get_lead(last)["stage"] == "close_contract"
    no_branch = saas_lead_at_run_trial(team)
    unknown = 10**9
    ids = [ok, open_task, closed, theirs, no_fields, last, no_branch, unknown, 2**63]
    expected = []
    for lead_id in ids[1:]:
        refusal = outcome(team, lambda lead_id=lead_id: anna.advance(lead_id))  # type: ignore[misc]
        assert refusal is not None
        expected.append({"lead_id": lead_id, "error": refusal[0], "reason": refusal[1]})
    assert [r["error"] for r in expected] == ["RuleViolation", "RuleViolation", "PermissionDenied", "RuleViolation",
                                             "RuleViolation", "RuleViolation", "NotFoundError", "NotFoundError"]
    assert expected[0]["reason"] == f"can't leave stage 'register_lead' of lead {open_task}: mandatory tasks open: " \
                                    "record_contact"
    assert "required fields not set: roof_type, financing" in expected[3]["reason"]
    assert "no allowed next stage applies to this lead's fields" in expected[5]["reason"]

    before = snapshot(team.url)
    with pytest.raises(BatchRefused) as err:
        anna.advance_many(ids)
    assert err.value.refused == expected
    assert str(err.value).startswith(f"can't advance 8 of 9 leads, so none was written: {expected[0]['reason']}; ")
    assert str(err.value).endswith("; and 3 more")
    assert snapshot(team.url) == before

    done = anna.advance_many(ids, on_refusal="skip")
    assert done == {"action": "advance", "done": [ok], "refused": expected}
    assert anna.get_lead(ok)["stage"] == "first_contact"
    assert anna.get_lead(closed)["status"] == "lost"


def test_advance_many_to_a_stage_applies_advances_rules_for_to(team: Team) -> None:
    anna = team.as_("anna")
    ids = pv_leads(team, 2)
    anna.complete_tasks_many(ids, "record_contact")
    before = snapshot(team.url)
    with pytest.raises(BatchRefused, match="does not exist in process photovoltaics"):
        anna.advance_many(ids, to="nowhere")
    with pytest.raises(BatchRefused, match="the process allows only first_contact"):
        anna.advance_many(ids, to="send_offer")
    assert snapshot(team.url) == before
    assert anna.advance_many(ids, to="first_contact")["done"] == ids


def test_complete_tasks_many_refuses_each_lead_with_the_reason_complete_task_gives(team: Team) -> None:
    anna, olga = team.as_("anna"), team.as_("olga")
    fresh, done_already, cash, leasing, theirs = pv_leads(team, 5)
    anna.complete_task(done_already, "record_contact")
    for lead_id in (cash, leasing):  # to the offer: leasing_offer applies only to the leasing lead
        anna.set_fields(lead_id, {"financing": "cash" if lead_id == cash else "leasing"})
        for _ in range(3):
            finish_stage(team, lead_id)
            anna.advance(lead_id)
    team.admin.assign(theirs, "piotr")
    cases = [(anna, [fresh, done_already, theirs], "record_contact", ["RuleViolation", "PermissionDenied"]),
             (olga, [leasing, cash, fresh], "leasing_offer", ["RuleViolation", "NotFoundError"]),
             (anna, [leasing], "pricing", ["PermissionDenied"])]
    for who, ids, task, errors in cases:
        expected = []
        for lead_id in ids:
            refusal = outcome(team, lambda lead_id=lead_id, who=who, task=task: _would_complete(who, lead_id, task))
            if refusal is not None:
                expected.append({"lead_id": lead_id, "error": refusal[0], "reason": refusal[1]})
        assert [r["error"] for r in expected] == errors
        before = snapshot(team.url)
        with pytest.raises(BatchRefused) as err:
            who.complete_tasks_many(ids, task)
        assert err.value.refused == expected
        assert snapshot(team.url) == before
    assert "does not apply to lead" in olga_refusal(olga, cash)
    assert "already done" in _refusal_of(anna, done_already, "record_contact")


def _would_complete(engine: Any, lead_id: int, task: str) -> None:
    """``complete_task`` in a transaction that is rolled back: its refusal, or nothing written."""
    class Undo(Exception):
        pass

    try:
        with engine.transaction():
            engine.complete_task(lead_id, task)
            raise Undo
    except Undo:
        pass


def _refusal_of(engine: Any, lead_id: int, task: str) -> str:
    with pytest.raises(LeadflowError) as err:
        engine.complete_task(lead_id, task)
    return str(err.value)


def olga_refusal(olga: Any, lead_id: int) -> str:
    return _refusal_of(olga, lead_id, "leasing_offer")


def test_win_many_wins_only_leads_of_the_won_stage_with_its_tasks_done(team: Team) -> None:
    anna = team.as_("anna")
    early = pv_leads(team, 1)[0]
    with pytest.raises(BatchRefused) as err:
        anna.win_many([early])
    assert err.value.refused == [{"lead_id": early, "error": "RuleViolation", "reason": (
        f"can't win lead {early} in 'register_lead': a sale is won by completing 'close_contract' "
        "(Close the contract)")}]


# -- hostile input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("ids", "message"), [
    ([1, True], "lead id must be a whole number, got True; nothing was written"),
    ([1, "2"], "lead id must be a whole number, got '2'; nothing was written"),
    ([1, 2.0], "lead id must be a whole number, got 2.0; nothing was written"),
    ([1, None], "lead id must be a whole number, got None; nothing was written"),
    ("12", "lead ids must be a list of whole numbers, got '12'"),
    (7, "lead ids must be a list of whole numbers, got 7"),
])
def test_ids_that_are_not_whole_numbers_refuse_the_whole_call(team: Team, ids: Any, message: str) -> None:
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError) as err:
        team.as_("anna").advance_many(ids)
    assert str(err.value) == message
    assert snapshot(team.url) == before


def test_a_lead_listed_twice_refuses_the_whole_call(team: Team) -> None:
    ids = pv_leads(team, 2)
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError) as err:
        team.as_("anna").complete_tasks_many([ids[0], ids[1], ids[0]], "record_contact")
    assert str(err.value) == f"lead {ids[0]} is listed twice; list each lead once (nothing was written)"
    assert snapshot(team.url) == before


def test_bad_options_and_strangers_are_refused_before_any_lead(team: Team) -> None:
    ids = pv_leads(team, 1)
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match="on_refusal 'maybe' is not one of: abort, skip"):
        team.as_("anna").advance_many(ids, on_refusal="maybe")
    with pytest.raises(InvalidInputError, match="note contains control characters"):
        team.as_("anna").complete_tasks_many(ids, "record_contact", note="\x1b[31mred")
    with pytest.raises(PermissionDenied, match="user 'stranger' is not registered"):
        team.as_("stranger").advance_many(ids)
    assert snapshot(team.url) == before


# -- optimistic locking ----------------------------------------------------------------------------

def test_a_lead_changed_since_it_was_read_makes_the_batch_write_nothing(team: Team) -> None:
    anna = team.as_("anna")
    ids = pv_leads(team, 3)
    with anna.transaction() as conn:
        read = store.read_leads(conn, ids)
    anna.complete_task(ids[1], "record_contact")  # another user's write between the read and the write
    spec = team.admin.spec(PV)
    changes = [store.LeadChange(state, apply(state.clone(), Event(kind="recalled", at=state.created_at, actor="marta",
                                                                  data={"from": "anna", "note": None}),
                                              lambda p, v: spec), [])
               for state in read.values()]
    before = snapshot(team.url)
    with pytest.raises(ConcurrentUpdateError) as err, anna.transaction() as conn:
        store.write_leads(conn, changes)
    assert str(err.value) == "1 of 3 leads changed since they were read; nothing was written, try again"
    assert snapshot(team.url) == before


@pytest.mark.postgres
def test_a_concurrent_writer_between_the_read_and_the_write_makes_the_batch_write_nothing(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    if team.url.startswith("sqlite"):
        pytest.skip("SQLite takes the write lock at BEGIN IMMEDIATE: a second writer waits, not interleaves")
    anna = team.as_("anna")
    ids = pv_leads(team, 3)
    anna.complete_tasks_many(ids, "record_contact")
    read_leads = store.read_leads

    def read_then_someone_writes(conn: Any, lead_ids: list[int]) -> Any:
        states = read_leads(conn, lead_ids)
        marta = team.as_("marta")  # a manager, on a connection of her own, commits a change to one lead
        worker = threading.Thread(target=marta.report, args=(ids[2], "Klient dzwonił"))
        worker.start()
        worker.join()
        return states

    monkeypatch.setattr(store, "read_leads", read_then_someone_writes)
    with pytest.raises(ConcurrentUpdateError, match="1 of 3 leads changed since they were read"):
        anna.advance_many(ids)
    monkeypatch.undo()
    assert [anna.get_lead(i)["stage"] for i in ids] == ["register_lead"] * 3
    assert anna.get_lead(ids[2])["last_report"] == "Klient dzwonił"


# -- closing many -------------------------------------------------------------------------------------------

def test_close_many_writes_what_closing_one_by_one_writes_and_refuses_alike(team: Team) -> None:
    bulk_ids, single_ids = pv_leads(team, 3), pv_leads(team, 3)
    anna = team.as_("anna")
    reason = "no_budget"  # a refusal that asks for the director's review
    assert team.admin.spec(PV).reason(reason).review
    assert anna.bulk.close_many(bulk_ids, reason=reason, note="za drogo") == {
        "action": "close", "done": bulk_ids, "refused": []}
    for lead_id in single_ids:
        anna.close_lead(lead_id, reason, note="za drogo")
    for one, other in zip(bulk_ids, single_ids, strict=True):
        assert lead_record(team, one) == lead_record(team, other)
    db = sa.create_engine(team.url)
    try:
        with db.connect() as conn:
            closed = sorted(r[0] for r in conn.execute(sa.select(store.closures.c.lead_id)))
            reviewed = sorted(r[0] for r in conn.execute(sa.select(store.reviews.c.lead_id)))
    finally:
        db.dispose()
    assert closed == reviewed == sorted(bulk_ids + single_ids)
    assert stage_counts_and_recount(team.url)[0] == stage_counts_and_recount(team.url)[1]
    # refusals: each as the one-lead call words it, and nothing written unless skipping
    fresh = pv_leads(team, 2)
    strangers = pv_leads(team, 1, owner="ioana")
    ids = [*fresh, bulk_ids[0], strangers[0], 99_999]
    expected = [outcome(team, lambda i=i: anna.close_lead(i, reason)) for i in ids[2:]]  # type: ignore[misc]
    before = snapshot(team.url)
    with pytest.raises(BatchRefused) as refused:
        anna.bulk.close_many(ids, reason=reason)
    assert [(r["lead_id"], r["error"], r["reason"]) for r in refused.value.refused] == [
        (i, *e) for i, e in zip(ids[2:], expected, strict=True) if e is not None]
    assert snapshot(team.url) == before
    with pytest.raises(BatchRefused, match="is not a closure reason"):
        anna.bulk.close_many(fresh, reason="no_such_reason")
    assert snapshot(team.url) == before
    report = anna.bulk.close_many(ids, reason=reason, on_refusal="skip")
    assert report["done"] == fresh and [r["lead_id"] for r in report["refused"]] == ids[2:]
    assert all(anna.get_lead(i)["status"] == "lost" for i in fresh)
