"""Importing leads from a CSV file (``/import``, managers and admins): the file's text pasted into the form (forms
stay under 64 KiB), ``intake.import_csv`` with ``dry_run`` first, whose report (columns, unknown ones with a
suggestion, rejected rows with their line and reason, counts) is shown with a button that imports the same text."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import NAV, NavItem, Visit, action, page, render
from engine.errors import LeadflowError

NAV.append(NavItem("/import", "Import", "import"))

#: The name the pasted file has in the import's report.
PASTED = "pasted.csv"
ON_ERROR = ("skip", "abort")


def import_page(visit: Visit, *, status: int = 200, form: dict[str, str] | None = None, report: Any = None,
                error: str | None = None) -> Response:
    processes = sorted({row["process"] for row in visit.eng.processes.list()})
    return render(visit, "import.html", status=status, form=form or {}, report=report, error=error,
                  processes=processes, on_error=ON_ERROR)


@page("/import")
def start(visit: Visit) -> Response:
    if not visit.permissions["import"]:  # the engine's rule (users.permissions): the form only for who may use it
        return render(visit, "message.html", status=403, title=_("Refused"),
                      message=_("You may not import leads; a manager or an admin may."))
    return import_page(visit)


def _run(visit: Visit, form: dict[str, str], *, dry_run: bool) -> Response:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PASTED
        path.write_text(form.get("text", ""), encoding="utf-8")
        try:
            report = visit.eng.intake.import_csv(path, process=form.get("process", ""), owner=form.get("owner") or None,
                                                 on_error=form.get("on_error") or "skip", dry_run=dry_run)
        except LeadflowError as exc:
            return import_page(visit, status=status_of(exc), form=form, error=str(exc))
    return import_page(visit, status=200 if report["status"] != "aborted" else 422, form=form, report=report)


@action("/import/check")
def check(visit: Visit, form: dict[str, str]) -> Response:
    """The dry run: what the import would do; nothing is written."""
    return _run(visit, form, dry_run=True)


@action("/import")
def run(visit: Visit, form: dict[str, str]) -> Response:
    return _run(visit, form, dry_run=False)


