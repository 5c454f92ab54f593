"""The lead page (``/leads/{id}``) and its forms: tasks done, fields, advance, win, close, reopen, reassign.

What the page offers is the engine's ``leads.options`` (the rules that check each action); every form sends the
lead's version as the page read it, so a change made meanwhile by someone else is refused (409) and the page shows
the lead as it is now instead of overwriting it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Number
from typing import Any

from starlette.responses import Response

from cli.web import security
from cli.web.text import _
from cli.web.views import Visit, action, hidden_or_refused, page, redirect, refusal, render
from engine import i18n
from engine.errors import ConcurrentUpdateError, LeadflowError

#: What a successful form says on the page it returns to (``?done=...``).
DONE = {"task": "Task done.", "fields": "Saved.", "advance": "Advanced.", "win": "Won!", "close": "Closed.",
        "reopen": "Reopened.", "assign": "Reassigned."}
#: The lead's attributes that its form sets beside the process's fields (lead.html has their inputs).
ATTRIBUTES = ("value", "product", "source")


def lead_page(visit: Visit, lead_id: int, *, status: int = 200, error: str | None = None,
              stale: bool = False) -> Response:
    eng = visit.eng
    try:
        lead = eng.leads.get(lead_id)
        options = eng.leads.options(lead_id)
        history = eng.leads.history(lead_id)
    except LeadflowError as exc:
        return hidden_or_refused(visit, lead_id, exc) or refusal(visit, exc)
    done = visit.arg("done")
    tasks = [t for t in lead["tasks"] if t["stage"] == lead["stage"]]
    return render(visit, "lead.html", status=status, lead=lead, options=options,
                  history=[{**e, "details": details(e["data"])} for e in reversed(history)],
                  tasks=tasks, error=error, stale=stale, notice=_(DONE[done]) if done in DONE else None,
                  reopen_choices=[(s["id"], s["name"]) for s in options["reopen"]],
                  assign_choices=[(p, p) for p in options["assign"]])


def details(data: dict[str, Any]) -> str | None:
    """An event's data as its line of the timeline shows it: ``key: value; ...`` of its plain values in key order
    (case aside), without empty ones, nested ones and the actions it triggered; None when nothing is left. Made
    here rather than by a chain of template filters, which cost more than the rest of a 500-event page."""
    shown = [(k, v) for k, v in sorted(data.items(), key=lambda kv: kv[0].lower())
             if v is not None and not isinstance(v, Mapping) and k != "actions"]
    if not shown:
        return None
    last = len(shown) - 1
    return "".join(f"{k}: {v}{'' if i == last else '; '}" for i, (k, v) in enumerate(shown)
                   if isinstance(v, str | Number))


@page("/leads/{lead_id:int}")
def lead(visit: Visit, lead_id: int) -> Response:
    return lead_page(visit, lead_id)


def change(visit: Visit, lead_id: int, form: dict[str, str], done: str,
           call: Callable[[int], Any]) -> Response:
    """Run one engine change with the version the page was read at; back to the lead page, or the page again
    with the engine's refusal (a stale version: the lead as it is now)."""
    raw = form.get("version", "")
    if not raw.isdigit():
        return lead_page(visit, lead_id, status=422,
                         error=_("The form did not say which version of the lead it was read at; nothing was "
                                 "changed. Reload the page and try again."))
    try:
        call(int(raw))
    except ConcurrentUpdateError:
        return lead_page(visit, lead_id, status=409, stale=True)
    except LeadflowError as exc:
        hidden = hidden_or_refused(visit, lead_id, exc)
        if hidden is not None:
            return hidden
        from cli.server.problems import status_of

        return lead_page(visit, lead_id, status=status_of(exc), error=i18n.error_text(exc))  # the reader's language
    return redirect(f"/leads/{lead_id}?done={done}")


def _note(form: dict[str, str]) -> str | None:
    return form.get("note", "").strip() or None


@action("/leads/{lead_id:int}/tasks/{task_id}/done")
def task_done(visit: Visit, lead_id: int, task_id: str, form: dict[str, str]) -> Response:
    return change(visit, lead_id, form, "task", lambda v: visit.eng.leads.complete_task(
        lead_id, task_id, _note(form), if_version=v))


@action("/leads/{lead_id:int}/fields")
def set_fields(visit: Visit, lead_id: int, form: dict[str, str]) -> Response:
    """Every field of the form; the engine records only those that changed. A multi-choice field's options come as
    its name repeated (after an empty value that is always sent, so that none checked clears it): the engine takes
    them as a list and refuses one that is not an option."""
    values: dict[str, Any] = {k[2:]: v for k, v in form.items() if k.startswith("f_")}
    values.update({k: form[k] for k in ATTRIBUTES if k in form})
    for name, raw in list(values.items()):
        given = security.values(form, f"f_{name}")
        if len(given) > 1:  # a multi-choice field
            values[name] = [v for v in given if v]
        elif raw in ("true", "false"):  # a yes/no field's select
            values[name] = raw == "true"
        elif raw == "":
            values[name] = None
    return change(visit, lead_id, form, "fields", lambda v: visit.eng.leads.set_fields(lead_id, values, if_version=v))


def _move(name: str, call: Callable[[Any, int, dict[str, str], int], Any]) -> None:
    """Register the form ``/leads/{id}/<name>``: ``call(eng.leads, lead_id, form, version)``."""
    def view(visit: Visit, lead_id: int, form: dict[str, str]) -> Response:
        return change(visit, lead_id, form, name, lambda v: call(visit.eng.leads, lead_id, form, v))

    view.__name__ = name
    action(f"/leads/{{lead_id:int}}/{name}")(view)


_move("advance", lambda leads, lead_id, form, v: leads.advance(lead_id, form.get("to") or None, if_version=v))
_move("win", lambda leads, lead_id, _form, v: leads.win(lead_id, if_version=v))
_move("close", lambda leads, lead_id, form, v: leads.close(lead_id, form.get("reason", ""), _note(form),
                                                           if_version=v))
_move("reopen", lambda leads, lead_id, form, v: leads.reopen(lead_id, form.get("stage") or None, if_version=v))
_move("assign", lambda leads, lead_id, form, v: leads.assign(lead_id, form.get("to", ""), if_version=v))
