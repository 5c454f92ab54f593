"""The leads' past, kept for the reports as of an instant (docs/reports.md, "As of a past instant"):
``lead_spans``, each lead's columns over time, and ``lead_stays``, each stay of a lead in a stage.

A span is the lead's row (``SPAN_ATTRS``: the ``leads`` columns but the fields, an extension's reason, the
external id and the unanswered calls) from the instant of the write that made it (``started_at``, its last
event's) until the next change (``ended_at``, NULL for the current one), so "the leads as of T" is the range
``started_at <= T AND (ended_at IS NULL OR ended_at > T)``. A write whose row differs in none of these columns
adds no span; writes at one instant leave one span (the last state then), as replaying the events up to that
instant would. A stay is one stay of ``engine.visits``: from entering a stage (``entered_at``) to leaving it
(``left_at``, NULL while the lead is there; ``moved_on`` when it advanced or was won from it, ``seconds`` its
length as ``lead_stages`` adds it up).

The write path (``write_history``, called by ``keep_projections``) and the rebuild from the event log
(``History``, which ``rebuild_stages`` and ``integrity`` use) make both from the same moves (``visits.moves``) and
the same row builders.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import visits
from engine.state import Event, LeadState, SpecLookup, apply
from engine.store.driver import CHUNK, driver_executemany_tuples
from engine.store.lead_rows import LeadChange, NewLeads, patcher
from engine.store.schema import lead_spans, lead_stays, leads

#: The lead's columns a span keeps: what the reports as of an instant read of a lead.
SPAN_ATTRS = tuple(c.key for c in leads.c if c.key not in (
    "id", "row_version", "fields_json", "extension_reason", "external_id", "unanswered_calls"))
span_values = operator.attrgetter(*SPAN_ATTRS)
_CLIENT = SPAN_ATTRS.index("client_id")
SPAN_NAMES = ("lead_id", "started_at", "ended_at", *SPAN_ATTRS)
STAY_NAMES = ("lead_id", "stage", "entered_at", "left_at", "seconds", "moved_on")

#: A point of a lead's timeline: from ``at`` on, the lead's ``span_values``.
Point = tuple[dt.datetime, tuple[Any, ...]]


def compact(points: Iterable[Point], since: tuple[Any, ...] | None = None) -> list[Point]:
    """The spans' starts of a timeline: at each instant its last state, a state equal to the one before left out
    (``since``: the lead's values before the first point)."""
    out: list[Point] = []
    for at, values in points:
        if out and out[-1][0] == at:
            out.pop()
        previous = out[-1][1] if out else since
        if values != previous:
            out.append((at, values))
    return out


def span_rows(lead_id: int, points: Sequence[Point]) -> list[tuple[Any, ...]]:
    """``lead_spans`` rows of ``points`` (``compact``), each ending where the next starts, the last one open."""
    ends = [at for at, _ in points[1:]] + [None]
    return [(lead_id, at, end, *values) for (at, values), end in zip(points, ends, strict=True)]


class StayLog:
    """A lead's stays as ``visits.follow`` moves it: the rows begun (``new``, completed when they end in the same
    write) and the ends of stays already stored (``ends``: lead id, stage, left_at, seconds, moved_on)."""

    def __init__(self, lead_id: int, open_since: dict[str, dt.datetime] | None = None):
        self.lead_id = lead_id
        self._stored = dict(open_since or {})  # the stored stays open now, by stage: their start
        self._open: dict[str, list[Any]] = {}
        self.new: list[list[Any]] = []
        self.ends: list[tuple[Any, ...]] = []

    def follow(self, moves: Sequence[tuple[str, str, dt.datetime]]) -> None:
        for kind, stage, at in moves:
            if kind == visits.ENTER:
                self._stored.pop(stage, None)  # visits.follow restarts the stay: the stored one is superseded
                row: list[Any] = [self.lead_id, stage, at, None, None, False]
                self._open[stage] = row
                self.new.append(row)
                continue
            begun = self._open.pop(stage, None)
            if begun is not None:
                begun[3], begun[4], begun[5] = at, round((at - begun[2]).total_seconds()), kind == visits.PASS
            elif stage in self._stored:  # as visits.follow, an end without its stay is skipped
                start = self._stored.pop(stage)
                self.ends.append((self.lead_id, stage, at, round((at - start).total_seconds()), kind == visits.PASS))


class History:
    """One lead's state, visits, spans and stays from its event log, event by event as the write path moves it
    (the rebuild's and the check's replay)."""

    def __init__(self, log: Sequence[Event], specs: SpecLookup, lead_id: int | None = None):
        state: LeadState | None = None
        self.stays: dict[str, visits.Visit] = {}
        stay_log = StayLog(lead_id or 0)
        points: list[Point] = []
        for event in log:
            before = visits.position(state)
            state = apply(state, event, specs)
            moves = visits.moves(before, state)
            visits.follow(self.stays, moves)
            stay_log.follow(moves)
            points.append((event.at, span_values(state)))
        assert state is not None, "no events"
        self.state = state
        self.spans = span_rows(lead_id or 0, compact(points))
        self.stay_rows = [tuple(row) for row in stay_log.new]


# -- the write path's part ---------------------------------------------------------------------------

_CLOSE_SPAN = sa.update(lead_spans).where(lead_spans.c.lead_id == sa.bindparam("k_lead_id"),
                                          lead_spans.c.ended_at.is_(None)).values(ended_at=sa.bindparam("v_ended_at"))
_END_STAY = sa.update(lead_stays).where(
    lead_stays.c.lead_id == sa.bindparam("k_lead_id"), lead_stays.c.stage == sa.bindparam("k_stage"),
    lead_stays.c.left_at.is_(None)).values(
    {name: sa.bindparam(f"v_{name}") for name in ("left_at", "seconds", "moved_on")})
_END_STAY_NAMES = ("k_lead_id", "k_stage", "v_left_at", "v_seconds", "v_moved_on")
INSERT_STAY = sa.insert(lead_stays).values({name: sa.bindparam(name) for name in STAY_NAMES})


@functools.cache
def insert_span(dialect: str) -> Any:
    """The INSERT of a span; a span of the same lead and instant (an earlier write at that instant, which the
    close before it has just ended) is replaced: the last state at an instant is the one kept."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(lead_spans).values({name: sa.bindparam(name) for name in SPAN_NAMES})
    return statement.on_conflict_do_update(
        index_elements=["lead_id", "started_at"],
        set_={name: statement.excluded[name] for name in ("ended_at", *SPAN_ATTRS)})


def change_points(change: LeadChange, stored: tuple[Any, ...] | None = None) -> list[Point]:
    """The spans a change starts: the history import's timeline (``LeadChange.spans``), else the state after it
    from its last event's instant; none when the lead's span columns did not change. ``stored``: the lead's
    current span, for a change that writes only some columns (``LeadChange.columns``, a rotation: the rest of
    its states are another lead's)."""
    if not change.events:  # no time to start a span at (the engine writes none such; its history would not say)
        return []
    values = span_values(change.after)
    since = span_values(change.before) if change.before is not None else None
    if change.columns is not None and stored is not None:
        written = set(change.columns)
        values = tuple(new if name in written else old for name, new, old in zip(SPAN_ATTRS, values, stored,
                                                                                  strict=True))
        since = stored
    after = (change.events[-1].at, values)
    # the import's timeline is built before the deal's client is known: its client is the lead's now
    points = [(at, (*v[:_CLIENT], values[_CLIENT], *v[_CLIENT + 1:])) for at, v in change.spans] if change.spans else []
    points.append(after)
    return compact(points, since)


def _current_spans(conn: Connection, lead_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """The leads' current spans' values, by lead."""
    out: dict[int, tuple[Any, ...]] = {}
    columns = [lead_spans.c[name] for name in SPAN_ATTRS]
    for start in range(0, len(lead_ids), CHUNK):
        for row in conn.execute(sa.select(lead_spans.c.lead_id, *columns).where(
                lead_spans.c.lead_id.in_(lead_ids[start:start + CHUNK]), lead_spans.c.ended_at.is_(None))):
            out[row[0]] = tuple(row[1:])
    return out


def write_history(conn: Connection, changes: Sequence[LeadChange], stays: Sequence[StayLog],
                  groups: Sequence[NewLeads] = ()) -> None:
    """Write the changes' spans and the stays they began and ended (``stays``, one ``StayLog`` per lead that
    moved), and a span and first stay for each lead of ``groups``."""
    closes: list[tuple[Any, ...]] = []
    spans: list[tuple[Any, ...]] = []
    partial = [change.after.id for change in changes if change.columns is not None and change.after.id is not None]
    stored = _current_spans(conn, partial) if partial else {}
    for change in changes:
        lead_id = change.after.id
        assert lead_id is not None
        points = change_points(change, stored.get(lead_id))
        if points:
            if change.before is not None:
                closes.append((lead_id, points[0][0]))
            spans += span_rows(lead_id, points)
    new_stays = [tuple(row) for log in stays for row in log.new]
    for group in groups:
        own = {name: k for k, name in enumerate(group.attrs)}
        own["lead_id"] = own.pop("id")
        template = group.template
        at = template.created_at
        spans += map(patcher(SPAN_NAMES, (template.id, at, None, *span_values(template)), own), group.values)
        visit = visits.first(template)
        if visit is not None:
            new_stays += map(patcher(STAY_NAMES, (template.id, visit.stage, visit.entered_at, None, None, False),
                                     own), group.values)
    driver_executemany_tuples(conn, _CLOSE_SPAN, ("k_lead_id", "v_ended_at"), closes)
    driver_executemany_tuples(conn, insert_span(conn.dialect.name), SPAN_NAMES, spans)
    driver_executemany_tuples(conn, _END_STAY, _END_STAY_NAMES, [end for log in stays for end in log.ends])
    driver_executemany_tuples(conn, INSERT_STAY, STAY_NAMES, new_stays)


def rebuild_rows(conn: Connection, lead_ids: Sequence[int], histories: Sequence[History]) -> None:
    """Replace the spans and stays of ``lead_ids`` with those of their ``histories`` (the rebuild's, an
    erasure's)."""
    if not lead_ids:
        return
    conn.execute(sa.delete(lead_spans).where(lead_spans.c.lead_id.in_(lead_ids)))
    conn.execute(sa.delete(lead_stays).where(lead_stays.c.lead_id.in_(lead_ids)))
    driver_executemany_tuples(conn, insert_span(conn.dialect.name), SPAN_NAMES,
                              [row for h in histories for row in h.spans])
    driver_executemany_tuples(conn, INSERT_STAY, STAY_NAMES, [row for h in histories for row in h.stay_rows])
