"""Automation's outbox (``engine.outbox``): send the due mails, list them, queue a failed one again."""

from __future__ import annotations

import sqlalchemy as sa

from engine import clock, policy, results, store, views
from engine.errors import InvalidInputError, NotFoundError, RuleViolation
from engine.i18n import N_, Message
from engine.services.context import Service, operation
from engine.store import outbox as outbox_table
from engine.vocab import is_id


class OutboxService(Service):
    """``engine.outbox``: the mails and reminders the processes' actions queued."""

    name = "outbox"

    @operation
    def run_due(self, *, limit: int | None = None) -> results.RunDue:
        """Send the mails and reminders that are due (admins; ``leadflow run-due``), one transaction per mail.

        SMTP settings come from the environment (engine/mailer.py); the summary counts what was sent,
        retried, failed and cancelled, and says when the next mail falls due. Each run first sweeps the ended
        sessions and the spent rate-limit counters (``auth.sweep``; ``swept`` says how many went), so the timer
        that sends the mail also keeps those tables small, and the planner's statistics when they are missing or
        the leads have doubled since (``store.keep_statistics``).
        """
        from engine import mailer, outbox
        from engine.services.auth import sweep

        ctx = self.ctx
        if ctx.conn is not None:
            raise RuleViolation("run_due commits mail by mail; call it outside Engine.transaction()")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInputError(N_("the number of mails to send must be a whole number from 1, got {limit!r}"),
                                    limit=limit)
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("send the due mail")))
            swept = sweep(conn, clock.now())
            store.keep_statistics(conn)
        config = mailer.SmtpConfig.from_environment()
        return outbox.run_due(ctx.transaction, ctx.spec, ctx.user_name, config, limit=limit, swept=swept)

    @operation
    def list(self, *, state: str | None = None, lead_id: int | None = None,
             limit: int = 1000) -> list[results.OutboxRow]:
        """Mails and reminders of the leads the acting user may see, by next attempt (``outbox list``)."""
        from engine import outbox

        if state is not None and state not in outbox.STATES:
            raise InvalidInputError(N_("state '{state}' is not one of: {states}"), state=state,
                                    states=', '.join(outbox.STATES))
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            if lead_id is not None:
                policy.require_can_view(actor, ctx.lead(conn, lead_id))
            return list(outbox.rows(conn, lambda q: policy.visible_leads(actor, q), state=state, lead_id=lead_id,
                                    limit=limit))

    @operation
    def retry(self, mail_id: int) -> results.OutboxRow:
        """Queue a failed or cancelled mail again, due now, its attempts counted afresh (managers)."""
        from engine import outbox

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            row = conn.execute(sa.select(outbox_table).where(outbox_table.c.id == mail_id)).mappings().first() if (
                is_id(mail_id)) else None
            if row is None:
                raise NotFoundError(N_("mail {mail} is not in the outbox"), mail=mail_id)
            state = ctx.lead(conn, row["lead_id"])
            policy.require_manager_of(actor, state.team, Message(N_("retry mail {mail_id}"), mail_id=mail_id))
            if row["state"] not in (outbox.FAILED, outbox.CANCELLED):
                when = Message(N_(" at {when}"), when=views.iso(row["sent_at"])) if row["sent_at"] else ""
                raise RuleViolation(N_("mail {mail} is {state}{when}; only a failed or cancelled mail is "
                                       "queued again"), mail=mail_id, state=row['state'], when=when)
            conn.execute(sa.update(outbox_table).where(outbox_table.c.id == mail_id).values(
                state=outbox.QUEUED, attempts=0, next_attempt_at=clock.now(), claimed_by=None, lease_until=None))
            return outbox.view(conn.execute(sa.select(outbox_table).where(outbox_table.c.id == mail_id))
                               .mappings().one())
