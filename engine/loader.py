"""Load process files: YAML in, an immutable ``ProcessSpec`` out, or every problem located.

The loader is the only door for process definitions. It reads the file
defensively (size limit, UTF-8, no tabs, one document, safe tags only, no
duplicate keys, bounded alias expansion: ``engine.process_yaml``), validates the
data against ``schemas/process.schema.json`` (``engine.process_schema``), runs the
semantic checks a schema cannot express (``engine.semantics``), and only then
builds the frozen spec. A file with any problem yields nothing but its problems,
each with file, line, column, document path and a sentence an admin understands.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from engine.document import Document, Path_, format_path
from engine.errors import Problem, ProcessFileError, suggest
from engine.formats import FORMAT, format_problems, upgrade_document, upgraded_text
from engine.i18n import N_, Message
from engine.process_schema import describe_value, schema, schema_problems
from engine.process_yaml import MAX_DEPTH, MAX_FILE_BYTES, file_too_big, parse
from engine.semantics import build_spec, semantic_problems
from engine.spec import ProcessSpec

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "Document",
    "Path_",
    "check_bytes",
    "check_file",
    "expand_paths",
    "format_path",
    "load_file",
    "parse",
    "path_problem",
    "rank",
    "schema",
    "schema_problems",
    "suggest",
    "upgrade_file",
]

PROCESS_SUFFIXES = (".yaml", ".yml")
NO_SUCH_FILE = Message(N_("no such file or folder"))


# -- the public entry points ------------------------------------------------------------------

def check_bytes(raw: bytes, file: str, template_dirs: list[Path] | None = None
                ) -> tuple[ProcessSpec | None, list[Problem]]:
    """Parse, validate and build; returns the spec, or ``None`` with every problem found, best first.

    Mail templates are looked up in ``template_dirs`` (default: ``engine.messages.template_dirs(file)``).
    Every problem the file has is found in one run wherever the file can still be read: the YAML
    reader's, the schema's and the semantic checks', each once (see ``rank``).
    """
    doc, reading = parse(raw, file)
    if doc is None:
        return None, reading
    if not isinstance(doc.data, dict):
        return None, rank(reading, [doc.problem((), Message(N_("expected a mapping of keys to values at the top, got "
                                                               "{value}"), value=describe_value(doc.data)))])
    shape = schema_problems(doc)
    meaning = semantic_problems(doc, template_dirs, refused=doc.refused)
    meaning += format_problems(doc)
    problems = rank(reading, shape, meaning)
    if problems:
        return None, problems
    return build_spec(upgrade_document(doc.data)), []


def rank(*groups: list[Problem]) -> list[Problem]:
    """Every problem once, best first: the groups in order (how the YAML reads, the shape the schema
    wants, the meaning the semantic checks want), each from the top of the file down.

    An earlier group's problem can cause a later group's, never the other way round, so fixing the
    first problem listed is never wasted work.
    """
    seen: set[Problem] = set()
    out: list[Problem] = []
    for group in groups:
        for problem in sorted(group, key=lambda p: (p.line, p.column)):
            if problem not in seen:
                seen.add(problem)
                out.append(problem)
    return out


def check_file(path: Path | str) -> tuple[ProcessSpec | None, list[Problem]]:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:  # report the file's real size, not the bytes read to notice it
                return None, [file_too_big(str(path), max(os.fstat(handle.fileno()).st_size, len(raw)))]
    except OSError as exc:
        return None, [Problem(str(path), 1, 1, "", _unreadable(path, exc))]
    return check_bytes(raw, str(path))


def _unreadable(path: Path, exc: OSError | None = None) -> str:
    """Why ``path`` cannot be read, in one sentence."""
    if (exc is not None and exc.errno == errno.ELOOP) or (exc is None and _loops(path)):
        return Message(N_("cannot read the file: it is a symbolic link loop (following its links leads back to it)"))
    if path.is_symlink() and not path.exists():
        return Message(N_("cannot read the file: it is a symbolic link to '{target}', which does not exist"),
                       target=os.readlink(path))
    if exc is None:
        return NO_SUCH_FILE
    return Message(N_("cannot read the file: {reason}"), reason=exc.strerror or str(exc))


def _loops(path: Path) -> bool:
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop so
        return True
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def path_problem(given: str) -> Problem | None:
    """Why a path named on the command line cannot be checked (missing, a broken or looping link), or None."""
    path = Path(given)
    if path.exists():
        return None
    message = _unreadable(path)
    if message == NO_SUCH_FILE and given.endswith(("/", "\\")):
        message = Message(N_("no such folder"))
    return Problem(given, 1, 1, "", message)


def upgrade_file(path: Path | str) -> tuple[bytes | None, list[Problem]]:
    """A valid process file of an older format rewritten in the current one, comments and layout kept; or None
    with the problems that stop it (the file's own, or that it is in the current format already).

    The rewrite is checked before it is given back: it loads to the very spec the file loads to. A file that
    the current format asks more of (format 2: a required field someone working its stage can write) is not
    rewritten: the problems of its rewrite say what to add.
    """
    path = Path(path)
    spec, problems = check_file(path)
    if spec is None:
        return None, problems
    raw = path.read_bytes()
    doc, _ = parse(raw, str(path))
    assert doc is not None  # it loaded
    if doc.data["format"] == FORMAT:
        return None, [doc.problem(("format",), Message(N_("the file is in format {format} already, the current one; "
                                                          "there is nothing to upgrade"), format=FORMAT))]
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    text = bom + upgraded_text(doc).encode("utf-8")
    again, trouble = check_bytes(text, str(path))
    if trouble:
        return None, [Problem(p.file, p.line, p.column, p.path,
                              Message(N_("in format {format}: {problem}"), format=FORMAT, problem=p.message))
                      for p in trouble]
    if again != spec:  # a step that cannot be written as an edit of the text must say so, not write this
        raise AssertionError(f"the rewrite of {path} does not load to its spec")
    return text, []


def load_file(path: Path | str) -> ProcessSpec:
    """Load one process file or raise ``ProcessFileError`` with all its problems."""
    spec, problems = check_file(path)
    if spec is None:
        raise ProcessFileError(problems)
    return spec


def expand_paths(paths_: Iterable[Path | str]) -> list[Path]:
    """Files as given, folders as their ``*.yaml``/``*.yml`` files (sorted), broken links included."""
    out: list[Path] = []
    for p in map(Path, paths_):
        if p.is_dir():
            # a link that leads nowhere is listed, so that checking it says so instead of skipping it
            out.extend(sorted(f for f in p.iterdir() if f.suffix in PROCESS_SUFFIXES
                              and (f.is_file() or (f.is_symlink() and not f.exists()))))
        else:
            out.append(p)
    return out
