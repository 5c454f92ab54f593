"""The leads' past (``lead_spans``, ``lead_stays``; engine/store/history.py): what the write path keeps is what the
rebuild from the event log makes, a database from before them gets them at ``init``, and a span is the lead's row
from one change to the next."""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa

from engine import clock, store
from tests.conftest import Team
from tests.test_recovery import add, at
from tests.test_reports_asof import END, instant, play


def past(url: str) -> list[list[tuple[Any, ...]]]:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            spans = [tuple(r) for r in conn.execute(sa.select(
                store.lead_spans.c.lead_id, store.lead_spans.c.started_at, store.lead_spans.c.ended_at,
                *(store.lead_spans.c[name] for name in store.SPAN_ATTRS)).order_by(
                store.lead_spans.c.lead_id, store.lead_spans.c.started_at))]
            stays = [tuple(r) for r in conn.execute(sa.select(
                store.lead_stays.c.lead_id, store.lead_stays.c.stage, store.lead_stays.c.entered_at,
                store.lead_stays.c.left_at, store.lead_stays.c.seconds, store.lead_stays.c.moved_on).order_by(
                store.lead_stays.c.lead_id, store.lead_stays.c.entered_at, store.lead_stays.c.id))]
    finally:
        db.dispose()
    return [spans, stays]


def test_the_write_path_keeps_the_past_the_rebuild_makes(team: Team) -> None:
    ids = play(team.admin)
    kept = past(team.url)
    spans, stays = kept
    # C: closed, reopened, advanced, closed again; a span per change, each ending where the next starts
    c_spans = [s for s in spans if s[0] == ids["C"]]
    status = store.SPAN_ATTRS.index("status") + 3
    assert [s[status] for s in c_spans] == ["open", "open", "lost", "open", "open", "open", "lost"]
    assert all(a[2] == b[1] for a, b in itertools.pairwise(c_spans)) and c_spans[-1][2] is None
    assert c_spans[2][1] == instant("03-06")  # lost from 03-06 until reopened 03-10
    assert c_spans[3][1] == instant("03-10")
    # A's stays: one per stage, each ended by moving on, the last by the win
    a_stays = [s for s in stays if s[0] == ids["A"]]
    assert all(s[3] is not None and s[5] for s in a_stays)
    assert a_stays[0][2] == instant("02-20") and a_stays[0][3] == instant("02-23")
    assert a_stays[0][4] == 3 * 86400
    with clock.frozen(instant(END)):
        assert team.admin.admin.check()["differences"] == []
        team.admin.reports.rebuild_stages()
    assert past(team.url) == kept


def test_init_gives_a_database_from_before_it_its_leads_past(team: Team) -> None:
    play(team.admin)
    kept = past(team.url)
    db = sa.create_engine(team.url)
    try:
        with db.begin() as conn:
            conn.execute(sa.delete(store.lead_spans))
            conn.execute(sa.delete(store.lead_stays))
    finally:
        db.dispose()
    with clock.frozen(instant(END)):
        team.admin.init()
    assert past(team.url) == kept


def test_a_rotation_of_leads_alike_keeps_each_leads_own_past(team: Team) -> None:
    """A rotation writes a group of leads from its first lead's new state (``recovery.write_rotation``): each lead's
    span from then on is its own row with the rotated columns, not the first lead's (created, source, value,
    report)."""
    leads = [add(team, when, source=source, value=value, name=f"Client {k}")["id"]
             for k, (when, source, value) in enumerate([("2026-01-05T09:00", "web_form", "10000"),
                                                        ("2026-01-07T11:00", "referral", "25000"),
                                                        ("2026-01-09T15:00", "web_form", "40000")])]
    with at("2026-01-20T09:00"):
        team.as_("anna").report(leads[2], "waiting for the board")
    with at("2026-03-10T09:00"):
        moved = team.as_("marta").rotate()
    assert set(leads) <= {m["lead_id"] for m in moved["moves"]}
    spans, _ = past(team.url)
    names = ("lead_id", "started_at", "ended_at", *store.SPAN_ATTRS)
    current = {s[0]: dict(zip(names, s, strict=True)) for s in spans if s[2] is None}
    assert [current[i]["created_at"].day for i in leads] == [5, 7, 9]
    assert [current[i]["source"] for i in leads] == ["web_form", "referral", "web_form"]
    assert current[leads[2]]["last_report"] == "waiting for the board"
    assert all(current[i]["started_at"] == instant("03-10") and current[i]["owner"] != "anna" for i in leads)
    with at("2026-03-10T10:00"):
        assert team.admin.admin.check()["differences"] == []
