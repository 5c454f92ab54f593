"""Alembic environment: runs on the connection that engine.migrate hands over."""

from __future__ import annotations

from alembic import context

from engine.store import metadata
from engine.store.schema import modelled

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, include_name=modelled)
with context.begin_transaction():
    context.run_migrations()
