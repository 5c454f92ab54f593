"""A realistic two-year CRM history to migrate (``import FILE --history``): the test data of
tests/test_history_scale.py and the input of benchmarks/history_import.py.

    python -m benchmarks.history_data --deals 10000 --out history.csv

30 salespeople in 5 teams under 5 managers, several products, 120 accounts (companies) with many deals each beside
deals of private persons, won, lost and open deals in every stage, dates over the two years before ``NOW``. Every
salesperson and product has a win rate of its own, so that per-person and per-product figures differ. Fixed seed:
the same arguments make the same file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

NOW = dt.datetime(2026, 3, 2, 9, 0)
PROCESS = "photovoltaics"
STAGES = ["register_lead", "first_contact", "first_meeting", "send_offer", "close_contract"]
TEAMS = [f"team{t}" for t in range(1, 6)]
MANAGERS = [(f"manager{t}", "manager", TEAMS[t - 1]) for t in range(1, 6)]
SALESPEOPLE = [(f"seller{i:02d}", "salesperson", TEAMS[(i - 1) // 6]) for i in range(1, 31)]
#: The floor to create before importing: (name, role, team).
FLOOR = [*MANAGERS, *SALESPEOPLE]
PRODUCTS = {"pv-home": 0.9, "pv-farm": 1.15, "pv-business": 1.05, "battery": 0.8, "heat-pump": 1.0}
ACCOUNTS = [f"Account {i:03d} sp. z o.o." for i in range(1, 121)]
#: Reasons as an old system writes them: by id, by the catalogue's label, in another case.
REASONS = ["no_budget", "Price too high", "competitor", "bad_timing", "No real need (low consumption, unsuitable roof)",
           "unreachable", "DUPLICATE", "not_a_client", "no_authority"]
HEADER = ["external_id", "company", "name", "email", "stage", "status", "created_at",
          *(f"reached_{s}" for s in STAGES[1:]), "closed_at", "close_reason", "owner", "team", "product", "value",
          "financing"]
FINANCING = ["cash", "loan", "leasing"]
#: The deals' way through the funnel (``--mix``): each stage's chance of keeping a deal, times the salesperson's and
#: the product's. "even": 0.82 in every stage (38% won, 14.3 events a deal: the file of the earlier measurements);
#: "funnel": most losses in the first stages, as a CRM's history of inbound leads has them (about 10 events a deal,
#: issue 20's figure: the leads that never answer or never meet are lost before the offer).
MIXES = {"even": (1.0, 1.0, 1.0, 1.0, 1.0), "funnel": (0.72, 0.8, 1.04, 1.1, 1.15)}


def generate(path: Path, deals: int, *, seed: int = 20, start: int = 1, mix: str = "even") -> int:
    """Write ``deals`` deals to ``path`` (external ids D<start>...) in the funnel ``mix`` (``MIXES``); returns the
    number written."""
    rng = random.Random(seed)
    stage_keep = MIXES[mix]
    skill = {name: rng.uniform(0.75, 1.25) for name, _, _ in SALESPEOPLE}
    first = NOW - dt.timedelta(days=730)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(start, start + deals):
            owner, _, team = rng.choice(SALESPEOPLE)
            product = rng.choice(list(PRODUCTS))
            created = first + dt.timedelta(minutes=rng.randrange(0, 725 * 24 * 60))
            created = created.replace(second=0, microsecond=0)
            reached: dict[str, dt.datetime] = {}
            at, stage, status, closed, reason = created, 0, "open", None, ""
            keep = 0.82 * skill[owner] * PRODUCTS[product]
            while True:
                step = dt.timedelta(hours=rng.randrange(6, 24 * 25))
                if at + step > NOW:
                    break  # still open where it is
                at += step
                if rng.random() > min(keep * stage_keep[stage], 0.97):  # lost in this stage
                    status, closed, reason = "lost", at, rng.choice(REASONS)
                    break
                if stage == len(STAGES) - 1:
                    status, closed = "won", at
                    break
                stage += 1
                reached[STAGES[stage]] = at
            company = rng.choice(ACCOUNTS) if rng.random() < 0.7 else ""
            person = f"Person {rng.randrange(1, deals // 2 + 2)}"
            # some rows give only the company; some give the stage by name, some leave it to the status
            name = "" if company and rng.random() < 0.3 else person
            email = f"{person.lower().replace(' ', '.')}@example.pl" if not company else ""
            out.writerow([
                f"D{n}", company, name, email, STAGES[stage] if status != "won" or rng.random() < 0.5 else "",
                status if status != "open" or rng.random() < 0.5 else "", _iso(created),
                *(_iso(reached[s]) if s in reached else "" for s in STAGES[1:]),
                _iso(closed) if closed else "", reason, owner, team, product,
                f"{rng.randrange(8, 400) * 250}", rng.choice(FINANCING)])
    return deals


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("history.csv"))
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--mix", choices=sorted(MIXES), default="even")
    args = parser.parse_args()
    generate(args.out, args.deals, seed=args.seed, mix=args.mix)
    print(f"{args.deals:,} deals written to {args.out}")


if __name__ == "__main__":
    main()
