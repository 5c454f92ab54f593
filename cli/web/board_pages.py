"""The opportunities board (``/board``), its stand-up view for a projector (``/board/standup``) and the search
results (``/search``): ``boards.board`` with the person's filters, in the scope the engine gives them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup
from starlette.responses import Response

from cli.server.problems import status_of
from cli.web import search
from cli.web.text import _, ngettext
from cli.web.views import Visit, page, render
from engine.errors import LeadflowError

#: Cards drawn per stage; the counts and values stay complete ("and N more").
CARDS_PER_STAGE = 12
#: Cards per stage on the stand-up screen (red first).
STANDUP_CARDS = 50
LIGHTS = ("red", "yellow", "green")
#: Seconds between two refreshes of a board left open (the stand-up screen refreshes faster).
REFRESH, STANDUP_REFRESH = 60, 20


def _filters(visit: Visit) -> dict[str, str | None]:
    return {name: visit.arg(name) for name in ("process", "team", "owner", "light", "text")}


def _boards(visit: Visit, filters: dict[str, str | None], limit: int) -> tuple[list[Any], LeadflowError | None]:
    """The boards the filters ask for, or none and the engine's refusal (an unknown process, an owner out of
    scope, a department user, who has no board...)."""
    try:
        boards: list[Any] = visit.eng.boards.board(process=filters["process"], owner=filters["owner"],
                                                   team=filters["team"], light=filters["light"], limit=limit)
    except LeadflowError as exc:
        return [], exc
    wanted = search.folded(filters["text"]) if filters["text"] else None
    for board in boards:
        for stage in board["stages"]:
            if wanted is not None:  # the text narrows the cards drawn; the counts stay the stage's
                stage["leads"] = [c for c in stage["leads"] if wanted in search.folded(c["name"])]
            stage["more"] = max(0, stage["count"] - len(stage["leads"])) if wanted is None else 0
    return boards, None


def _processes(visit: Visit) -> list[str]:
    try:
        return sorted({row["process"] for row in visit.eng.processes.list(open_leads=False)})
    except LeadflowError:
        return []


class _Days(dict[int, Markup]):
    """A card's "N days" phrase, translated once per number of days for a board's hundreds of cards: what the
    template's ``ngettext`` draws (the translation marked safe, the number filled in), at a dictionary's price."""

    def __init__(self, phrase: Callable[[int], str]):
        super().__init__()
        self.phrase = phrase

    def __missing__(self, days: int) -> Markup:
        self[days] = drawn = Markup(self.phrase(days))
        return drawn


@page("/board")
def board(visit: Visit) -> Response:
    filters = _filters(visit)
    boards, error = _boards(visit, filters, CARDS_PER_STAGE)
    return render(visit, "board.html", status=200 if error is None else status_of(error), boards=boards,
                  filters=filters, error=error, processes=_processes(visit), lights=LIGHTS, refresh=REFRESH,
                  changed=visit.arg("changed") == "1",
                  in_stage=_Days(lambda n: ngettext("%(num)s day in stage", "%(num)s days in stage", n)),
                  in_process=_Days(lambda n: ngettext("%(num)s in process", "%(num)s in process", n)),
                  says=_card_phrases())


def _card_phrases() -> dict[str, Markup]:
    """The sentences of every card, translated once a page and filled in by the template (``says.next % {...}``:
    what its ``_()`` with placeholders draws, the translation marked safe and the values escaped)."""
    return {"next": Markup(_("Next: %(task)s, due %(due)s")),
            "task": Markup(_("Red: task “%(task)s” was due %(due)s")),
            "contact": Markup(_("Red: the next contact was due %(due)s")),
            "stage": Markup(_("Red: the stage's deadline passed %(due)s"))}


@page("/board/standup")
def standup(visit: Visit) -> Response:
    """The same board for a projector: per salesperson, red first, in large type."""
    filters = _filters(visit)
    boards, error = _boards(visit, filters, STANDUP_CARDS)
    order = {lamp: i for i, lamp in enumerate(LIGHTS)}
    people: dict[str, list[dict[str, Any]]] = {}
    for b in boards:
        for stage in b["stages"]:
            for card in stage["leads"]:
                people.setdefault(card["owner"] or "", []).append(
                    {**card, "stage": stage["name"], "process": b["title"], "currency": b["currency"]})
    rows: list[dict[str, Any]] = [
        {"owner": owner, "cards": sorted(cards, key=lambda c: (order.get(c["light"], 3), c["due_at"] or "")),
         "red": sum(1 for c in cards if c["light"] == "red")}
        for owner, cards in people.items()]
    rows.sort(key=lambda r: (-int(r["red"]), r["owner"] == "", str(r["owner"])))
    return render(visit, "standup.html", status=200 if error is None else status_of(error), boards=boards,
                  people=rows, filters=filters, error=error, refresh=STANDUP_REFRESH, unassigned=_("unassigned"))


@page("/search")
def find(visit: Visit) -> Response:
    text = visit.arg("q") or ""
    try:
        found = search.find(visit.eng, text) if text else []
    except LeadflowError as exc:
        return render(visit, "search.html", status=status_of(exc), found=[], text=text, error=str(exc))
    return render(visit, "search.html", found=found, text=text, error=None)
