"""Mail templates: where they are found, whether they are sound, and what they render to.

A stage action names a template (``welcome``); the file is ``welcome.<language>.txt.j2`` or
``welcome.txt.j2``, looked up in these folders, first match wins:

1. ``LEADFLOW_TEMPLATES`` (one folder, or several separated by ``os.pathsep``), when set;
2. ``templates/`` next to the process file;
3. the shipped templates (``processes/templates``).

In each folder the process's language variant comes before the plain name. A template is plain text
(Jinja2) whose first line is ``Subject: ...``, then an empty line, then the body. It is rendered in a
sandbox (no access to Python internals) with undefined names as errors, so a mistake in a template fails
that one mail with its reason instead of sending a half-filled message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import i18n, paths
from engine.i18n import N_, Message
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

SUFFIX = ".txt.j2"
SUBJECT = "Subject:"


class TemplateError(Exception):
    """A template that cannot be found, parsed or rendered; the message says which and why."""


def template_dirs(process_file: str | Path | None) -> list[Path]:
    """The folders searched for the templates of the process loaded from ``process_file``, in order."""
    found: list[Path] = []
    configured = os.environ.get("LEADFLOW_TEMPLATES", "").strip()
    if configured:
        found.extend(Path(p) for p in configured.split(os.pathsep) if p.strip())
    if process_file:
        found.append(Path(process_file).resolve().parent / "templates")
    found.append(paths.processes_dir() / "templates")
    unique: list[Path] = []
    for folder in found:
        if folder not in unique:
            unique.append(folder)
    return unique


def candidates(name: str, language: str) -> list[str]:
    """File names that hold template ``name`` in ``language``, preferred first."""
    return [f"{name}.{language}{SUFFIX}", f"{name}{SUFFIX}"]


def find(name: str, language: str, dirs: list[Path]) -> Path | None:
    for folder in dirs:
        for file_name in candidates(name, language):
            path = folder / file_name
            if path.is_file():
                return path
    return None


def available(dirs: list[Path]) -> list[str]:
    """The template names present in ``dirs`` (for "did you mean")."""
    names: set[str] = set()
    for folder in dirs:
        if folder.is_dir():
            for path in folder.glob(f"*{SUFFIX}"):
                names.add(path.name.removesuffix(SUFFIX).split(".")[0])
    return sorted(names)


@cache
def _environment() -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # Plain-text mail: no HTML escaping; keep the template's own line breaks at the end of blocks; a process's label
    # (engine.i18n.Text) in the language of the template (render_file).
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                                finalize=i18n.localized)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"template {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc.strerror or exc}") from None


def problem(path: Path) -> str | None:
    """What is wrong with the template file at ``path`` (read, syntax, subject line), or None."""
    from jinja2 import TemplateSyntaxError

    try:
        text = read(path)
    except TemplateError as exc:
        return str(exc)
    if not text.lstrip("\ufeff").startswith(SUBJECT):
        return Message(N_("template {name} must start with a '{subject} ...' line, then an empty line, then the body"),
                       name=path.name, subject=SUBJECT)
    try:
        _environment().parse(text)
    except TemplateSyntaxError as exc:
        return Message(N_("template {name} line {line}: {problem}"), name=path.name, line=exc.lineno,
                       problem=exc.message)
    return None


def context(*, process: dict[str, Any], stage: dict[str, Any], lead: dict[str, Any], fields: dict[str, Any],
            client: dict[str, Any], owner: dict[str, Any] | None, mail: dict[str, Any],
            sender: dict[str, Any]) -> dict[str, Any]:
    """What a template sees (docs/automation.md lists every name). ``fields`` holds every declared field,
    None when unset, so ``{% if lead.fields.x %}`` works and a misspelt field name is an error."""
    return {"process": process, "stage": stage, "lead": {**lead, "fields": fields}, "client": client,
            "owner": owner, "mail": mail, "sender": sender}


_SAMPLES = {"text": "sample text", "number": 42, "money": "1000.00", "date": "2026-01-05", "bool": True}


def sample_context(document: dict[str, Any], stage: dict[str, Any], kind: str, to: str) -> dict[str, Any]:
    """A context with every name set, from a process document (the loader renders each template with it)."""
    fields = {f["id"]: (f["options"][0] if f["type"] == "choice" else
                          f["options"][:2] if f["type"] == "choices" else _SAMPLES[f["type"]])
              for f in document.get("fields", [])}
    owner = {"name": "Anna Nowak", "email": "anna.nowak@example.com"}
    language = document.get("language", "en")
    title, name = i18n.label(document["title"], language, language), i18n.label(stage["name"], language, language)
    return context(
        process={"id": document["id"], "title": title},
        stage={"id": stage["id"], "name": name},
        lead={"id": 1, "process": document["id"], "stage": stage["id"], "stage_name": name,
              "status": LeadStatus.OPEN, "owner": owner["name"], "team": "north", "product": "sample product",
              "source": "web_form", "value": "1000.00", "currency": document["currency"],
              "created_at": "2026-01-05T09:00:00", "next_contact": "2026-01-07T10:30:00",
              "url": "https://crm.example.com/leads/1"},
        fields=fields,
        client={"name": "Łukasz Żółć", "company": "Żółć sp. z o.o.", "email": "lukasz@example.pl",
                "phone": "+48 600 100 200"},
        owner=owner,
        mail={"kind": kind, "to": to, "due_at": "2026-01-05T09:00:00"},
        sender={"name": "leadflow", "email": "sales@example.com"},
    )


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    template: str  # the file used, e.g. welcome.pl.txt.j2


def render(name: str, language: str, dirs: list[Path], values: dict[str, Any]) -> Rendered:
    """Render template ``name`` with ``values`` (from ``context``); raises ``TemplateError`` saying why it
    cannot be."""
    path = find(name, language, dirs)
    if path is None:
        looked = " or ".join(candidates(name, language))
        raise TemplateError(f"template '{name}' not found: no {looked} in {', '.join(map(str, dirs))}")
    return render_file(path, values)


def render_file(path: Path, values: dict[str, Any]) -> Rendered:
    trouble = problem(path)
    if trouble:
        raise TemplateError(trouble)
    # NAME.pl.txt.j2 is written in Polish, NAME.txt.j2 in English: the labels it shows speak the same language
    written_in = path.name.removesuffix(SUFFIX).rpartition(".")[2] if path.name.count(".") > 2 else i18n.SOURCE
    try:
        with i18n.using(written_in):
            text = _environment().from_string(read(path).lstrip("\ufeff")).render(**values)
    except Exception as exc:  # a template is the admin's code: any failure fails this mail, with its reason
        raise TemplateError(f"template {path.name} failed to render: {type(exc).__name__}: {exc}") from None
    first, _, rest = text.partition("\n")
    subject = first.removeprefix(SUBJECT).strip()
    if not subject:
        raise TemplateError(f"template {path.name} rendered an empty subject")
    return Rendered(subject=subject, body=rest.lstrip("\n"), template=path.name)
