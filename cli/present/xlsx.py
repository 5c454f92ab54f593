"""The export as an Excel workbook (openpyxl): real numbers, dates and money cells with their formats, so Excel
and LibreOffice in any language read them as numbers; phones and every other text as text cells (no formula, no
visible apostrophe)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import results

#: Cell formats; Excel shows them with the reader's own separators (``45 000,50 PLN`` in Polish).
MONEY_FORMAT = '#,##0.00 "{currency}"'
NUMBER_FORMAT = "General"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"


def _cell_value(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return None
    if kind == "money":
        return Decimal(str(value))
    if kind == "date":
        return dt.date.fromisoformat(str(value))
    if kind == "datetime":
        return dt.datetime.fromisoformat(str(value))
    if kind in ("int", "number", "bool"):
        return value
    return str(value)


def write_workbook(table: results.ExportTable, path: Path) -> int:
    """Write ``table`` (``intake.export_table``) to ``path`` as one sheet; returns the number of leads."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "leads"
    sheet.append(table["columns"])
    process_at = table["columns"].index("process")
    for row in table["rows"]:
        currency = table["currencies"].get(row[process_at], "")
        cells = []
        for value, kind in zip(row, table["types"], strict=True):
            cell_value = _cell_value(value, kind)
            cells.append(cell_value)
        sheet.append(cells)
        for cell, kind in zip(sheet[sheet.max_row], table["types"], strict=True):
            if cell.value is None:
                continue
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text stays text: '=...' is not a formula, '+48 601...' not a number
            elif kind == "money":
                cell.number_format = MONEY_FORMAT.format(currency=currency)
            elif kind == "date":
                cell.number_format = DATE_FORMAT
            elif kind == "datetime":
                cell.number_format = DATETIME_FORMAT
    sheet.freeze_panes = "A2"
    for index, name in enumerate(table["columns"], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, len(name) + 4))
    book.save(path)
    return len(table["rows"])
