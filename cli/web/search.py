"""The search box of every page, behind one function: the engine's search (``eng.search.find``, what
``leadflow find`` prints): clients and leads by name, company, e-mail, phone, tax id or lead id, forgiving case
and diacritics (``zolc`` finds ``Żółć``), among what the person may see, best first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.search import fold

if TYPE_CHECKING:
    from engine.api import Engine

SHOWN = 50


def folded(text: str | None) -> str:
    """Text as the search compares it (the board's client filter compares so too)."""
    return fold(text or "")


def find(eng: Engine, text: str, *, limit: int = SHOWN) -> list[dict[str, Any]]:
    """The hits for ``text`` (``results.SearchHit``), best first; an unusable text is the engine's refusal."""
    return [dict(hit) for hit in eng.search.find(text, limit=limit)]
