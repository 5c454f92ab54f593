"""Stalled leads (``/stalled``: ``recovery.stalled``, each with its owner's report and a manager's extension through
``recovery.report``) and their rotation (``/stalled/rotate``: ``recovery.rotate``'s dry-run plan first, written only
when the manager confirms that same plan)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import NAV, NavItem, Visit, action, hidden_or_refused, page, redirect, render
from engine.errors import ConcurrentUpdateError, LeadflowError
from engine.i18n import N_

NAV.append(NavItem("/stalled", N_("Stalled"), "board"))

#: Stalled leads drawn on one page (each form needs the lead's version).
SHOWN = 200
DONE = {"report": "Report saved.", "rotated": "Rotated."}


def _filters(visit: Visit) -> dict[str, str | None]:
    return {name: visit.arg(name) for name in ("process", "team", "owner")}


def stalled_page(visit: Visit, *, status: int = 200, error: str | None = None) -> Response:
    filters = _filters(visit)
    try:
        stalled = visit.eng.recovery.stalled(process=filters["process"], owner=filters["owner"],
                                             team=filters["team"], limit=SHOWN)
    except LeadflowError as exc:
        return render(visit, "stalled.html", status=status_of(exc), stalled=None, rows=[], filters=filters,
                      error=str(exc), notice=None)
    rows = [{"lead": lead, "version": visit.eng.leads.options(lead["lead_id"])["version"]}
            for lead in stalled["leads"]]
    done = visit.arg("done")
    return render(visit, "stalled.html", status=status, stalled=stalled, rows=rows, filters=filters, error=error,
                  notice=_(DONE[done]) if done in DONE else None)


@page("/stalled")
def stalled(visit: Visit) -> Response:
    return stalled_page(visit)


@action("/stalled/{lead_id:int}/report")
def report(visit: Visit, lead_id: int, form: dict[str, str]) -> Response:
    """The owner's report; with a date and a reason (managers) the lead is extended until then."""
    raw = form.get("version", "")
    if not raw.isdigit():
        return stalled_page(visit, status=422, error=_("The form did not say which version of the lead it was read "
                                                       "at; nothing was changed. Reload the page and try again."))
    try:
        visit.eng.recovery.report(lead_id, form.get("text", ""), extend_until=form.get("extend_until") or None,
                                  reason=form.get("reason") or None, if_version=int(raw))
    except ConcurrentUpdateError:
        return stalled_page(visit, status=409, error=_("Lead %(id)s changed since this page was read; nothing was "
                                                       "changed. Here it is as it is now.", id=lead_id))
    except LeadflowError as exc:
        return hidden_or_refused(visit, lead_id, exc) or stalled_page(visit, status=status_of(exc), error=str(exc))
    return redirect("/stalled?done=report")


def _plan(rotation: dict[str, Any]) -> str:
    """A rotation's moves as one string, so the confirmation writes only the plan the manager saw."""
    return ",".join(f"{m['lead_id']}:{m['to']}" for m in rotation["moves"])


@page("/stalled/rotate")
def rotate_plan(visit: Visit) -> Response:
    """The dry run: what rotation would do, and a form to confirm it."""
    scope = {"process": visit.arg("process"), "team": visit.arg("team")}
    plan = visit.eng.recovery.rotate(process=scope["process"], team=scope["team"], dry_run=True)
    return render(visit, "rotate.html", rotation=plan, plan=_plan(dict(plan)), scope=scope, error=None)


@action("/stalled/rotate")
def rotate(visit: Visit, form: dict[str, str]) -> Response:
    scope = {"process": form.get("process") or None, "team": form.get("team") or None}
    plan = visit.eng.recovery.rotate(process=scope["process"], team=scope["team"], dry_run=True)
    if _plan(dict(plan)) != form.get("plan", ""):
        return render(visit, "rotate.html", status=409, rotation=plan, plan=_plan(dict(plan)), scope=scope,
                      error=_("The stalled leads changed since the plan was shown; nothing was written. This is "
                              "the plan now."))
    visit.eng.recovery.rotate(process=scope["process"], team=scope["team"])
    return redirect("/stalled?done=rotated")
