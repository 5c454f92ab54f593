"""Many leads at once (``engine.bulk``): each lead checked by the one-lead call's code, all written set-based."""

from __future__ import annotations

from collections.abc import Sequence

from engine import actions, clock, policy, results, store
from engine.errors import BatchRefused, InvalidInputError, LeadflowError, NotFoundError
from engine.i18n import N_, Message
from engine.rules import clean_text
from engine.services import recovery
from engine.services.context import Check, Service, operation, require_forward
from engine.services.leads import advancing, closing, completing, winning
from engine.state import Event, apply
from engine.vocab import NOTE_LENGTH, LeadStatus

#: How a refused batch names what it could not do ("can't advance 2 of 500 leads").
_VERBS = {"complete_task": Message(N_("complete the task of")), "advance": Message(N_("advance")),
          "win": Message(N_("win")), "close": Message(N_("close"))}



class BulkService(Service):
    """``engine.bulk``: ``complete_task``, ``advance``, ``win`` and ``close`` for many leads in one transaction."""

    name = "bulk"

    @operation
    def complete_tasks_many(self, lead_ids: Sequence[int], task_id: str, *, note: str | None = None,
                            on_refusal: str = "abort") -> results.BulkResult:
        """``complete_task`` for many leads in one transaction, written set-based (docs/api.md).

        Each lead is checked by exactly the rules of the one-lead call. ``on_refusal="abort"`` (the default)
        writes nothing if any lead is refused and raises ``BatchRefused`` listing every refusal;
        ``"skip"`` writes the others and reports the refused ones. Returns ``{"action", "done", "refused"}``.
        """
        note_ = clean_text(note, "note", NOTE_LENGTH)
        return self._many("complete_task", lead_ids, on_refusal, lambda state, spec, actor, _: completing(
            state, spec, actor, task_id, note_))

    @operation
    def advance_many(self, lead_ids: Sequence[int], *, to: str | None = None,
                     on_refusal: str = "abort") -> results.BulkResult:
        """``advance`` for many leads in one transaction, written set-based; see ``complete_tasks_many``."""
        return self._many("advance", lead_ids, on_refusal, lambda state, spec, actor, move: advancing(
            state, spec, actor, to, move))

    @operation
    def win_many(self, lead_ids: Sequence[int], *, on_refusal: str = "abort") -> results.BulkResult:
        """``win`` for many leads in one transaction, written set-based; see ``complete_tasks_many``."""
        return self._many("win", lead_ids, on_refusal, winning)

    @operation
    def close_many(self, lead_ids: Sequence[int], *, reason: str, note: str | None = None,
                   on_refusal: str = "abort") -> results.BulkResult:
        """``close`` for many leads in one transaction, for one reason, written set-based; see
        ``complete_tasks_many``. Each closing is recorded (``closures``, and a refusal review when the reason asks
        for one) as the one-lead call records it."""
        note_ = clean_text(note, "note", NOTE_LENGTH)
        return self._many("close", lead_ids, on_refusal, lambda state, spec, actor, move: closing(
            state, spec, actor, reason, note_, move))

    def _many(self, action: str, lead_ids: Sequence[int], on_refusal: str, check: Check) -> results.BulkResult:
        """Check every lead as the one-lead call does, apply each accepted event with ``apply``, and write all
        the leads and their events with ``store.write_leads``."""
        if on_refusal not in ("abort", "skip"):
            raise InvalidInputError(N_("on_refusal '{on_refusal}' is not one of: abort, skip"), on_refusal=on_refusal)
        ids = _batch_ids(lead_ids)
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            states = store.read_leads(conn, ids)
            lookup = ctx.specs_lookup(conn)
            at = clock.now()
            changes: list[store.LeadChange] = []
            entries = []
            refused: list[results.Refused] = []
            done: list[int] = []
            for lead_id in ids:
                state = states.get(lead_id)
                try:
                    if state is None:
                        raise NotFoundError(N_("lead {lead} does not exist"), lead=lead_id)
                    policy.require_can_view(actor, state)  # first, as for one lead (Context.actor_and_lead)
                    spec = lookup(state.process, state.process_version)
                    # the precomputed table of the process's machine: the same answers (tests/test_machine.py)
                    kind, data = check(state, spec, lambda: actor, ctx.machine(spec, state.process_version).allowed)
                    ev = Event(kind=kind, at=at, actor=ctx.user_name, data=data)
                    require_forward(conn, state, [ev])
                except LeadflowError as exc:
                    refused.append({"lead_id": lead_id, "error": type(exc).__name__, "reason": str(exc)})
                    continue
                after = apply(state.clone(), ev, lookup)
                if kind in actions.ENTERING:
                    entry = actions.on_enter(spec, after, at)
                    entry.record_on(ev)
                    entries.append(entry)
                changes.append(store.LeadChange(state, after, [ev]))
                done.append(lead_id)
            if refused and on_refusal == "abort":
                raise BatchRefused(_VERBS[action], len(ids), refused)
            for change in changes:
                if change.after.status == LeadStatus.LOST:  # a closing: its record, as ``leads.close`` writes it
                    reason = lookup(change.before.process, change.before.process_version).reason(  # type: ignore[union-attr]
                        change.after.close_reason or "")
                    assert reason is not None and change.before is not None
                    recovery.record_closure(conn, change.before, reason)
            store.write_leads(conn, changes)
            actions.store(conn, entries)
            return {"action": action, "done": done, "refused": refused}


def _batch_ids(lead_ids: Sequence[int]) -> list[int]:
    """The ids of a bulk call: whole numbers, each listed once (an unknown id is refused per lead later)."""
    if isinstance(lead_ids, (str, bytes)) or not isinstance(lead_ids, Sequence):
        raise InvalidInputError(N_("lead ids must be a list of whole numbers, got {lead_ids!r}"), lead_ids=lead_ids)
    seen: set[int] = set()
    for lead_id in lead_ids:
        if isinstance(lead_id, bool) or not isinstance(lead_id, int):
            raise InvalidInputError(N_("lead id must be a whole number, got {lead!r}; nothing was written"),
                                    lead=lead_id)
        if lead_id in seen:
            raise InvalidInputError(N_("lead {lead} is listed twice; list each lead once (nothing was written)"),
                                    lead=lead_id)
        seen.add(lead_id)
    return list(lead_ids)
