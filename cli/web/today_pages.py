"""My day (``/today``): the signed-in person's open tasks by deadline (``tasks.list``: a salesperson's own, a
department's role's), and for a salesperson the stand-up agenda's revisits due and new leads (``boards.daily``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cli.web.views import Visit, page, render
from engine import clock
from engine.errors import LeadflowError


@page("/today")
def today(visit: Visit) -> Response:
    tasks = visit.eng.tasks.list()
    day = clock.now().date().isoformat()
    groups: dict[str, list[dict[str, Any]]] = {"overdue": [], "today": [], "later": []}
    for task in tasks:
        if task["overdue"]:
            groups["overdue"].append(dict(task))
        elif task["due_at"] and task["due_at"][:10] <= day:
            groups["today"].append(dict(task))
        else:
            groups["later"].append(dict(task))
    agenda: Any = None
    try:
        daily = visit.eng.boards.daily(owner=visit.me["name"])
        agenda = daily["people"][0] if daily["people"] else None
    except LeadflowError:  # not a salesperson: no agenda of their own
        agenda = None
    return render(visit, "today.html", groups=groups, count=len(tasks), agenda=agenda, day=day)
