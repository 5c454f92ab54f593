"""Is the database what the engine wrote? ``leadflow check``'s comparisons (docs/operations.md).

Three layers, each reported as a list of ``Difference``: the database's own integrity (SQLite's
``integrity_check`` and ``foreign_key_check``; on PostgreSQL amcheck's ``bt_index_check`` where installed, and
everywhere the foreign keys re-checked by queries and the history's triggers looked up); every lead against its
event log (``state.apply`` replayed, the row and its task rows compared column by column); every projection
against a recount (``stage_counts``, ``lead_stages``, ``ownerships``, ``closures``, the leads' past in
``lead_spans`` and ``lead_stays``; ``red_at`` is a lead column
and compared with the lead). Leads are read ``batch`` at a time, in id order, so memory stays flat.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import i18n, results, store, visits
from engine.i18n import N_, Message
from engine.state import Event, LeadState, SpecLookup, apply
from engine.store import (
    closures,
    erasures,
    events,
    history,
    lead_spans,
    lead_stages,
    lead_stays,
    lead_tasks,
    leads,
    ownerships,
    stage_counts,
)

if TYPE_CHECKING:
    from engine.store.sqltypes import Mapping

#: The triggers that keep ``events`` append-only (migration 0007), per dialect.
HISTORY_TRIGGERS = {
    "sqlite": ("events_no_delete", "events_no_update", "erasures_no_delete", "erasures_finish_once"),
    "postgresql": ("events_append_only", "events_no_truncate", "erasures_finish_once"),
}
#: A closure row's time and its ``closed`` event's are taken by two reads of the clock in one operation.
CLOSURE_CLOCK_SLACK = dt.timedelta(seconds=1)

Report = Callable[[results.Difference], None]


def difference(kind: str, table: str, message: Message, *, lead_id: int | None = None,
               column: str | None = None, stored: Any = None, rebuilt: Any = None) -> results.Difference:
    """One finding: ``message`` its English text, with its template and parameters beside it (``message_id``,
    ``params``: ``check`` shows it in the reader's language, docs/i18n.md)."""
    machine = i18n.message_json(message)
    return {"kind": kind, "table": table, "lead_id": lead_id, "column": column, "stored": _plain(stored),
            "rebuilt": _plain(rebuilt), "message": str(message), "message_id": machine["message_id"],
            "params": machine["params"]}


def _closure_differs(lead_id: int, n: int, column: str, stored: Any, rebuilt: Any) -> Message:
    return Message(N_("lead {lead}: closure {n}: {column} is {stored}, its history says {rebuilt}"), lead=lead_id,
                   n=n, column=column, stored=_shown(stored), rebuilt=_shown(rebuilt))


def _plain(value: Any) -> Any:
    """A value as JSON shows it."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# -- 1. the database's own integrity ------------------------------------------------------------------------


def database(conn: Connection) -> list[results.Difference]:
    """The database engine's own checks, and the foreign keys and triggers the schema promises."""
    found: list[results.Difference] = []
    if conn.dialect.name == "sqlite":
        for (line,) in conn.exec_driver_sql("PRAGMA integrity_check"):
            if line != "ok":
                found.append(difference("database", "", Message(N_("integrity_check: {line}"), line=line)))
        for table, rowid, parent, _ in conn.exec_driver_sql("PRAGMA foreign_key_check"):
            found.append(difference("database", table, Message(
                N_("row {row} of {table} refers to a missing row of {parent}"), row=rowid, table=table, parent=parent)))
    else:
        found.extend(_amcheck(conn))
        found.extend(_orphans(conn))
    found.extend(_triggers(conn))
    return found


def _amcheck(conn: Connection) -> Iterator[results.Difference]:
    if not conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").first():
        return
    names = [t.name for t in store.metadata.sorted_tables]
    indexes = conn.execute(sa.text(
        "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam "
        "WHERE am.amname = 'btree' AND c.relname = ANY(:names) AND pg_table_is_visible(c.oid)"),
        {"names": names}).scalars().all()
    for index in indexes:
        try:
            with conn.begin_nested():
                conn.execute(sa.text("SELECT bt_index_check(CAST(:index AS regclass), true)"), {"index": index})
        except sa.exc.DatabaseError as exc:
            yield difference("database", index, Message(N_("amcheck: index {index}: {error}"), index=index,
                                                        error=" ".join(str(exc.orig).split())))


def _orphans(conn: Connection) -> Iterator[results.Difference]:
    """Rows whose foreign key names no row: what the constraints promise, asked again (PostgreSQL keeps its
    constraints, but a restore with triggers disabled or a constraint dropped by hand would not)."""
    for table in store.metadata.sorted_tables:
        for fk in table.foreign_keys:
            child, parent = fk.parent, fk.column
            count = conn.execute(sa.select(sa.func.count()).select_from(table).where(
                child.is_not(None), ~sa.exists(sa.select(parent).where(parent == child)))).scalar_one()
            if count:
                yield difference("database", table.name, Message(N_(
                    "{count} rows of {table} have a {column} that names no row of {parent}"), count=count,
                    table=table.name, column=child.name, parent=parent.table.name))


def _triggers(conn: Connection) -> Iterator[results.Difference]:
    if conn.dialect.name == "sqlite":
        present = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
    else:
        present = set(conn.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' "
            "AND pg_table_is_visible(tgrelid)").scalars())
    for name in HISTORY_TRIGGERS.get(conn.dialect.name, ()):
        if name not in present:
            yield difference("database", "events", Message(N_(
                "trigger {name} is missing or disabled: the history is not protected from UPDATE and DELETE "
                "(migration 0007)"), name=name))


def unfinished_erasures(conn: Connection) -> list[results.Difference]:
    return [difference("erasure", "erasures", Message(N_(
        "erasure {erasure} of client {client}, started {started} by {user}, never finished: that client's events "
        "can still be rewritten"), erasure=r.id, client=r.client_id, started=f"{r.started_at:%Y-%m-%d %H:%M}",
        user=r.requested_by))
            for r in conn.execute(sa.select(erasures).where(erasures.c.finished_at.is_(None)))]


# -- 2. and 3. every lead and its projections against its event log ---------------------------------------------


class _Rebuilt:
    """What one lead's event log says: its state, its stage visits, its ownerships and closures."""

    def __init__(self, log: list[Event], specs: SpecLookup):
        state: LeadState | None = None
        self.stays: dict[str, visits.Visit] = {}
        self.owners: list[tuple[Any, ...]] = []
        self.closures: list[dict[str, Any]] = []
        stay_log = history.StayLog(0)
        points: list[history.Point] = []
        for event in log:
            if event.kind == "closed" and state is not None:
                reason = specs(state.process, state.process_version).reason(event.data.get("reason") or "")
                self.closures.append({"reason": event.data.get("reason"), "kind": reason.kind if reason else None,
                                      "owner": state.owner, "team": state.team, "product": state.product,
                                      "value_minor": state.value_minor, "stage": state.stage,
                                      "closed_at": event.at, "reopened_at": None})
            elif event.kind == "reopened" and self.closures and self.closures[-1]["reopened_at"] is None:
                self.closures[-1]["reopened_at"] = event.at
            key = store.OWNERSHIP_EVENTS.get(event.kind)
            if key and event.data.get(key):
                self.owners.append((event.data[key], event.at, event.kind))
            before = visits.position(state)
            state = apply(state, event, specs)
            moves = visits.moves(before, state)
            visits.follow(self.stays, moves)
            stay_log.follow(moves)
            points.append((event.at, store.span_values(state)))
        assert state is not None
        self.state = state
        self.spans = [row[1:] for row in history.span_rows(0, history.compact(points))]
        self.stay_rows = sorted((tuple(row[1:]) for row in stay_log.new), key=_stay_order)


_TASK_COLUMNS = ("state", "due_at", "done_by", "done_at", "note")
_VISIT_COLUMNS = ("process", "created_at", "team", "owner", "status", "closed_at", "entered_at", "stay_started_at",
                  "seconds", "moved_on")


def leads_against_history(conn: Connection, specs: SpecLookup, report: Report, *, batch: int = 2000) -> int:
    """Compare every lead, its task rows, ``lead_stages``, ``ownerships`` and ``closures`` rows with its event
    log; ``report`` each difference. Returns the number of leads checked."""
    checked = 0
    last = 0
    while True:
        rows = conn.execute(sa.select(leads).where(leads.c.id > last).order_by(leads.c.id).limit(batch)
                            ).mappings().all()
        if not rows:
            return checked
        first, last = rows[0]["id"], rows[-1]["id"]
        logs = _group(conn, sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.actor,
                                      events.c.data_json, events.c.id), events.c.lead_id, first, last, events.c.id)
        tasks = _group(conn, sa.select(lead_tasks), lead_tasks.c.lead_id, first, last)
        stays = _group(conn, sa.select(lead_stages), lead_stages.c.lead_id, first, last)
        owners = _group(conn, sa.select(ownerships), ownerships.c.lead_id, first, last, ownerships.c.id)
        closed = _group(conn, sa.select(closures), closures.c.lead_id, first, last, closures.c.id)
        spans = _group(conn, sa.select(lead_spans), lead_spans.c.lead_id, first, last, lead_spans.c.started_at)
        stays_ = _group(conn, sa.select(lead_stays), lead_stays.c.lead_id, first, last, lead_stays.c.id)
        for row in rows:
            lead_id = row["id"]
            log = [Event(kind=e["kind"], at=e["at"], actor=e["actor"], data=json.loads(e["data_json"]),
                         lead_id=lead_id, id=e["id"]) for e in logs.get(lead_id, [])]
            checked += 1
            if not log:
                report(difference("lead", "leads", Message(N_("lead {lead} has no events: it cannot be rebuilt"),
                                                           lead=lead_id), lead_id=lead_id))
                continue
            try:
                rebuilt = _Rebuilt(log, specs)
            except Exception as exc:  # a log that apply cannot replay is itself the finding
                report(difference("lead", "events", Message(N_("lead {lead}'s events do not replay: {error}"),
                                                          lead=lead_id, error=f"{type(exc).__name__}: {exc}"),
                                  lead_id=lead_id))
                continue
            _compare_lead(row, tasks.get(lead_id, []), rebuilt.state, report)
            _compare_stages(lead_id, stays.get(lead_id, []), rebuilt, report)
            _compare_owners(lead_id, owners.get(lead_id, []), rebuilt, report)
            _compare_closures(lead_id, closed.get(lead_id, []), rebuilt, report)
            _compare_past(lead_id, spans.get(lead_id, []), stays_.get(lead_id, []), rebuilt, report)


def _group(conn: Connection, query: sa.Select[Any], key: sa.Column[Any], first: int, last: int,
           *order: sa.Column[Any]) -> dict[int, list[Mapping]]:
    out: dict[int, list[Mapping]] = {}
    for r in conn.execute(query.where(key >= first, key <= last).order_by(key, *order)).mappings():
        out.setdefault(r[key.name], []).append(r)
    return out


def _compare_lead(row: Mapping, task_rows: list[Mapping], state: LeadState, report: Report) -> None:
    lead_id = row["id"]
    for column, rebuilt_value in store.lead_columns(state).items():
        stored, value, name = row[column], rebuilt_value, column
        if column == "fields_json":
            stored, value, name = json.loads(stored), state.fields, "fields"
        if stored != value:
            table = "leads.red_at" if name == "red_at" else "leads"
            report(difference("projection" if name == "red_at" else "lead", table,
                              Message(N_("lead {lead}: {name} is {stored}, its history says {rebuilt}"), lead=lead_id,
                                      name=name, stored=_shown(stored), rebuilt=_shown(value)),
                              lead_id=lead_id, column=name, stored=stored, rebuilt=value))
    stored_tasks = {(t["stage"], t["task_id"]): tuple(t[c] for c in _TASK_COLUMNS) for t in task_rows}
    rebuilt_tasks = {key: tuple(getattr(t, c) for c in _TASK_COLUMNS) for key, t in state.tasks.items()}
    for key in sorted(set(stored_tasks) | set(rebuilt_tasks)):
        a, b = stored_tasks.get(key), rebuilt_tasks.get(key)
        if a == b:
            continue
        if a is None or b is None:
            report(difference("lead", "lead_tasks", Message(
                N_("lead {lead}: task {task} of stage {stage} is missing") if a is None else
                N_("lead {lead}: task {task} of stage {stage} is stored but not in its history"),
                lead=lead_id, task=key[1], stage=key[0]), lead_id=lead_id, column=f"{key[0]}.{key[1]}", stored=a,
                rebuilt=b))
            continue
        for column, x, y in zip(_TASK_COLUMNS, a, b, strict=True):
            if x != y:
                report(difference("lead", "lead_tasks", Message(N_(
                    "lead {lead}: task {task} of stage {stage}: {column} is {stored}, its history says {rebuilt}"),
                    lead=lead_id, task=key[1], stage=key[0], column=column, stored=_shown(x), rebuilt=_shown(y)),
                    lead_id=lead_id, column=f"{key[0]}.{key[1]}.{column}", stored=x, rebuilt=y))


def _compare_stages(lead_id: int, rows: list[Mapping], rebuilt: _Rebuilt, report: Report) -> None:
    state = rebuilt.state
    state.id = lead_id
    expected = {v.stage: store.visit_row(state, v) for v in rebuilt.stays.values()}
    stored = {r["stage"]: r for r in rows}
    for stage in sorted(set(expected) | set(stored)):
        a, b = stored.get(stage), expected.get(stage)
        if a is None or b is None:
            report(difference("projection", "lead_stages", Message(
                N_("lead {lead}: stage {stage} is missing from lead_stages") if a is None else
                N_("lead {lead}: stage {stage} is in lead_stages but never reached in its history"),
                lead=lead_id, stage=stage), lead_id=lead_id, column=stage))
            continue
        for column in _VISIT_COLUMNS:
            x, y = a[column], b[column]
            if column == "moved_on":
                x, y = bool(x), bool(y)
            if x != y:
                report(difference("projection", "lead_stages", Message(N_(
                    "lead {lead}: stage {stage}: {column} is {stored}, its history says {rebuilt}"), lead=lead_id,
                    stage=stage, column=column, stored=_shown(x), rebuilt=_shown(y)), lead_id=lead_id,
                    column=f"{stage}.{column}", stored=x, rebuilt=y))


def _compare_owners(lead_id: int, rows: list[Mapping], rebuilt: _Rebuilt, report: Report) -> None:
    stored = [(r["owner"], r["started_at"], r["how"]) for r in rows]
    if stored != rebuilt.owners:
        report(difference("projection", "ownerships", Message(N_(
            "lead {lead}: ownerships are {stored}, its history says {rebuilt}"), lead=lead_id,
            stored=_shown(stored), rebuilt=_shown(rebuilt.owners)), lead_id=lead_id, stored=stored,
            rebuilt=rebuilt.owners))


_CLOSURE_COLUMNS = ("reason", "kind", "owner", "team", "product", "value_minor", "stage")


def _compare_closures(lead_id: int, rows: list[Mapping], rebuilt: _Rebuilt, report: Report) -> None:
    if len(rows) != len(rebuilt.closures):
        report(difference("projection", "closures", Message(N_(
            "lead {lead}: {stored} closures stored, its history has {rebuilt}"), lead=lead_id, stored=len(rows),
            rebuilt=len(rebuilt.closures)), lead_id=lead_id, column="count", stored=len(rows),
            rebuilt=len(rebuilt.closures)))
        return
    for n, (row, expected) in enumerate(zip(rows, rebuilt.closures, strict=True), start=1):
        for column in _CLOSURE_COLUMNS:
            if row[column] != expected[column]:
                report(difference("projection", "closures", _closure_differs(
                    lead_id, n, column, row[column], expected[column]),
                    lead_id=lead_id, column=column, stored=row[column], rebuilt=expected[column]))
        for column in ("closed_at", "reopened_at"):
            x, y = row[column], expected[column]
            if (x is None) != (y is None) or (x is not None and abs(x - y) > CLOSURE_CLOCK_SLACK):
                report(difference("projection", "closures", _closure_differs(lead_id, n, column, x, y),
                                  lead_id=lead_id, column=column, stored=x, rebuilt=y))


def _compare_past(lead_id: int, span_rows: list[Mapping], stay_rows: list[Mapping], rebuilt: _Rebuilt,
                  report: Report) -> None:
    """``lead_spans`` and ``lead_stays`` against the history (spans of equal values one after the other, which
    two writes at one instant may leave, count as one)."""
    stored = [(r["started_at"], r["ended_at"], *(r[name] for name in store.SPAN_ATTRS)) for r in span_rows]
    if _merged(stored) != _merged(rebuilt.spans):
        first = next((n for n, (a, b) in enumerate(zip(stored, rebuilt.spans, strict=False)) if a != b),
                     min(len(stored), len(rebuilt.spans)))
        report(difference("projection", "lead_spans", Message(N_(
            "lead {lead}: its past differs from its history from span {span} on ({stored} stored, {rebuilt} in its "
            "history)"), lead=lead_id, span=first + 1, stored=len(stored), rebuilt=len(rebuilt.spans)),
            lead_id=lead_id, stored=stored[first:first + 1], rebuilt=rebuilt.spans[first:first + 1]))
    stays = sorted(((r["stage"], r["entered_at"], r["left_at"], r["seconds"], bool(r["moved_on"])) for r in stay_rows),
                   key=_stay_order)
    if stays != rebuilt.stay_rows:
        report(difference("projection", "lead_stays", Message(N_(
            "lead {lead}: stays are {stored}, its history says {rebuilt}"), lead=lead_id, stored=_shown(stays),
            rebuilt=_shown(rebuilt.stay_rows)), lead_id=lead_id, stored=stays,
            rebuilt=rebuilt.stay_rows))


def _stay_order(stay: tuple[Any, ...]) -> tuple[Any, ...]:
    return stay[0], stay[1], stay[2] is None, stay[2] or stay[1]


def _merged(spans: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for span in spans:
        if out and out[-1][2:] == span[2:] and out[-1][1] == span[0]:
            out[-1] = (out[-1][0], span[1], *span[2:])
        else:
            out.append(span)
    return out


def stage_counts_against_leads(conn: Connection, report: Report) -> None:
    """``stage_counts`` against a count of the open leads (rows of zero are as good as no row)."""
    team, owner = sa.func.coalesce(leads.c.team, ""), sa.func.coalesce(leads.c.owner, "")
    counted = {(r[0], r[1], r[2], r[3]): (int(r[4]), int(r[5])) for r in conn.execute(
        sa.select(leads.c.process, leads.c.stage, team, owner, sa.func.count(),
                  sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
        .where(leads.c.status == "open").group_by(leads.c.process, leads.c.stage, team, owner))}
    stored = {(r[0], r[1], r[2], r[3]): (int(r[4]), int(r[5])) for r in conn.execute(
        sa.select(stage_counts.c.process, stage_counts.c.stage, stage_counts.c.team, stage_counts.c.owner,
                  stage_counts.c.leads, stage_counts.c.value_minor))}
    for key in sorted(set(counted) | set(stored)):
        a, b = stored.get(key, (0, 0)), counted.get(key, (0, 0))
        for column, x, y in (("leads", a[0], b[0]), ("value_minor", a[1], b[1])):
            if x != y:
                report(difference("projection", "stage_counts", Message(N_(
                    "stage_counts of {key}, team {team}, owner {owner}: {column} is {stored}, the leads count "
                    "{rebuilt}"), key="/".join(key[:2]), team=key[2] or "-", owner=key[3] or "-", column=column,
                    stored=x, rebuilt=y), column=column, stored=x, rebuilt=y))


def _shown(value: Any) -> str:
    text = json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."
