"""The CSV export of the leads a user may see, re-importable, formula cells neutralised."""

from __future__ import annotations

import csv
import json
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import policy, rules
from engine.intake.csv_file import neutralise
from engine.spec import ProcessSpec
from engine.store import clients, leads

# -- the export --------------------------------------------------------------------------------------

#: The lead's columns in an export; the process's fields follow, one column each (by field id).
EXPORT_COLUMNS = ("id", "process", "stage", "status", "owner", "team", "name", "company", "email", "phone",
                  "source", "product", "value", "created_at")


def _export_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # a choices field: its options as an import reads them back
        return ",".join(map(str, value))
    return str(value)


def export_csv(conn: Connection, out: IO[str], *, actor: policy.Actor, specs: list[ProcessSpec],
               excel: bool = False) -> int:
    """Write the leads of ``specs``'s processes the actor may see as CSV to ``out``; returns the number of leads.

    Every cell a spreadsheet would take for a formula is neutralised. ``excel``: a BOM, semicolons and CRLF,
    what Excel in Poland, Romania or Russia opens without an import dialogue."""
    field_ids = list(dict.fromkeys(f.id for spec in specs for f in spec.fields))
    if excel:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n" if excel else "\n")
    writer.writerow([*EXPORT_COLUMNS, *field_ids])
    query = (sa.select(leads.c.id, leads.c.process, leads.c.stage, leads.c.status, leads.c.owner, leads.c.team,
                       clients.c.name, clients.c.company, clients.c.email, clients.c.phone, leads.c.source,
                       leads.c.product, leads.c.value_minor, leads.c.created_at, leads.c.fields_json)
             .join(clients, clients.c.id == leads.c.client_id)
             .where(leads.c.process.in_([s.id for s in specs])).order_by(leads.c.id))
    count = 0
    for row in conn.execution_options(yield_per=5000).execute(policy.visible_leads(actor, query)):
        fields = json.loads(row.fields_json)
        cells = [str(row.id), row.process, row.stage, row.status, row.owner, row.team, row.name, row.company,
                 row.email, row.phone, row.source, row.product, rules.minor_to_money(row.value_minor),
                 row.created_at.isoformat(), *(fields.get(f) for f in field_ids)]
        writer.writerow([neutralise(_export_value(c)) for c in cells])
        count += 1
    return count
