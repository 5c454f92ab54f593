"""A realistic demo database: the shipped processes, a two-team sales floor and a pipeline in flight.

Everything goes through the engine's public API (docs/api.md: ``Engine``, ``clock.frozen``, ``paths``) at
back-dated instants, exactly as if the team had worked for the past weeks, so the demo exercises the same rules
a real user meets and could be written by any integrator. Deterministic: a fixed seed and a fixed "now"
(``DEMO_NOW``). ``leadflow demo`` prints what ``build_demo`` returns.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path
from typing import Any

from cli.files import DEMO_APPLICATION_ID
from engine import clock, paths
from engine.api import Engine
from engine.errors import LeadflowError
from engine.spec import FieldSpec, ProcessSpec
from engine.vocab import LeadStatus, Role, TaskStatus

DEMO_NOW = dt.datetime(2026, 3, 16, 10, 0)  # a Monday morning

USERS = [
    ("marta", Role.MANAGER, "north"),
    ("anna", Role.SALESPERSON, "north"),
    ("piotr", Role.SALESPERSON, "north"),
    ("radu", Role.MANAGER, "south"),
    ("ioana", Role.SALESPERSON, "south"),
    ("stefan", Role.SALESPERSON, "south"),
]
#: One person per back-office department; added when a loaded process declares the role.
DEPARTMENT_PEOPLE = {
    "analyst": "olga",
    "technician": "tomasz",
    "underwriter": "ursula",
    "credit_analyst": "cristian",
    "risk_analyst": "rafal",
    "back_office": "beata",
    "compliance": "celina",
    "solutions_engineer": "sebastian",
    "customer_success": "cezara",
}

CLIENTS = [
    ("Łukasz Żółć", None, "lukasz.zolc@example.pl", "+48 601 200 300"),
    ("Agnieszka Wiśniewska", None, "a.wisniewska@example.pl", "+48 602 111 222"),
    ("Grzegorz Brzęczyszczykiewicz", "Agro-Pol Sp. z o.o.", "biuro@agropol.example.pl", "+48 22 555 01 02"),
    ("Ștefan Popescu", "Popescu Transport SRL", "stefan@popescu.example.ro", "+40 721 000 111"),
    ("Ioana Mărgărit", None, "ioana.margarit@example.ro", "+40 744 123 456"),
    ("Жанна Смирнова", "ООО Север", "zhanna@sever.example.ru", "+7 912 345 67 89"),
    ("Małgorzata Kowalczyk", None, "m.kowalczyk@example.pl", "+48 603 333 444"),
    ("Andrei Dumitrescu", "Dumitrescu Logistic SRL", "andrei@dlog.example.ro", "+40 722 999 888"),
    ("Paweł Nowak", "Nowak Piekarnia", "pawel@piekarnia.example.pl", "+48 604 555 666"),
    ("Elena Vasilescu", None, "elena.v@example.ro", "+40 745 222 333"),
    ("Katarzyna Zając", None, "kasia.zajac@example.pl", "+48 605 777 888"),
    ("Mihai Ionescu", "SoftMihai SRL", "mihai@softmihai.example.ro", "+40 723 444 555"),
    ("Tomasz Wójcik", "Wójcik Stolarnia", "tomasz@stolarnia.example.pl", "+48 606 999 000"),
    ("Ольга Кузнецова", None, "olga.k@example.ru", "+7 903 111 22 33"),
    ("Bogdan Lăcătuș", "Lăcătuș Construct SRL", "bogdan@lconstruct.example.ro", "+40 724 666 777"),
    ("Zofia Kamińska", None, "zofia.kaminska@example.pl", "+48 607 121 343"),
    ("Dorota Lewandowska", "Dom i Ogród", "dorota@domogrod.example.pl", "+48 608 454 676"),
    ("Radu Constantin", None, "radu.c@example.ro", "+40 725 787 989"),
    ("Jakub Szymański", None, "jakub.sz@example.pl", "+48 609 010 203"),
    ("Anca Stănescu", "Stănescu Farm SRL", "anca@stfarm.example.ro", "+40 726 304 050"),
]

SOURCES = ["referral", "organic", "paid_campaign", "mailing", "web_form", "fair"]


def sample_value(field: FieldSpec, rng: random.Random, today: dt.date) -> Any:
    """A plausible value for a required field the demo has to fill, within the field's bounds."""
    field_type = field.type
    if field_type == "choice":
        return rng.choice(field.options)
    if field_type == "choices":
        return ",".join(rng.sample(field.options, rng.randint(1, len(field.options))))
    if field_type == "bool":
        return rng.choice([True, False])
    if field_type in ("number", "money"):
        low = int(field.min) if field.min is not None else (1 if field_type == "number" else 8_000)
        high = int(field.max) if field.max is not None else (120 if field_type == "number" else 90_000)
        number = rng.randint(low, max(low, min(high, low + 100 if field_type == "number" else high)))
        return f"{number}.00" if field_type == "money" else number
    if field_type == "date":
        return (today + dt.timedelta(days=rng.randint(20, 90))).isoformat()
    return "Agreed at the meeting"


def build_demo(db_path: str | Path) -> dict[str, Any]:
    """Create (or re-create) the demo database; return what the CLI prints.

    The caller has made sure that ``db_path`` is new or an earlier demo (``cli.files.demo_target``). The file is
    marked as a demo (``cli.files.DEMO_APPLICATION_ID`` in its header) before anything else is written, so that
    even a build that stopped half way can be rebuilt, and nothing but a demo is ever taken for one.
    """
    path = Path(db_path)
    for suffix in ("", "-wal", "-shm"):  # the file and SQLite's write-ahead log, if a crashed run left one
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    marker = sqlite3.connect(path)
    try:
        marker.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        marker.commit()
    finally:
        marker.close()
    url = f"sqlite:///{path}"
    admin = Engine.open(url, user="admin")
    rng = random.Random(20260316)
    start = DEMO_NOW - dt.timedelta(days=40)
    with clock.frozen(start):
        admin.init(purpose="demo")
        loaded = [admin.processes.load(f)["process"] for f in sorted(paths.processes_dir().glob("*.yaml"))]
        declared = {r.id for p in loaded for r in admin.processes.spec(p).roles}
        people = [*USERS, *((n, r, None) for r, n in DEPARTMENT_PEOPLE.items() if r in declared)]
        for name, role, team in people:
            admin.users.add(name, role, team)

    sellers = [("anna", "north"), ("piotr", "north"), ("ioana", "south"), ("stefan", "south")]
    managers = {"north": "marta", "south": "radu"}
    totals = {status.value: 0 for status in LeadStatus}
    lead_ids = []
    client_of: dict[str, int] = {}
    for i, (name, company, email, phone) in enumerate(CLIENTS * 2):
        process = loaded[i % len(loaded)]
        owner, team = sellers[i % len(sellers)]
        created = start + dt.timedelta(days=rng.randint(0, 36), hours=rng.randint(0, 7))
        spec = admin.processes.spec(process)
        with clock.frozen(created):
            lead = admin.as_user(owner).leads.add(
                process=process, name=name, company=company, email=email, phone=phone,
                source=rng.choice(SOURCES), product=spec.title, value=f"{rng.randint(5, 120) * 1000}.00",
                client_id=client_of.get(name))  # the second round: the same client, another product
        client_of.setdefault(name, lead["client_id"])
        lead_ids.append(lead["id"])
        steps = rng.choice([0, 1, 1, 2, 2, 3, 4, 8, 8, 8])
        moment = created
        outcome = _walk(admin, spec, lead["id"], owner, managers[team], steps, moment, rng)
        totals[outcome] += 1

    anna = admin.as_user("anna")
    with clock.frozen(DEMO_NOW):
        tasks = anna.tasks.list()
        anna_leads = anna.leads.list(status=LeadStatus.OPEN)
        example = max(anna_leads, key=lambda x: x["stage_entered_at"] or "") if anna_leads else None
        example_lead = anna.leads.get(example["id"]) if example else None
        history = anna.leads.history(example["id"]) if example else []
    admin.close()
    db = path.as_posix()
    return {
        "db": db,
        "as_of": DEMO_NOW.isoformat(),
        "processes": loaded,
        "users": [f"{n} ({r}{', ' + t if t else ''})" for n, r, t in people],
        "leads": len(lead_ids),
        **totals,
        "salesperson": "anna",
        "tasks": tasks,
        "example_lead": example_lead,
        "example_history": history,
        "try": [
            f"export LEADFLOW_DB=sqlite:///{db} LEADFLOW_NOW={DEMO_NOW.isoformat()} LEADFLOW_USER=anna",
            "leadflow task list",
            f"leadflow lead show {example['id'] if example else 1}",
            "leadflow lead list --status open",
            "leadflow process show photovoltaics --mermaid",
        ],
    }


def _walk(admin: Engine, spec: ProcessSpec, lead_id: int, owner: str, manager: str, steps: int,
          moment: dt.datetime, rng: random.Random) -> LeadStatus:
    """Work a lead forward ``steps`` times the way its team would; maybe win or lose it. Returns its status."""
    seller = admin.as_user(owner)
    for _ in range(steps):
        moment += dt.timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 3))
        if moment >= DEMO_NOW - dt.timedelta(hours=2):
            break
        with clock.frozen(moment):
            lead = seller.leads.get(lead_id)
            stage = spec.stage(lead["stage"])
            assert stage is not None
            missing = {f: sample_value(spec.field_spec(f), rng, moment.date())  # type: ignore[arg-type]
                       for f in stage.required_fields if lead["fields"].get(f) is None}
            if missing:
                seller.leads.set_fields(lead_id, missing)
            for task in seller.leads.get(lead_id)["tasks"]:
                if task["stage"] == stage.id and task["state"] == TaskStatus.OPEN and task["mandatory"]:
                    doer = seller if task["owner"] == spec.owner_role else admin.as_user(
                        DEPARTMENT_PEOPLE.get(task["owner"] or "", manager))
                    doer.leads.complete_task(lead_id, task["id"], note="done during the demo week")
            if rng.random() < 0.08:
                reason = rng.choice([r.id for r in spec.closure_reasons])
                seller.leads.close(lead_id, reason, note="Client's decision after the call")
                return LeadStatus.LOST
            try:
                if stage.id == spec.won_stage:
                    seller.leads.win(lead_id)
                    return LeadStatus.WON
                seller.leads.advance(lead_id)
            except LeadflowError:
                break  # e.g. a conditional transition this lead's fields do not meet: it waits here
    return LeadStatus.OPEN
