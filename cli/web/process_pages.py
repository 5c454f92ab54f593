"""Processes (``/admin/processes``): every stored version with its open leads (``processes.list``), one version's
stages and their moves with its Mermaid diagram as text (``processes.spec``, cli/present/mermaid.py), and a new
version loaded from the YAML pasted in a form (admins): ``processes.validate`` first, whose located problems are
shown, then ``processes.load``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import Visit, action, page, render
from engine.errors import LeadflowError

#: The name the pasted text has in the validator's located problems.
PASTED = "pasted.yaml"


def processes_page(visit: Visit, *, status: int = 200, problems: list[Any] | None = None, loaded: Any = None,
                   error: str | None = None, text: str = "") -> Response:
    return render(visit, "processes.html", status=status, rows=visit.eng.processes.list(), problems=problems or [],
                  loaded=loaded, error=error, text=text)


@page("/admin/processes")
def processes(visit: Visit) -> Response:
    return processes_page(visit)


@page("/admin/processes/{process}")
def process(visit: Visit, process: str) -> Response:
    from cli.present.mermaid import mermaid

    raw = visit.arg("version")
    spec = visit.eng.processes.spec(process, int(raw) if raw and raw.isdigit() else None)
    return render(visit, "process.html", spec=spec, diagram=mermaid(spec))


@action("/admin/processes")
def load(visit: Visit, form: dict[str, str]) -> Response:
    """Validate the pasted process file; load it only when it has no problem."""
    text = form.get("text", "")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PASTED
        path.write_text(text, encoding="utf-8")
        (checked,) = visit.eng.processes.validate(path, name=PASTED)
        if not checked["valid"]:
            return processes_page(visit, status=422, problems=checked["problems"], text=text,
                                  error=_("The process has problems; nothing was loaded."))
        try:
            loaded = visit.eng.processes.load(path)
        except LeadflowError as exc:
            return processes_page(visit, status=status_of(exc), error=str(exc), text=text)
    return processes_page(visit, loaded=loaded)
