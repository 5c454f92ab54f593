"""The engine's vocabulary: every role, status, state and event kind it stores, and the limits it enforces.

The values are ``StrEnum`` members, equal to their strings (``LeadStatus.OPEN == "open"``), so the database,
the event log and the JSON output hold exactly the text they always held; a name here is only a way to spell
the value once. This module imports nothing from the engine: every other module may import it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The roles of the system. A user may also hold a department role a process declares (``analyst``):
    such a role is a plain ``str``, never one of these."""

    SALESPERSON = "salesperson"
    MANAGER = "manager"
    ADMIN = "admin"
    #: a source of the HTTP intake (``leadflow token add``): its technical user, the actor of the leads it sends
    INTAKE = "intake"


#: The roles a person is added with (``leadflow user add``); an intake user is made by ``token add``.
USER_ROLES = (Role.SALESPERSON, Role.MANAGER, Role.ADMIN)
#: The roles that manage leads (their team's, or every team's).
MANAGERS = (Role.MANAGER, Role.ADMIN)
#: The roles whose holders may own leads.
OWNERS = (Role.SALESPERSON, Role.MANAGER)
#: The roles whose holders may add leads at all.
ADDERS = (Role.SALESPERSON, Role.MANAGER, Role.ADMIN, Role.INTAKE)


class LeadStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ClientKind(StrEnum):
    """A client is a person (B2C) or a company with its contact persons (B2B)."""

    PERSON = "person"
    COMPANY = "company"


#: The statuses of a closed lead.
CLOSED_STATUSES = (LeadStatus.WON, LeadStatus.LOST)


class TaskStatus(StrEnum):
    """The state of one task of a lead (``lead_tasks.state``)."""

    OPEN = "open"
    DONE = "done"
    NOT_APPLICABLE = "not_applicable"


class EventKind(StrEnum):
    """What an event of a lead's log records (``events.kind``); ``engine.state.apply`` knows each one."""

    CREATED = "created"
    ASSIGNED = "assigned"
    FIELD_SET = "field_set"
    TASK_DONE = "task_done"
    ADVANCED = "advanced"
    WON = "won"
    CLOSED = "closed"
    REOPENED = "reopened"
    MIGRATED = "migrated"
    REPORTED = "reported"
    EXTENDED = "extended"
    RECALLED = "recalled"
    ROTATED = "rotated"
    REVIEW_CONFIRMED = "review_confirmed"
    REVIEW_RETURNED = "review_returned"
    MAIL_SENT = "mail_sent"
    MAIL_FAILED = "mail_failed"
    CLIENT_MERGED = "client_merged"
    #: the client's contact data corrected (``leadflow client edit``, GDPR art. 16): which, by whom, why
    CLIENT_EDITED = "client_edited"
    #: the client's personal data erased (``leadflow client erase``, GDPR art. 17): by whom, when, why
    CLIENT_ERASED = "client_erased"
    #: a call, meeting, e-mail or note the salesperson logs (``leadflow activity add``)
    ACTIVITY = "activity"
    #: the next contact booked (or cleared) on the lead
    NEXT_CONTACT_SET = "next_contact_set"


class ActivityKind(StrEnum):
    """What an activity on a lead was (``leadflow activity add --kind``)."""

    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    NOTE = "note"


class CallOutcome(StrEnum):
    """How a call went (``--outcome``): ``no_answer`` counts an attempt to reach the client."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    LEFT_MESSAGE = "left_message"
    BUSY = "busy"
    WRONG_NUMBER = "wrong_number"


class OutboxState(StrEnum):
    """``queued`` -> ``sending`` -> ``sent``, or ``failed`` / ``cancelled`` (engine/outbox.py)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ReviewState(StrEnum):
    """A refusal review of the sales director (``reviews.state``)."""

    OPEN = "open"
    RETURNED = "returned"
    CONFIRMED = "confirmed"
    #: the lead was reopened by other means than the director's decision
    SUPERSEDED = "superseded"


class ClosureKind(StrEnum):
    """Why a lead was closed without a sale: the client said no, or we took the lead out."""

    REFUSAL = "refusal"
    REMOVAL = "removal"


# -- limits ---------------------------------------------------------------------------------------
#: A name: of a user, team, source, product, and the actor of an event (the ``String(200)`` columns).
NAME_LENGTH = 200
#: A client's name and company.
CLIENT_NAME_LENGTH = 500
#: A note, a report on a lead.
NOTE_LENGTH = 5000
#: The reason of an extension.
REASON_LENGTH = 1000
#: An e-mail address (RFC 5321's longest path).
EMAIL_LENGTH = 320
#: A phone number as written.
PHONE_LENGTH = 64

#: Ids are whole numbers from 1 up to (not including) this: the largest a database key (BIGINT) holds, plus one.
ID_END = 2**63


def is_id(value: object) -> bool:
    """Whether ``value`` can be the id of a stored row: a whole number (not a bool) in ``0 < id < 2**63``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < ID_END
