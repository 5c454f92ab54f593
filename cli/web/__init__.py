"""The web app: server-rendered pages (Jinja2, a little htmx) served by the team server beside its API.

``mount(app, engine)`` adds the pages to the FastAPI app of cli/server/app.py. Every page parses its request,
calls the engine as the signed-in person, and renders the result: no rule is decided here (docs/web.md).
"""

from __future__ import annotations

from cli.web.routes import mount

__all__ = ["mount"]
