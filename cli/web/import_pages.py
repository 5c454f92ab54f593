"""Importing leads from a CSV file (``/import``, managers and admins; deals with their history from another CRM,
admins): the file uploaded (``multipart/form-data``, at most ``MAX_CSV``) or its text pasted, ``intake.import_csv``
with ``dry_run`` first, whose report (columns, unknown ones with a suggestion, rejected rows with their line and
reason, counts) is shown with a button that imports the same file (kept for the confirm: cli/web/uploads.py) or
text. The import runs as a job of the server (``intake.start_import``): the confirm answers at once with the job's
page (``/import/jobs/{id}``), which shows its progress (rows read of the file's rows, accepted, rejected) until the
import ends, then its report, or why it failed. The page follows the job with htmx (``#job`` fetched again every
second) and, without JavaScript, reloads itself (``<meta http-equiv="refresh">``) while the job runs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web import uploads
from cli.web.text import _
from cli.web.views import NAV, NavItem, Visit, action, not_found, page, redirect, render
from engine import i18n
from engine.errors import LeadflowError, NotFoundError
from engine.i18n import N_

NAV.append(NavItem("/import", N_("Import"), "import"))

#: The name the pasted file has in the import's report.
PASTED = "pasted.csv"
ON_ERROR = ("skip", "abort")
#: The largest CSV file the form uploads.
MAX_CSV = 20 * 2**20
#: Seconds between two looks at a running job (htmx, or the page reloading itself without JavaScript).
REFRESH = 1


def import_page(visit: Visit, *, status: int = 200, form: dict[str, str] | None = None, report: Any = None,
                error: str | None = None) -> Response:
    processes = sorted({row["process"] for row in visit.eng.processes.list()})
    return render(visit, "import.html", status=status, form=form or {}, report=report, error=error,
                  processes=processes, on_error=ON_ERROR, max_mib=MAX_CSV // 2**20,
                  history_allowed=visit.permissions["import_history"])


def _refused(visit: Visit) -> Response | None:
    """403 for who may not import (the engine's rule, ``users.permissions``), before a file is kept or read."""
    if visit.permissions["import"]:
        return None
    return render(visit, "message.html", status=403, title=_("Refused"),
                  message=_("You may not import leads; a manager or an admin may."))


@page("/import")
def start(visit: Visit) -> Response:
    return _refused(visit) or import_page(visit)


def _options(form: dict[str, str]) -> dict[str, Any]:
    """The import's options from the form: a history import (the box ticked: any value) takes the old system's closure
    reasons mapped, one ``OLD=NEW`` a line; the engine refuses what does not fit (an owner for a history, a mapping
    of reasons without one)."""
    return {"process": form.get("process", ""), "owner": form.get("owner") or None,
            "on_error": form.get("on_error") or "skip", "history": bool(form.get("history")),
            "map_reason": form.get("map_reason", "").strip() or None}


def _check(visit: Visit, path: Path, form: dict[str, str]) -> Response:
    """The dry run, within the request: what the import would do."""
    try:
        report = visit.eng.intake.import_csv(path, dry_run=True, **_options(form))
    except LeadflowError as exc:
        return import_page(visit, status=status_of(exc), form=form, error=i18n.error_text(exc))
    return import_page(visit, status=200 if report["status"] != "aborted" else 422, form=form, report=report)


def _start(visit: Visit, path: Path, form: dict[str, str]) -> Response:
    """The import as a job (it keeps a copy of the file): its page, where its progress shows."""
    try:
        job = visit.eng.intake.start_import(path, **_options(form))
    except LeadflowError as exc:
        return import_page(visit, status=status_of(exc), form=form, error=i18n.error_text(exc))
    return redirect(f"/import/jobs/{job['id']}")


def _run(visit: Visit, form: dict[str, str], *, dry_run: bool) -> Response:
    """The uploaded file (kept for the confirm), a file kept from the dry run, or the pasted text, checked
    (``dry_run``) or imported by a job; a kept file is dropped once its job started."""
    refused = _refused(visit)
    if refused is not None:  # an upload of who may not import is not kept, not even for the hour of a check
        return refused
    act = _check if dry_run else _start
    me = visit.me["name"]
    if form.get("file.path"):
        ident, path = uploads.stage(Path(form["file.path"]), me)
        form = {**form, "upload": ident, "file_name": Path(form.get("file_name", "")).name, "text": ""}
    elif form.get("upload"):
        found = uploads.staged(form["upload"], me)
        if found is None:
            return import_page(visit, status=410, form={**form, "upload": ""},
                               error=_("The checked file is no longer kept (an hour at most); upload it again."))
        ident, path = form["upload"], found
    else:
        with tempfile.TemporaryDirectory() as folder:
            pasted = Path(folder) / PASTED
            pasted.write_text(form.get("text", ""), encoding="utf-8")
            return act(visit, pasted, form)
    answer = act(visit, path, form)
    if not dry_run and answer.status_code == 303:
        uploads.drop(ident)
    return answer


@action("/import/check", upload=MAX_CSV)
def check(visit: Visit, form: dict[str, str]) -> Response:
    """The dry run: what the import would do; nothing is written."""
    return _run(visit, form, dry_run=True)


@action("/import", upload=MAX_CSV)
def run(visit: Visit, form: dict[str, str]) -> Response:
    return _run(visit, form, dry_run=False)


@page("/import/jobs/{job_id:int}")
def job(visit: Visit, job_id: int) -> Response:
    """A job's progress while it runs, then its report (the status of today's answer: 422 for an aborted or a
    failed import), or, to htmx following it, always 200 (htmx swaps only a 2xx answer in)."""
    try:
        found = visit.eng.intake.import_job(job_id)
    except NotFoundError:
        return not_found(visit, _("Import job %(id)s does not exist.", id=job_id))
    ended_badly = found["status"] in ("aborted", "failed")
    status = 422 if ended_badly and "HX-Request" not in visit.request.headers else 200
    return render(visit, "import_job.html", status=status, job=found, report=found["report"],
                  form={"file_name": found["file_name"]}, refresh=REFRESH)
