"""The names engine/api.py used before engine/policy.py, until its code moves into engine/services/ (issue 13).

No rule lives here: every permission rule is in ``engine.policy``, every role in ``engine.vocab``. New code
imports those; this module goes when api.py's last caller does.
"""

from __future__ import annotations

from engine.policy import (
    can_view,
    require_admin,
    require_can_do_task,
    require_can_own,
    require_can_view,
    require_can_work,
    require_manager_of,
    visible_leads,
)
from engine.vocab import ADDERS, MANAGERS, Role

INTAKE = Role.INTAKE

__all__ = ["ADDERS", "INTAKE", "MANAGERS", "can_view", "require_admin", "require_can_do_task", "require_can_own",
           "require_can_view", "require_can_work", "require_manager_of", "visible_leads"]
