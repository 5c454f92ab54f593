"""The CSV export of the leads a user may see, re-importable, formula cells neutralised."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import i18n, policy, rules
from engine.intake.csv_file import neutralise
from engine.spec import ProcessSpec
from engine.store import clients, leads

# -- the export --------------------------------------------------------------------------------------

#: The lead's columns in an export; the process's fields follow, one column each (by field id).
EXPORT_COLUMNS = ("id", "process", "stage", "status", "owner", "team", "name", "company", "email", "phone",
                  "source", "product", "value", "created_at")


#: What each of EXPORT_COLUMNS holds (a spreadsheet's cell type); a field's column holds its field's type.
EXPORT_TYPES = ("int", "text", "text", "text", "text", "text", "text", "text", "text", "phone", "text", "text",
                "money", "datetime")


def _export_value(value: Any, kind: str = "text", decimal_mark: str = ".") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # a choices field: its options as an import reads them back
        return ",".join(map(str, value))
    if decimal_mark != "." and kind in ("money", "number"):
        return str(value).replace(".", decimal_mark)
    return str(value)


def export_rows(conn: Connection, *, actor: policy.Actor, specs: list[ProcessSpec],
                ) -> tuple[list[str], list[str], Iterator[list[Any]]]:
    """The columns, their types (``EXPORT_TYPES``, then each field's type) and the rows of the leads of ``specs``'s
    processes the actor may see, in the stored forms: money a decimal string, a date ISO, a number a number."""
    field_types: dict[str, str] = {}
    for spec in specs:
        for f in spec.fields:
            field_types.setdefault(f.id, f.type if f.type in ("money", "number", "date", "bool") else "text")
    field_ids = list(field_types)
    query = (sa.select(leads.c.id, leads.c.process, leads.c.stage, leads.c.status, leads.c.owner, leads.c.team,
                       clients.c.name, clients.c.company, clients.c.email, clients.c.phone, leads.c.source,
                       leads.c.product, leads.c.value_minor, leads.c.created_at, leads.c.fields_json)
             .join(clients, clients.c.id == leads.c.client_id)
             .where(leads.c.process.in_([s.id for s in specs])).order_by(leads.c.id))

    def rows() -> Iterator[list[Any]]:
        for row in conn.execution_options(yield_per=5000).execute(policy.visible_leads(actor, query)):
            fields = json.loads(row.fields_json)
            yield [row.id, row.process, row.stage, row.status, row.owner, row.team, row.name, row.company,
                   row.email, row.phone, row.source, row.product, rules.minor_to_money(row.value_minor),
                   row.created_at.isoformat(), *(fields.get(f) for f in field_ids)]

    return [*EXPORT_COLUMNS, *field_ids], [*EXPORT_TYPES, *field_types.values()], rows()


def export_csv(conn: Connection, out: IO[str], *, actor: policy.Actor, specs: list[ProcessSpec],
               excel: bool = False) -> int:
    """Write the leads of ``specs``'s processes the actor may see as CSV to ``out``; returns the number of leads.

    Every cell a spreadsheet would take for a formula is neutralised. ``excel``: a BOM, semicolons, CRLF and the
    reader's decimal mark in amounts and numbers (``45000,50`` in Polish, Romanian and Russian), what Excel in
    Poland, Romania or Russia opens as numbers without an import dialogue."""
    columns, types, rows = export_rows(conn, actor=actor, specs=specs)
    if excel:
        out.write("\ufeff")
    decimal_mark = "," if excel and i18n.language() in ("pl", "ro", "ru") else "."
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n" if excel else "\n")
    writer.writerow(columns)
    count = 0
    for cells in rows:
        writer.writerow([neutralise(_export_value(cell, kind, decimal_mark))
                         for cell, kind in zip(cells, types, strict=True)])
        count += 1
    return count
