"""Processes (``/admin/processes``): every stored version with its open leads (``processes.list``), one version's
stages and their moves with its Mermaid diagram as text (``processes.spec``, cli/present/mermaid.py), and a new
version loaded from a process file uploaded (``multipart/form-data``, at most ``MAX_YAML``; UTF-8) or its YAML
pasted (admins): ``processes.validate`` first, whose located problems are
shown, then ``processes.load``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import Visit, action, page, render
from engine import i18n
from engine.errors import LeadflowError

#: The name the pasted text has in the validator's located problems (an uploaded file keeps its own).
PASTED = "pasted.yaml"
#: The largest process file the form uploads.
MAX_YAML = 2**20


def processes_page(visit: Visit, *, status: int = 200, problems: list[Any] | None = None, loaded: Any = None,
                   error: str | None = None, text: str = "") -> Response:
    return render(visit, "processes.html", status=status, rows=visit.eng.processes.list(), problems=problems or [],
                  loaded=loaded, error=error, text=text, max_mib=MAX_YAML // 2**20)


@page("/admin/processes")
def processes(visit: Visit) -> Response:
    return processes_page(visit)


@page("/admin/processes/{process}")
def process(visit: Visit, process: str) -> Response:
    from cli.present.mermaid import mermaid

    raw = visit.arg("version")
    spec = visit.eng.processes.spec(process, int(raw) if raw and raw.isdigit() else None)
    return render(visit, "process.html", spec=spec, diagram=mermaid(spec))


@action("/admin/processes", upload=MAX_YAML)
def load(visit: Visit, form: dict[str, str]) -> Response:
    """Validate the uploaded or pasted process file; load it only when it has no problem."""
    name = PASTED
    text = form.get("text", "")
    if form.get("file.path"):
        name = Path(form.get("file_name", "")).name or PASTED
        try:
            text = Path(form["file.path"]).read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            return processes_page(visit, status=422, error=_(
                "The file %(name)s is not UTF-8 text: byte 0x%(byte)s at position %(at)s is not UTF-8 (a process "
                "file is YAML in UTF-8; save it so and upload it again). Nothing was loaded.",
                name=name, byte=format(exc.object[exc.start], "02x"), at=exc.start))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PASTED
        path.write_text(text, encoding="utf-8")
        (checked,) = visit.eng.processes.validate(path, name=name)
        if not checked["valid"]:
            return processes_page(visit, status=422, problems=checked["problems"], text=text,
                                  error=_("The process has problems; nothing was loaded."))
        try:
            loaded = visit.eng.processes.load(path)
        except LeadflowError as exc:
            return processes_page(visit, status=status_of(exc), error=i18n.error_text(exc), text=text)
    return processes_page(visit, loaded=loaded)
