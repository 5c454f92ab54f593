"""The search box of every page, behind one function (``find``) so that the engine's own search (``eng.search``,
``leadflow find``) replaces it in one place when it lands.

For now: the leads the person may see (``leads.list``, the engine's scope), whose client name or company contains
the typed text, compared without case and without diacritics (``zolc`` finds ``Żółć``).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.api import Engine

#: Leads read per search while the engine has no search of its own.
SCANNED = 5000
SHOWN = 50


def folded(text: str | None) -> str:
    """Text without case and diacritics (``Łukasz Żółć`` -> ``lukasz zolc``)."""
    decomposed = unicodedata.normalize("NFKD", (text or "").replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def find(eng: Engine, text: str, *, limit: int = SHOWN) -> list[dict[str, Any]]:
    """Leads matching ``text``, newest first: each a ``leads.list`` row."""
    wanted = folded(text.strip())
    if not wanted:
        return []
    rows = eng.leads.list(limit=SCANNED)
    found: list[dict[str, Any]] = [dict(r) for r in rows
                                   if wanted in folded(r["name"]) or wanted in folded(r.get("company"))]
    return sorted(found, key=lambda r: r["id"], reverse=True)[:limit]
