"""Rotation timings over a large SQLite database where every open lead is stalled (issue 5's target:
rotating 100,000 stalled leads among 50 salespeople takes seconds, not minutes).

    python -m benchmarks.rotate --leads 100000            # builds benchmarks/out/rotate-100000.db once
    python -m benchmarks.rotate --leads 20000 --fresh     # a quick look
    python -m benchmarks.rotate --leads 100000 --profile  # where the time of the real rotation goes

The database comes from ``benchmarks.data.build`` (50 salespeople in 5 teams, every lead open), plus
one ``ownerships`` row per lead (who the lead was created for, as the engine itself records it) so that
the "never back to a recent owner" rule has a history to read. The rotation runs a year after the data's
NOW, when every lead has been held longer than the 60-day cycle. Each run works on a fresh copy of the
built database: ``Engine.rotate(dry_run=True)`` then ``Engine.rotate()``, as the admin (all teams).

Afterwards it checks that every moved lead changed owner (to the planned one, in the lead's team),
that ``stage_counts`` (kept by the rotation's writes) equals ``store.recount`` (compared before and after
a recount), and prints the open leads per salesperson (min/max per team) to show the load is balanced.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.data import NOW, build, out_dir, reusable
from engine import clock, store
from engine.api import Engine

#: A year after the data's NOW: every lead is held far longer than the 60-day sales cycle.
ROTATE_AT = NOW + dt.timedelta(days=365)


def add_ownerships(path: Path) -> None:
    """The ownership the engine records when a lead is created for its owner (the bulk build skips it)."""
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute("DELETE FROM ownerships")
            con.execute("INSERT INTO ownerships (client_id, lead_id, owner, started_at, how) "
                        "SELECT client_id, id, owner, created_at, 'created' FROM leads WHERE owner IS NOT NULL")
        con.execute("ANALYZE")
    finally:
        con.close()


def stage_counts(conn: Any) -> dict[tuple[str, str, str, str], tuple[int, int]]:
    rows = conn.execute(sa.select(store.stage_counts)).all()
    return {(r.process, r.stage, r.team, r.owner): (int(r.leads), int(r.value_minor)) for r in rows
            if (r.leads, r.value_minor) != (0, 0)}


def open_leads(conn: Any) -> dict[int, tuple[str, str]]:
    rows = conn.execute(sa.select(store.leads.c.id, store.leads.c.owner, store.leads.c.team)
                        .where(store.leads.c.status == "open")).all()
    return {r.id: (r.owner, r.team) for r in rows}


def run(argv: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    """The exit code (1 when a check failed) and the figures: leads moved, seconds to plan and to rotate."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="rebuild the database even if it exists")
    parser.add_argument("--profile", action="store_true", help="profile the real rotation (cProfile)")
    args = parser.parse_args(argv)

    base = out_dir() / f"rotate-{args.leads}.db"
    if args.fresh or not reusable(base):
        print(f"building {args.leads:,} open leads in {base} ...")
        info = build(base, args.leads)
        add_ownerships(base)
        print(f"built in {info['build_seconds']:.1f} s")
    work = out_dir() / f"rotate-{args.leads}-work.db"
    store.copy_sqlite_files(base, work)
    url = f"sqlite:///{work}"

    admin = Engine.open(url, user="admin")
    with admin.db.connect() as conn:
        before = open_leads(conn)
        people = {r.name: r.team for r in conn.execute(
            sa.select(store.users.c.name, store.users.c.team).where(store.users.c.role == "salesperson"))}
    with clock.frozen(ROTATE_AT):
        stalled = admin.stalled(process="photovoltaics", limit=10)
        started = time.perf_counter()
        plan = admin.rotate(dry_run=True)
        plan_seconds = time.perf_counter() - started
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        done = admin.rotate()
        if profiler:
            profiler.disable()
        rotate_seconds = time.perf_counter() - started

    moves = done["moves"]
    figures = {"leads": args.leads, "moved": len(moves), "plan_s": plan_seconds, "rotate_s": rotate_seconds,
               "rotate_leads_per_s": len(moves) / rotate_seconds}
    print(f"\n{args.leads:,} open leads, {len(people)} salespeople in {len(set(people.values()))} teams, SQLite; "
          f"rotation as of {ROTATE_AT:%Y-%m-%d} (cycle: {stalled['cycles']['photovoltaics']['days']} days, "
          f"{stalled['cycles']['photovoltaics']['basis']})")
    for name, seconds, count in (("rotate --dry-run (plan only)", plan_seconds, len(plan["moves"])),
                                 ("rotate (plan and write)", rotate_seconds, len(moves))):
        print(f"  {name:<30} {count:>9,} leads {seconds:8.2f} s {count / seconds:>10,.0f} leads/s")
    print(f"  unplaced: {len(done['unplaced'])}")

    # -- checks -------------------------------------------------------------------------------------
    problems = []
    if [(m["lead_id"], m["to"]) for m in plan["moves"]] != [(m["lead_id"], m["to"]) for m in moves]:
        problems.append("the dry run's plan differs from the rotation")
    with admin.db.connect() as conn:
        after = open_leads(conn)
        kept = stage_counts(conn)
    for m in moves:
        old_owner, old_team = before[m["lead_id"]]
        new_owner, new_team = after[m["lead_id"]]
        if new_owner == old_owner or new_owner != m["to"] or m["from"] != old_owner:
            problems.append(f"lead {m['lead_id']}: owner {old_owner} -> {new_owner}, planned {m['from']} -> {m['to']}")
        elif people.get(new_owner) != old_team or new_team != old_team:
            problems.append(f"lead {m['lead_id']} of team {old_team} went to {new_owner} of {people.get(new_owner)}")
    unmoved = len(before) - len(moves) - len(done["unplaced"])
    if unmoved:
        problems.append(f"{unmoved} stalled leads were neither moved nor reported unplaced")
    with admin.db.begin() as conn:
        store.recount(conn)
        recounted = stage_counts(conn)
    if kept != recounted:
        diff = {k for k in kept.keys() | recounted.keys() if kept.get(k) != recounted.get(k)}
        problems.append(f"stage_counts differ from a recount in {len(diff)} rows, e.g. {sorted(diff)[:3]}")
    else:
        print(f"  stage_counts equal a recount ({len(kept)} rows)")

    load = Counter(owner for owner, _ in after.values())
    by_team: dict[str, list[int]] = defaultdict(list)
    for name, team in people.items():
        by_team[team].append(load.get(name, 0))
    print("  open leads per salesperson after the rotation (min / max per team; before in brackets):")
    before_load = Counter(owner for owner, _ in before.values())
    for team in sorted(by_team):
        old = [before_load.get(n, 0) for n, t in people.items() if t == team]
        spread = max(by_team[team]) - min(by_team[team])
        print(f"    {team}: {min(by_team[team]):,} / {max(by_team[team]):,} "
              f"[{min(old):,} / {max(old):,}], {sum(by_team[team]):,} leads")
        # a greedy pass: the owners of the last leads placed lose them after the others gained (seen: 2 at 100,000
        # leads, 3 at 2,000)
        if spread > 3:
            problems.append(f"team {team}'s loads differ by {spread} after the rotation")
    admin.close()
    store.remove_sqlite_files(work)  # the work copy is rotated; the next run starts from the build again

    if profiler:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
        stats.print_stats(30)
        print("\nProfile of the real rotation (cumulative, top 30):")
        print(text.getvalue())

    if problems:
        print("\nPROBLEMS:")
        for p in problems[:20]:
            print(f"  {p}")
        return 1, figures
    print("  every moved lead changed owner, within its team, as planned")
    return 0, figures


def main(argv: list[str] | None = None) -> int:
    return run(argv)[0]


if __name__ == "__main__":
    sys.exit(main())
