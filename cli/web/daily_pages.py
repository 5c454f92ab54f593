"""The daily stand-up (``/daily``): ``boards.daily``'s agenda per salesperson (red, due today and the next business
day, revisits due, new leads, done since the last stand-up), and for a director the leads waiting for an owner and
the refusals waiting for review. Whose agenda one sees is the engine's scope (``owner`` and ``team`` filters)."""

from __future__ import annotations

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.views import NAV, NavItem, Visit, page, render
from engine.errors import LeadflowError
from engine.i18n import N_

NAV.append(NavItem("/daily", N_("Daily"), "daily"))


@page("/daily")
def daily(visit: Visit) -> Response:
    filters = {"owner": visit.arg("owner"), "team": visit.arg("team")}
    try:
        agenda = visit.eng.boards.daily(owner=filters["owner"], team=filters["team"])
    except LeadflowError as exc:  # a filter out of one's scope, a department user (no agenda)
        return render(visit, "daily.html", status=status_of(exc), agenda=None, filters=filters, error=str(exc))
    return render(visit, "daily.html", agenda=agenda, filters=filters, error=None)
