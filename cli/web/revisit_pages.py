"""Revisits (``/revisits``: lost leads whose revisit date has come, ``recovery.revisits``; one form starts the
client's new lead, ``recovery.start_revisit``) and the removals of a month (``/removals``: ``recovery.removals``,
leads closed without a sale by reason, salesperson, product and client)."""

from __future__ import annotations

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.views import NAV, NavItem, Visit, action, page, redirect, render
from engine import clock
from engine.errors import LeadflowError
from engine.i18n import N_
from engine.vocab import ClosureKind

NAV.extend([NavItem("/revisits", N_("Revisits"), "board"), NavItem("/removals", N_("Removals"), "board")])
#: The removals' kinds: every closure kind of the engine, or all.
KINDS = ("all", *ClosureKind)


def _filters(visit: Visit, *names: str) -> dict[str, str | None]:
    return {name: visit.arg(name) for name in names}


@page("/revisits")
def revisits(visit: Visit) -> Response:
    filters = _filters(visit, "process", "owner", "team")
    try:
        rows = visit.eng.recovery.revisits(process=filters["process"], owner=filters["owner"], team=filters["team"])
    except LeadflowError as exc:
        return render(visit, "revisits.html", status=status_of(exc), rows=[], filters=filters, error=str(exc))
    return render(visit, "revisits.html", rows=rows, filters=filters, error=None)


@action("/revisits/{client_id:int}/start")
def start_revisit(visit: Visit, client_id: int, form: dict[str, str]) -> Response:
    """The client's new lead in the process they were lost in; its page lists their earlier leads."""
    lead = visit.eng.recovery.start_revisit(client_id, process=form.get("process", ""))
    return redirect(f"/leads/{lead['id']}")


@page("/removals")
def removals(visit: Visit) -> Response:
    filters = _filters(visit, "month", "kind", "process", "owner", "team")
    month = filters["month"] or f"{clock.now():%Y-%m}"
    try:
        summary = visit.eng.recovery.removals(month, process=filters["process"], kind=filters["kind"] or "all",
                                              team=filters["team"], owner=filters["owner"])
    except LeadflowError as exc:
        return render(visit, "removals.html", status=status_of(exc), summary=None, month=month, filters=filters,
                      kinds=KINDS, error=str(exc))
    return render(visit, "removals.html", summary=summary, month=month, filters=filters, kinds=KINDS, error=None)
