"""The outbox: delivering the mails and reminders that stage actions queued (``leadflow run-due``).

A row goes ``queued`` -> ``sending`` -> ``sent``, or to ``failed`` (it will not be sent: no address of a user, a
template that fails, a permanent refusal, too many attempts) or ``cancelled`` (a reminder whose lead
has left the stage, a client without an e-mail address: ``actions.store`` stores a mail due at once to such a
client cancelled from the start). One mail at a time:

1. **claim** (one transaction): the earliest due row that is ``queued`` with ``next_attempt_at <= now``,
   or ``sending`` with an expired lease, becomes ``sending`` with a lease of ``LEASE`` and this run's
   id; on PostgreSQL the row is picked with ``FOR UPDATE SKIP LOCKED``, on SQLite under the write
   lock of ``BEGIN IMMEDIATE``, so two runs never claim the same row. In the same transaction the mail
   is rendered (or marked failed or cancelled, and nothing is sent).
2. **send** over SMTP, outside any transaction.
3. **mark** (one transaction): ``sent`` (and a ``mail_sent`` event on the lead), or back to ``queued``
   with ``next_attempt_at`` pushed back (1, 2, 4 ... minutes, at most an hour apart), or ``failed``.

The guarantee (docs/automation.md#the-delivery-guarantee): every mail is sent at least once, and a
mail is sent twice only if run-due dies after the server accepted it and before step 3 committed;
the lease then expires and the next run sends it again, with the same ``Message-ID``, so the copy is
recognisable. Running run-due twice, at once or one after the other, never sends a mail twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import actions, clock, mailer, messages, notices, results, store
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.state import Event, LeadState
from engine.store import clients, leads, outbox, process_versions, users
from engine.vocab import EventKind, LeadStatus, OutboxState, Role, TaskStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Mapping

STATES = tuple(OutboxState)
QUEUED, SENDING, SENT, FAILED, CANCELLED = STATES
#: How long a claimed mail stays reserved for the run that claimed it; a run that died frees it after this.
LEASE = dt.timedelta(minutes=5)
#: A mail the server keeps refusing with "try later" (or cannot be reached for) is given up after this many.
MAX_ATTEMPTS = 48
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)

Transaction = Callable[[], AbstractContextManager[Connection]]
SpecOf = Callable[[Connection, str, int], ProcessSpec]


def backoff(attempts: int) -> dt.timedelta:
    """The wait before the next attempt, after ``attempts`` attempts: 1, 2, 4, ... minutes, at most an hour."""
    wait: dt.timedelta = FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 20)
    return min(wait, LONGEST_RETRY)


class _Final(Exception):
    """The claimed mail will not be sent: ``state`` (failed or cancelled) and why."""

    def __init__(self, state: str, why: str):
        super().__init__(why)
        self.state = state


def run_due(transaction: Transaction, spec_of: SpecOf, actor: str, config: mailer.SmtpConfig, *,
            limit: int | None = None, swept: results.Swept) -> results.RunDue:
    """Send every mail that is due (at most ``limit``); see the module's docstring for the steps. ``swept``: what
    the run's sweep deleted first (``auth.sweep``), for the summary."""
    worker = uuid.uuid4().hex
    sender = mailer.Sender(config)
    mails: list[results.MailResult] = []
    smtp_error = None
    try:
        while limit is None or len(mails) < limit:
            with transaction() as conn:
                row = _claim(conn, clock.now(), worker)
                if row is None:
                    break
                try:
                    message, addresses = _prepare(conn, row, spec_of, config)
                except _Final as final:
                    mails.append(_finish(conn, row, worker, actor, final.state, str(final)))
                    continue
            try:
                refused = sender.send(message)
            except mailer.SendError as exc:
                with transaction() as conn:
                    if exc.permanent or row["attempts"] >= MAX_ATTEMPTS:
                        why = str(exc) if exc.permanent else f"gave up after {row['attempts']} attempts: {exc}"
                        mails.append(_finish(conn, row, worker, actor, FAILED, why))
                    else:
                        mails.append(_retry(conn, row, worker, str(exc)))
                if exc.connection:
                    smtp_error = str(exc)
                    break
                continue
            with transaction() as conn:
                mails.append(_sent(conn, row, worker, actor, message, addresses, refused))
    finally:
        sender.close()
    with transaction() as conn:
        now = clock.now()
        waiting = outbox.c.state == QUEUED
        due_now = conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
            waiting, outbox.c.next_attempt_at <= now)).scalar_one()
        later, next_at = conn.execute(sa.select(sa.func.count(), sa.func.min(outbox.c.next_attempt_at)).where(
            waiting, outbox.c.next_attempt_at > now)).one()
    counts = {state: sum(1 for m in mails if m["state"] == state) for state in STATES}
    return {"as_of": now.isoformat(), "sent": counts[SENT], "retrying": counts[QUEUED], "failed": counts[FAILED],
            "cancelled": counts[CANCELLED], "smtp_error": smtp_error, "still_due": int(due_now),
            "queued_later": int(later), "next_due_at": next_at.isoformat() if next_at else None, "mails": mails,
            "swept": swept}


# -- the steps -------------------------------------------------------------------------------------

def _claim(conn: Connection, now: dt.datetime, worker: str) -> dict[str, Any] | None:
    due = sa.or_(sa.and_(outbox.c.state == QUEUED, outbox.c.next_attempt_at <= now),
                 sa.and_(outbox.c.state == SENDING, outbox.c.lease_until < now))
    row = conn.execute(sa.select(outbox).where(due).order_by(outbox.c.next_attempt_at, outbox.c.id).limit(1)
                       .with_for_update(skip_locked=True)).mappings().first()
    if row is None:
        return None
    conn.execute(sa.update(outbox).where(outbox.c.id == row["id"]).values(
        state=SENDING, claimed_by=worker, lease_until=now + LEASE, attempts=row["attempts"] + 1))
    return {**row, "attempts": row["attempts"] + 1}


def _prepare(conn: Connection, row: dict[str, Any], spec_of: SpecOf, config: mailer.SmtpConfig
             ) -> tuple[EmailMessage, list[str]]:
    """The message to send, or ``_Final`` saying why there is none."""
    state = store.read_lead(conn, row["lead_id"])
    assert state is not None  # a foreign key
    digest = None
    if row["kind"] == notices.DIGEST:
        digest = _digest(conn, row, spec_of)
    elif row["kind"] in notices.TEMPLATES:
        gone = notices.still_current(state, row)
        if gone is not None:
            raise _Final(CANCELLED, gone)
    elif row["kind"] == "reminder" or row["due_at"] > row["entered_at"]:
        _still_in_the_entry(state, row)
    spec = spec_of(conn, state.process, state.process_version)
    if row["kind"] == "reminder":
        _chased_task_open(state, spec, row)
    client = conn.execute(sa.select(clients).where(clients.c.id == state.client_id)).mappings().one()
    owner_name = row["for_user"] if digest is not None else state.owner  # a digest's leads may be others' by now
    owner = conn.execute(sa.select(users).where(users.c.name == owner_name)).mappings().first() if (
        owner_name) else None
    to = _recipients(conn, row, state, client, owner)
    source = conn.execute(sa.select(process_versions.c.source_path).where(
        process_versions.c.process == state.process,
        process_versions.c.version == state.process_version)).scalar_one()
    try:
        rendered = messages.render(row["template"], mail_language(row["recipient"], spec, client, owner),
                                   messages.template_dirs(source),
                                   _context(row, state, spec, client, owner, config) | (
                                       {"digest": digest} if digest is not None else {}))
    except messages.TemplateError as exc:
        raise _Final(FAILED, str(exc)) from None
    now = clock.now()
    try:
        message = mailer.build_message(
            config, to=to, subject=rendered.subject, body=rendered.body,
            message_id=message_id(row["key"], config), date=format_datetime(now.replace(tzinfo=clock.zone())),
            headers={"X-Leadflow-Lead": str(state.id), "X-Leadflow-Outbox": str(row["id"]),
                     # a digest is about many leads (the first is X-Leadflow-Lead): how many, for mail filters
                     **({"X-Leadflow-Digest": str(digest["count"])} if digest is not None else {})})
    except (ValueError, TypeError) as exc:  # an address or a subject that cannot be a mail header
        raise _Final(FAILED, f"cannot build the message: {exc}") from None
    return message, [address for _, address in to]


def _digest(conn: Connection, row: dict[str, Any], spec_of: SpecOf) -> dict[str, Any]:
    """What an import's digest lists (``digest`` in its template), or ``_Final`` when none of its leads is still
    the salesperson's."""
    count, listed = notices.digest_leads(conn, row)
    if not count:
        raise _Final(CANCELLED, f"import digest not sent: none of its leads is still open and {row['for_user']}'s")
    rows = []
    for lead in listed:
        stage = spec_of(conn, lead["process"], lead["process_version"]).stage(lead["stage"])
        rows.append({"id": lead["id"], "stage": lead["stage"], "stage_name": stage.name if stage else lead["stage"],
                     "product": lead["product"], "url": notices.lead_url(lead["id"]),
                     "client": {k: lead[k] for k in ("name", "company", "email", "phone")}})
    return {"count": count, "leads": rows, "more": count - len(rows)}


def mail_language(recipient: str, spec: ProcessSpec, client: Mapping, owner: Mapping | None) -> str:
    """The language of a mail: a client's own (``client set ID --language``) for mails to the client, the owner's
    (``user set NAME --language``) for the owner's; else, and for a role's mails to several people, the process's
    ``language``."""
    if recipient == "client":
        return str(client.get("language") or spec.language)
    if recipient == "owner" and owner is not None:
        return str(owner.get("language") or spec.language)
    return spec.language


def message_id(key: str, config: mailer.SmtpConfig) -> str:
    """The same for every attempt at one mail, so a duplicate after a crash is recognisable."""
    return f"<{key}@{config.domain}>"


def _still_in_the_entry(state: LeadState, row: dict[str, Any]) -> None:
    """A reminder or a delayed mail goes only while the lead is still in the stage entry that queued it."""
    what = "reminder" if row["kind"] == "reminder" else "delayed e-mail"
    if state.status != LeadStatus.OPEN:
        raise _Final(CANCELLED, f"{what} not sent: lead {state.id} is {state.status}")
    if state.stage != row["stage"]:
        raise _Final(CANCELLED, f"{what} not sent: lead {state.id} has left stage '{row['stage']}' "
                                f"(it is in '{state.stage}')")
    if state.stage_entered_at != row["entered_at"]:
        raise _Final(CANCELLED, f"{what} not sent: lead {state.id} entered stage '{row['stage']}' again "
                                f"on {state.stage_entered_at:%Y-%m-%d %H:%M} (a reopen or a rotation)")


def _chased_task_open(state: LeadState, spec: ProcessSpec, row: dict[str, Any]) -> None:
    """A reminder that chases a task (``chases``, format 2) goes only while that task is open."""
    stage = spec.stage(row["stage"])
    chased = next((a.chases for a in (stage.on_enter if stage else ()) if a.kind == "remind"
                   and a.template == row["template"] and a.to == row["recipient"]), None)
    task = state.tasks.get((row["stage"], chased)) if chased else None
    if task is not None and task.state != TaskStatus.OPEN:
        done = "is done" if task.state == TaskStatus.DONE else "no longer applies to the lead"
        raise _Final(CANCELLED, f"reminder not sent: task '{chased}' of lead {state.id} {done}")


def _recipients(conn: Connection, row: dict[str, Any], state: LeadState, client: Mapping, owner: Mapping | None
                ) -> list[tuple[str, str]]:
    recipient = row["recipient"]
    if recipient == "client":
        if not client["email"]:
            # a client without an address is no delivery failure (monitoring watches failed mail): not sent
            raise _Final(CANCELLED, actions.no_client_address(row["lead_id"], client["id"], client["name"]))
        return [(client["name"], client["email"])]
    if recipient == "owner" and owner is not None:
        if not owner["email"]:
            raise _Final(FAILED, f"the owner of lead {state.id}, {owner['name']}, has no e-mail address "
                                 f"(leadflow user set {owner['name']} --email ADDRESS)")
        return [(owner["name"], owner["email"])]
    # an unassigned lead's reminders go to the managers of its team; a role's mail to the role's users there
    role = Role.MANAGER if recipient == "owner" else recipient
    people = conn.execute(sa.select(users.c.name, users.c.email).where(
        users.c.role == role, sa.or_(users.c.team == state.team, users.c.team.is_(None)))
        .order_by(users.c.name)).all()
    found = [(name, email) for name, email in people if email]
    if not found:
        team = f"team {state.team}" if state.team else "no team"
        who = f"lead {state.id} has no owner and no manager of {team}" if recipient == "owner" else (
            f"no {role} of {team} (or without a team)")
        raise _Final(FAILED, f"{who} has an e-mail address"
                             + (f"; {len(people)} without one" if people else ""))
    return found


def _context(row: dict[str, Any], state: LeadState, spec: ProcessSpec, client: Mapping, owner: Mapping | None,
             config: mailer.SmtpConfig) -> dict[str, Any]:
    stage = spec.stage(row["stage"])
    current = spec.stage(state.stage)
    return messages.context(
        process={"id": spec.id, "title": spec.title},
        stage={"id": row["stage"], "name": stage.name if stage else row["stage"]},
        lead={"id": state.id, "process": state.process, "stage": state.stage,
              "stage_name": current.name if current else state.stage, "status": state.status,
              "owner": state.owner, "team": state.team, "product": state.product, "source": state.source,
              "value": minor_to_money(state.value_minor), "currency": spec.currency,
              "created_at": state.created_at.isoformat(),
              "next_contact": state.next_contact_at.isoformat() if state.next_contact_at else None,
              "url": notices.lead_url(state.id)},
        fields={f.id: state.fields.get(f.id) for f in spec.fields},
        client={k: client[k] for k in ("name", "company", "email", "phone")},
        owner={"name": owner["name"], "email": owner["email"]} if owner is not None else None,
        mail={"kind": row["kind"], "to": row["recipient"], "due_at": row["due_at"].isoformat()},
        sender={"name": config.sender_name, "email": config.sender_address},
    )


def _mine(row: dict[str, Any], worker: str) -> list[Any]:
    return [outbox.c.id == row["id"], outbox.c.claimed_by == worker, outbox.c.state == SENDING]


def _result(row: dict[str, Any], state: str, error: str | None) -> results.MailResult:
    return {"id": row["id"], "lead_id": row["lead_id"], "kind": row["kind"], "template": row["template"],
            "to": row["recipient"], "attempts": row["attempts"], "state": state, "error": error}


def _event(conn: Connection, row: dict[str, Any], actor: str, kind: str, data: dict[str, Any]) -> None:
    client_id = conn.execute(sa.select(leads.c.client_id).where(leads.c.id == row["lead_id"])).scalar_one()
    store.append_events(conn, [(row["lead_id"], client_id, Event(kind=kind, at=clock.now(), actor=actor, data={
        "outbox": row["id"], "kind": row["kind"], "template": row["template"], "to": row["recipient"], **data}))])


def _finish(conn: Connection, row: dict[str, Any], worker: str, actor: str, state: str, why: str) -> results.MailResult:
    conn.execute(sa.update(outbox).where(*_mine(row, worker)).values(state=state, last_error=why, lease_until=None))
    if state == FAILED:
        _event(conn, row, actor, EventKind.MAIL_FAILED, {"error": why})
    return _result(row, state, why)


def _retry(conn: Connection, row: dict[str, Any], worker: str, why: str) -> results.MailResult:
    conn.execute(sa.update(outbox).where(*_mine(row, worker)).values(
        state=QUEUED, last_error=why, lease_until=None, next_attempt_at=clock.now() + backoff(row["attempts"])))
    return _result(row, QUEUED, why)


def _sent(conn: Connection, row: dict[str, Any], worker: str, actor: str, message: EmailMessage,
          addresses: list[str], refused: list[str]) -> results.MailResult:
    note = f"refused by the server: {', '.join(refused)}" if refused else None
    conn.execute(sa.update(outbox).where(outbox.c.id == row["id"], outbox.c.claimed_by == worker).values(
        state=SENT, sent_at=clock.now(), lease_until=None, last_error=note, to_address=", ".join(addresses),
        subject=str(message["Subject"]), message_id=str(message["Message-ID"])))
    _event(conn, row, actor, EventKind.MAIL_SENT,
           {"address": ", ".join(addresses), "message_id": str(message["Message-ID"])})
    return _result(row, SENT, note)


# -- listing and retrying ----------------------------------------------------------------------------

def view(row: Mapping) -> results.OutboxRow:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": row["id"], "key": row["key"], "lead_id": row["lead_id"], "kind": row["kind"],
            "template": row["template"], "to": row["recipient"], "stage": row["stage"], "state": row["state"],
            "due_at": iso(row["due_at"]), "attempts": row["attempts"], "next_attempt_at": iso(row["next_attempt_at"]),
            "last_error": row["last_error"], "to_address": row["to_address"], "subject": row["subject"],
            "message_id": row["message_id"], "created_at": iso(row["created_at"]), "sent_at": iso(row["sent_at"])}


def rows(conn: Connection, visible: Callable[[sa.Select[Any]], sa.Select[Any]], *, state: str | None,
         lead_id: int | None, limit: int) -> Iterator[results.OutboxRow]:
    query = sa.select(outbox).join(leads, leads.c.id == outbox.c.lead_id)
    if state is not None:
        query = query.where(outbox.c.state == state)
    if lead_id is not None:
        query = query.where(outbox.c.lead_id == lead_id)
    for row in conn.execute(visible(query).order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit)).mappings():
        yield view(row)
