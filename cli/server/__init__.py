"""The team server: leadflow's JSON API under ``/v1`` (every CLI operation, routed from cli/operations.py), the
HTTP intake of web forms, the OpenAPI document and its offline docs page. FastAPI and uvicorn are imported only
here, so they load only for ``leadflow serve`` and the tests (the optional extra ``server``). docs/server.md."""

from cli.server.app import create_app

__all__ = ["create_app"]
