"""Refusal reviews (``/reviews``): the director's open reviews (``recovery.reviews``), each returned to the funnel
(``recovery.review_return``: a stage, another salesperson, a note) or confirmed with what was learned
(``recovery.review_confirm``). Each form carries the lead's version as the page read it."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import NAV, NavItem, Visit, action, hidden_or_refused, page, redirect, render
from engine.errors import ConcurrentUpdateError, LeadflowError
from engine.i18n import N_

NAV.append(NavItem("/reviews", N_("Reviews"), "reviews"))

#: What a decision says on the page it returns to (``?done=...``).
DONE = {"returned": "Returned to the funnel.", "confirmed": "Refusal confirmed."}


def reviews_page(visit: Visit, *, status: int = 200, error: str | None = None) -> Response:
    eng = visit.eng
    show_all = visit.arg("all") == "1"
    reviews = eng.recovery.reviews(state=None if show_all else "open")
    rows: list[dict[str, Any]] = []
    for review in reviews:
        row: dict[str, Any] = {"review": review, "version": None, "stages": []}
        if review["state"] == "open":  # the stages it may go back to are the engine's reopen choices
            options = eng.leads.options(review["lead_id"])
            row.update(version=options["version"], stages=[(s["id"], s["name"]) for s in options["reopen"]])
        rows.append(row)
    done = visit.arg("done")
    return render(visit, "reviews.html", status=status, rows=rows, error=error, show_all=show_all,
                  notice=_(DONE[done]) if done in DONE else None)


@page("/reviews")
def reviews(visit: Visit) -> Response:
    return reviews_page(visit)


def _decide(visit: Visit, lead_id: int, form: dict[str, str], done: str, call: Any) -> Response:
    raw = form.get("version", "")
    if not raw.isdigit():
        return reviews_page(visit, status=422, error=_("The form did not say which version of the lead it was read "
                                                       "at; nothing was changed. Reload the page and try again."))
    try:
        call(int(raw))
    except ConcurrentUpdateError:
        return reviews_page(visit, status=409, error=_("Lead %(id)s changed since this page was read; nothing was "
                                                       "changed. Here it is as it is now.", id=lead_id))
    except LeadflowError as exc:
        hidden = hidden_or_refused(visit, lead_id, exc)
        if hidden is not None:
            return hidden
        return reviews_page(visit, status=status_of(exc), error=str(exc))
    return redirect(f"/reviews?done={done}")


@action("/reviews/{lead_id:int}/return")
def review_return(visit: Visit, lead_id: int, form: dict[str, str]) -> Response:
    return _decide(visit, lead_id, form, "returned", lambda v: visit.eng.recovery.review_return(
        lead_id, stage=form.get("stage") or None, note=form.get("note", "").strip() or None,
        to=form.get("to") or None, if_version=v))


@action("/reviews/{lead_id:int}/confirm")
def review_confirm(visit: Visit, lead_id: int, form: dict[str, str]) -> Response:
    return _decide(visit, lead_id, form, "confirmed", lambda v: visit.eng.recovery.review_confirm(
        lead_id, form.get("note", ""), if_version=v))
