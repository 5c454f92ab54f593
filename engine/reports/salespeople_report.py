"""``report salespeople``: per salesperson, what they hold, won and lost, their red leads, and the clients a
colleague won after them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.reports.aggregates import in_days, ratio, seconds_between
from engine.reports.asof import CURRENT, Sources
from engine.reports.periods import Period
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import closures, ownerships, stage_counts, users
from engine.vocab import CLOSED_STATUSES, EventKind, LeadStatus, Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.store.sqltypes import Condition


def salespeople(conn: Connection, specs: list[ProcessSpec], window: Period, now: dt.datetime, *,
                team: str | None, owner: str | None, src: Sources = CURRENT) -> results.Salespeople:
    """Per salesperson: open leads held now, leads won and lost in ``window``, the conversion and the average
    cycle of those, red leads now, and the leads they gave up in ``window`` (closed without a sale, or rotated
    away) whose client a colleague won afterwards. ``src``: where the leads are read (``asof.sources``)."""
    processes = [s.id for s in specs]
    leads = src.leads

    def scoped(table: sa.FromClause, *, owner_column: sa.ColumnElement[str] | None = None) -> list[Condition]:
        column = table.c.owner if owner_column is None else owner_column
        return [*([table.c.team == team] if team is not None and "team" in table.c else []),
                *([column == owner] if owner is not None else []), table.c.process.in_(processes)]

    people: dict[str, Counter[str]] = {}  # per salesperson, the figures the queries add up

    def row(name: str) -> Counter[str]:
        return people.setdefault(name, Counter())

    query = sa.select(users.c.name).where(users.c.role == Role.SALESPERSON)
    if team is not None:
        query = query.where(users.c.team == team)
    if owner is not None:
        query = query.where(users.c.name == owner)
    for (name,) in conn.execute(query):
        row(name)
    if src.at is None:
        held = (sa.select(stage_counts.c.owner, sa.func.sum(stage_counts.c.leads),
                          sa.func.sum(stage_counts.c.value_minor))
                .where(stage_counts.c.owner != "", *scoped(stage_counts)).group_by(stage_counts.c.owner))
    else:  # as of an instant: its open leads (stage_counts holds only the current ones)
        held = (sa.select(leads.c.owner, sa.func.count(), sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
                .where(leads.c.status == LeadStatus.OPEN, leads.c.owner.is_not(None), *scoped(leads))
                .group_by(leads.c.owner))
    for name, n, value in src.tally(conn, held, 1):
        if n:
            tally = row(name)
            tally["held"] += int(n)
            tally["held_value"] += int(value)
    # won and lost per owner in the order of ix_leads_closed (process, status, owner): no sort
    days = sa.case((leads.c.status == LeadStatus.WON, seconds_between(leads.c.created_at, leads.c.closed_at)))
    for _, status, name, n, value, total_seconds in src.tally(
            conn, sa.select(leads.c.process, leads.c.status, leads.c.owner, sa.func.count(),
                            sa.func.sum(leads.c.value_minor), sa.func.sum(days))
            .where(leads.c.status.in_(CLOSED_STATUSES), leads.c.owner.is_not(None),
                   *window.conditions(leads.c.closed_at), *scoped(leads))
            .group_by(leads.c.process, leads.c.status, leads.c.owner), 3):
        tally = row(name)
        if status == LeadStatus.WON:
            tally["won"] += int(n)
            tally["won_value"] += int(value or 0)
            tally["cycle_seconds"] += int(total_seconds)
        else:
            tally["lost"] += int(n)
    for name, n in src.tally(
            conn, sa.select(leads.c.owner, sa.func.count())
            .where(leads.c.status == LeadStatus.OPEN, leads.c.red_at <= now, leads.c.owner.is_not(None), *scoped(leads))
            .group_by(leads.c.owner), 1):
        row(name)["red"] = int(n)
    for name, (gave_up, won_by_colleague) in _given_up(conn, window, scoped, processes, src).items():
        tally = row(name)
        tally["gave_up"], tally["won_by_colleague"] = gave_up, won_by_colleague
    return {"period": window.as_dict(),
            "salespeople": sorted((_salesperson(name, t) for name, t in people.items()),
                                  key=lambda p: (-p["won_by_colleague"], p["owner"]))}


def _salesperson(owner: str, t: Counter[str]) -> results.Salesperson:
    won = t["won"]
    return {"owner": owner, "held": t["held"], "held_value": minor_to_money(t["held_value"]), "won": won,
            "won_value": minor_to_money(t["won_value"]), "lost": t["lost"], "conversion": ratio(won, won + t["lost"]),
            "mean_cycle_days": in_days(t["cycle_seconds"] / won) if won else None, "red": t["red"],
            "gave_up": t["gave_up"], "won_by_colleague": t["won_by_colleague"]}


def _given_up(conn: Connection, window: Period, scoped: Callable[..., list[Condition]],
              processes: list[str], src: Sources) -> dict[str, list[int]]:
    """Per salesperson, [leads given up, of which a colleague won the client afterwards], given up in ``window``.

    Giving up is closing a lead without a sale, or having it rotated to a colleague (a recalled lead leaves with
    the next rotation); a manager's plain reassignment is not. Each lead counts once per way (a lead both closed
    by them and, another time, rotated away from them counts twice in the first figure).

    "A colleague won the client" is a lead of the same client (the same lead, or a later one) won by a different
    salesperson after that moment. That count starts from the wins (a small share of the leads), at most two per
    client (below), and looks up each won client's earlier closings and rotations by client (there is deliberately
    no index on ``ownerships.how``: with one, a database without planner statistics looked up every win for every
    rotation).
    """
    previous = ownerships.alias("previous")
    earlier_owner = (sa.select(previous.c.owner)
                     .where(previous.c.client_id == ownerships.c.client_id, previous.c.lead_id == ownerships.c.lead_id,
                            previous.c.id < ownerships.c.id)
                     .order_by(previous.c.id.desc()).limit(1).scalar_subquery())
    closed = [closures.c.owner.is_not(None), *window.conditions(closures.c.closed_at), *scoped(closures)]
    # Per client, its two salespeople whose last win is the latest (their last wins), in one row: a closing or
    # rotation by X at t was followed by a colleague's win exactly when the latest winner is not X and won after t,
    # or is X and the second is someone and won after t. Each closing meets one row, however many deals the
    # client's account holds (joined to every win of its client, a migrated account of thousands of deals made the
    # query quadratic: 5 s at 100,000 deals; to each of the two winners, 2.8 s at a million).
    # As of an instant, per table of the leads then (``Sources.each``), each grouped on its own index.
    won = [sa.select(winner.c.client_id, winner.c.owner, sa.func.max(winner.c.closed_at).label("closed_at"))
           .where(*keep, winner.c.process.in_(processes), winner.c.status == LeadStatus.WON,
                  winner.c.owner.is_not(None), *([winner.c.closed_at < window.cutoff] if window.cutoff else []))
           .group_by(winner.c.client_id, winner.c.owner) for winner, keep in src.each(src.leads)]
    if len(won) == 1:
        last_wins = won[0].subquery("last_wins")
    else:
        each_won = sa.union_all(*won).subquery("each_won")
        last_wins = (sa.select(each_won.c.client_id, each_won.c.owner,
                               sa.func.max(each_won.c.closed_at).label("closed_at"))
                     .group_by(each_won.c.client_id, each_won.c.owner).subquery("last_wins"))
    ranked = sa.select(last_wins, sa.func.row_number().over(
        partition_by=last_wins.c.client_id, order_by=last_wins.c.closed_at.desc()).label("rank")).subquery("ranked")
    wins = (sa.select(ranked.c.client_id,
                      sa.func.max(sa.case((ranked.c.rank == 1, ranked.c.owner))).label("owner"),
                      sa.func.max(sa.case((ranked.c.rank == 1, ranked.c.closed_at))).label("closed_at"),
                      sa.func.max(sa.case((ranked.c.rank == 2, ranked.c.closed_at))).label("second_at"))
            .where(ranked.c.rank <= 2).group_by(ranked.c.client_id).cte("wins"))

    def colleague_won_after(owner: sa.ColumnElement[str]) -> sa.ColumnElement[Any]:
        """When the client's latest win by someone other than ``owner`` was (NULL: never)."""
        return sa.case((wins.c.owner != owner, wins.c.closed_at), else_=wins.c.second_at)

    # The rotations in the window, then those of leads in scope, read once for both counts, joined to each table
    # of the leads then by its key (``Sources.each``): the leads as of an instant are a subquery without an
    # index, which SQLite materialises whole for each statement that joins it (without planner statistics it
    # walked every ownership for each lead then instead: 4.4 s at 10,000 leads).
    moves = (sa.select(ownerships.c.client_id, ownerships.c.lead_id, ownerships.c.started_at,
                       earlier_owner.label("owner"))
             .where(ownerships.c.how == EventKind.ROTATED, *window.conditions(ownerships.c.started_at))
             .cte("rotations"))
    rotated_in = [sa.select(moves).select_from(moves.join(lead_of, lead_of.c.id == moves.c.lead_id))
                  .where(*keep, moves.c.owner.is_not(None), *scoped(lead_of, owner_column=moves.c.owner))
                  for lead_of, keep in src.each(src.leads)]
    rotated = (rotated_in[0] if len(rotated_in) == 1 else sa.union_all(*rotated_in)).cte("rotated")
    if _materialized_ctes(conn):  # each first, so that every plan starts from them
        wins, moves, rotated = (cte.prefix_with("MATERIALIZED") for cte in (wins, moves, rotated))
    # leads closed by each owner: distinct leads in the order of ix_closures_owner (process, owner, lead_id), no sort
    per_lead = (sa.select(closures.c.process, closures.c.owner, closures.c.lead_id).where(*closed)
                .group_by(closures.c.process, closures.c.owner, closures.c.lead_id).subquery())
    out: dict[str, list[int]] = {}
    for name, n in conn.execute(sa.select(per_lead.c.owner, sa.func.count()).group_by(per_lead.c.owner)):
        out.setdefault(name, [0, 0])[0] += int(n)
    given = sa.union_all(
        sa.select(closures.c.owner, closures.c.lead_id)
        .select_from(wins.join(closures, closures.c.client_id == wins.c.client_id))
        .where(*closed, closures.c.closed_at < colleague_won_after(closures.c.owner)),
        sa.select(rotated.c.owner, rotated.c.lead_id)
        .select_from(wins.join(rotated, rotated.c.client_id == wins.c.client_id))
        .where(rotated.c.started_at < colleague_won_after(rotated.c.owner))).subquery()
    counts = sa.union_all(  # per owner, the leads rotated away (0) and those won by a colleague after (1)
        sa.select(sa.literal(0).label("figure"), rotated.c.owner, sa.func.count(sa.distinct(rotated.c.lead_id)))
        .group_by(rotated.c.owner),
        sa.select(sa.literal(1), given.c.owner, sa.func.count(sa.distinct(given.c.lead_id))).group_by(given.c.owner))
    for figure, name, n in conn.execute(counts):
        out.setdefault(name, [0, 0])[figure] += int(n)
    return out


def _materialized_ctes(conn: Connection) -> bool:
    """``WITH x AS MATERIALIZED``: PostgreSQL 12+ and SQLite 3.35+ (older SQLite plans without the hint)."""
    if conn.dialect.name == "postgresql":
        return True
    version = getattr(conn.dialect.dbapi, "sqlite_version_info", (0,))
    return bool(version >= (3, 35))
