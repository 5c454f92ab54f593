"""The words of the engine's vocabulary as a person reads them, in the language in effect (the terminal's, or the
web request's: ``cli.web.text.speaking`` sets it): a lead's status, a task's state. JSON, lists and filters keep
the ids (``--status lost``); a sentence about one lead or task says the word."""

from __future__ import annotations

from engine.i18n import language, translations
from engine.vocab import LeadStatus, TaskStatus


def pgettext(context: str, message: str) -> str:
    """``message`` in the language in effect, as its ``context`` means it: a word that English uses for several
    things and another language does not ("open" of one lead, "open" as the heading of a column of leads)."""
    return translations(language()).pgettext(context, message)


def status_word(status: str) -> str:
    """A lead's status as a sentence about the lead says it (``lead show``, the lead's page): "open", "otwarty"."""
    words: dict[str, str] = {LeadStatus.OPEN: pgettext("lead status", "open"),
                             LeadStatus.WON: pgettext("lead status", "won"),
                             LeadStatus.LOST: pgettext("lead status", "lost")}
    return words.get(status, status)


def left_undone(state: str, *, lead_open: bool) -> bool:
    """Whether a task is one its lead's closing left open: nobody is to do it any more (no deadline to show);
    reopening the lead makes it open again."""
    return state == TaskStatus.OPEN and not lead_open


def task_state_word(state: str, *, lead_open: bool = True) -> str:
    """A task's state as the lead's tasks list it: "open", "done", "not applicable"; one its lead's closing left
    open "not done" (``left_undone``)."""
    if left_undone(state, lead_open=lead_open):
        return pgettext("task state", "not done")
    words: dict[str, str] = {TaskStatus.OPEN: pgettext("task state", "open"),
                             TaskStatus.DONE: pgettext("task state", "done"),
                             TaskStatus.NOT_APPLICABLE: pgettext("task state", "not applicable")}
    return words.get(state, state)


def task_state(state: str, lead_status: str) -> str:
    """``task_state_word`` of a task of a lead whose status is ``lead_status`` (the web page's filter)."""
    return task_state_word(state, lead_open=lead_status == LeadStatus.OPEN)


def task_left(state: str, lead_status: str) -> bool:
    """``left_undone`` of a task of a lead whose status is ``lead_status`` (the web page's test)."""
    return left_undone(state, lead_open=lead_status == LeadStatus.OPEN)
