"""leadflow's engine: process specs, rules, the state machine, persistence and reports.

Integrators use ``engine.Engine``; see docs/api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.api import Engine

__all__ = ["Engine"]


def __getattr__(name: str) -> Any:
    # ``Engine`` is imported on first use, so that ``import engine`` (and each ``import engine.x``) stays cheap
    if name == "Engine":
        from engine.api import Engine

        return Engine
    raise AttributeError(f"module 'engine' has no attribute '{name}'")
