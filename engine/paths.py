"""Where the shipped schema and processes live, in a source checkout and in an installed leadflow."""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
_BUNDLED = Path(__file__).resolve().parent / "data"


def _pick(name: str) -> Path:
    # A source checkout keeps them at the top level (the product card's layout); the wheel
    # carries copies inside engine/data so that a non-editable install finds them too.
    top = _CHECKOUT / name
    return top if top.is_dir() and (_CHECKOUT / "pyproject.toml").is_file() else _BUNDLED / name


def schema_file() -> Path:
    return _pick("schemas") / "process.schema.json"


def processes_dir() -> Path:
    return _pick("processes")
