"""A person's own settings (``/settings``): the language they read leadflow in (``users.set_language``: their
own, which every user may change), which then speaks every page to them before the browser's choice."""

from __future__ import annotations

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.views import Visit, action, page, redirect, render
from engine import i18n
from engine.errors import LeadflowError

#: Each language by its own name, as a person looks for it in a list.
NAMES = {"en": "English", "pl": "Polski", "ro": "Română", "ru": "Русский"}


def settings_page(visit: Visit, *, status: int = 200, error: str | None = None) -> Response:
    chosen = visit.me.get("language")
    return render(visit, "settings.html", status=status, error=error, chosen=chosen or "",
                  languages=[(code, NAMES.get(code, code)) for code in i18n.LANGUAGES],
                  server=NAMES.get(i18n.environment_language(), ""), saved=visit.arg("saved") is not None)


@page("/settings")
def settings(visit: Visit) -> Response:
    return settings_page(visit)


@action("/settings")
def save(visit: Visit, form: dict[str, str]) -> Response:
    """The person's language (empty: the browser's, then the server's, again)."""
    try:
        visit.eng.users.set_language(visit.me["name"], form.get("language") or None)
    except LeadflowError as exc:
        return settings_page(visit, status=status_of(exc), error=i18n.error_text(exc))
    return redirect("/settings?saved=1")  # drawn in the new language
