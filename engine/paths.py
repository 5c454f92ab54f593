"""Where the shipped schema and processes live, in a source checkout and in an installed leadflow."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from engine.errors import NotFoundError, did_you_mean
from engine.i18n import N_, Message

_CHECKOUT = Path(__file__).resolve().parent.parent
_BUNDLED = Path(__file__).resolve().parent / "data"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")  # a process id, as a process file's name


def _pick(name: str) -> Path:
    # A source checkout keeps them at the top level (the product card's layout); the wheel
    # carries copies inside engine/data so that a non-editable install finds them too.
    top = _CHECKOUT / name
    return top if top.is_dir() and (_CHECKOUT / "pyproject.toml").is_file() else _BUNDLED / name


def schema_file() -> Path:
    return _pick("schemas") / "process.schema.json"


def processes_dir() -> Path:
    return _pick("processes")


def shipped_processes() -> dict[str, Path]:
    """The shipped process files by process id (the file's name), sorted; a ``.yaml`` wins over a ``.yml``."""
    folder = processes_dir()
    if not folder.is_dir():
        return {}
    files = [f for f in folder.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()]
    out: dict[str, Path] = {}
    for f in sorted(files, key=lambda f: (f.stem, f.suffix != ".yaml")):
        out.setdefault(f.stem, f)
    return out


def process_sources(given: Iterable[str], *, shipped: bool = False) -> list[str]:
    """What a command line names as process files: each file or folder that exists, as given; otherwise
    the shipped process of that id (``photovoltaics``); with ``shipped``, every shipped process after them.

    A file in the current folder wins over a shipped process of the same name. A plain name that is
    neither is refused with the shipped ids; anything else (``missing.yaml``, ``dir/``) is kept for the
    loader to report as a missing file.
    """
    known = shipped_processes()
    out: list[str] = []
    for raw in given:
        if Path(raw).exists() or Path(raw).is_symlink() or not _ID.match(raw):
            out.append(raw)
        elif raw in known:
            out.append(str(known[raw]))
        else:
            hint = did_you_mean(raw, known)
            raise NotFoundError(N_("no process file or shipped process named '{raw}'{hint}{text}"
                                   "shipped: {known}"), raw=raw, hint=hint, text=' ' if hint else '; ',
                                known=', '.join(known) or Message(N_("none")))
    if shipped:
        out.extend(str(f) for f in known.values())
    return out
