"""Alembic migrations of leadflow's schema; ``leadflow init`` applies them (see engine.migrate)."""
