"""Revisits: a client closed for a reason with ``revisit_after_days`` comes back on that date.

A revisit is due when a lost lead's reason asks for one, the days have passed, and the client has
had no newer lead since (starting one is how a revisit is taken up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from engine.spec import ProcessSpec
from engine.store import clients, leads


def due_revisits(specs: Iterable[tuple[int, ProcessSpec]], now: dt.datetime) -> Any:
    """A select of lost leads whose revisit is due as of ``now`` (callers add owner/team filters)."""
    due = []
    for version, spec in specs:
        for reason in spec.closure_reasons:
            if reason.revisit_after_days:
                due.append(sa.and_(
                    leads.c.process == spec.id, leads.c.process_version == version,
                    leads.c.close_reason == reason.id,
                    leads.c.closed_at <= now - dt.timedelta(days=reason.revisit_after_days)))
    later = leads.alias("later")
    newer = sa.select(later.c.id).where(later.c.client_id == leads.c.client_id,
                                        later.c.created_at > leads.c.closed_at)
    return (
        sa.select(leads.c.id, leads.c.client_id, clients.c.name, leads.c.process, leads.c.close_reason,
                  leads.c.closed_at, leads.c.owner)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(leads.c.status == "lost", sa.or_(sa.false(), *due), ~sa.exists(newer))
        .order_by(leads.c.closed_at)
    )
