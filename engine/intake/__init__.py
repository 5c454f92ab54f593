"""Leads from outside: recognising what an inquiry's columns or keys mean, checking an inquiry by the
process's rules, and the bulk CSV import.

One checker (``InquiryChecker``) serves the CSV import and the HTTP intake, so a row of a file and a form
post are typed and refused alike, by the same functions ``Engine.add_lead`` uses (``engine.rules``).

The import streams the file once and writes in batches with driver-level ``executemany``, in ONE
transaction: a bad file, ``on_error="abort"`` with a bad row, a dry run or a killed process leave the
database exactly as before, and a rerun cannot create duplicates. Every lead it writes is what
``Engine.add_lead`` would have stored for the same input: the same ``created`` event, applied by
``engine.state.apply`` (once per distinct first-stage outcome, then reused for every lead like it), the
same task rows and projections, written by the same ``store.write_leads`` (tests/test_intake_import.py proves it
lead by lead), and its owner decided by the same ``assignment.owner_of_new_lead``.

The package: ``columns`` (what a column means), ``inquiry`` (checking one inquiry), ``csv_file`` (reading the
file), ``bulk_import`` (the import), ``history_import`` (deals from another CRM with their history), ``export`` (the
export).
"""

from __future__ import annotations

from engine.intake.bulk_import import BulkImport, ImportOptions, run_import
from engine.intake.columns import (
    ATTRIBUTES,
    IGNORE,
    STATE_COLUMNS,
    SYNONYMS,
    Column,
    ColumnPlan,
    header_key,
    load_mapping,
    plan_columns,
)
from engine.intake.csv_file import (
    DELIMITERS,
    FORMULA_STARTS,
    CsvFile,
    detect_delimiter,
    file_sha256,
    neutralise,
    unneutralise,
)
from engine.intake.export import EXPORT_COLUMNS, EXPORT_TYPES, export_csv, export_rows
from engine.intake.history_columns import HISTORY_COLUMNS, reason_map
from engine.intake.history_import import run_history_import
from engine.intake.inquiry import FieldError, Inquiry, InquiryErrors, check_inquiry, check_submission, find_client

__all__ = [
    "ATTRIBUTES",
    "DELIMITERS",
    "EXPORT_COLUMNS",
    "EXPORT_TYPES",
    "FORMULA_STARTS",
    "HISTORY_COLUMNS",
    "IGNORE",
    "STATE_COLUMNS",
    "SYNONYMS",
    "BulkImport",
    "Column",
    "ColumnPlan",
    "CsvFile",
    "FieldError",
    "ImportOptions",
    "Inquiry",
    "InquiryErrors",
    "check_inquiry",
    "check_submission",
    "detect_delimiter",
    "export_csv",
    "export_rows",
    "file_sha256",
    "find_client",
    "header_key",
    "load_mapping",
    "neutralise",
    "plan_columns",
    "reason_map",
    "run_history_import",
    "run_import",
    "unneutralise",
]
