"""Checking an inquiry (a CSV row or a form post) by the process's rules, one checker for both, and finding
its client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import rules
from engine.errors import InvalidInputError, did_you_mean
from engine.i18n import N_, SEVERAL, Message, message_of_error
from engine.intake.columns import ATTRIBUTES, Column, plan_columns
from engine.spec import ProcessSpec
from engine.store import clients, driver_rows
from engine.vocab import CLIENT_NAME_LENGTH, NAME_LENGTH

# -- checking an inquiry -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldError:
    """One refused value: the column or key as the sender wrote it, and why: an ``i18n.Message`` (a ``str``, its
    English text), its template and parameters kept so that it is shown in the reader's language
    (docs/i18n.md)."""

    field: str
    message: Message

    @classmethod
    def of(cls, field: str, error: BaseException) -> FieldError:
        return cls(field, message_of_error(error))


class InquiryErrors(InvalidInputError):
    """An inquiry with refused values; ``errors`` lists every one (the HTTP intake answers them as 422).

    Its own message is theirs joined with "; ", in the reader's language too; ``process_language`` is the one the
    form's process speaks (the HTTP intake answers in it when the browser asks for none leadflow knows)."""

    def __init__(self, errors: list[FieldError], *, language: str | None = None):
        self.errors = errors
        self.process_language = language
        super().__init__(SEVERAL, reasons=[e.message for e in errors])


@dataclass(slots=True)
class Inquiry:
    """What ``add_lead`` takes, checked, typed and normalised."""

    name: str
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    source: str | None = None
    product: str | None = None
    value_minor: int | None = None
    owner: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    email_norm: str | None = None
    phone_norm: str | None = None


_TEXT_LIMITS = {"name": CLIENT_NAME_LENGTH, "company": CLIENT_NAME_LENGTH, "source": NAME_LENGTH,
                "product": NAME_LENGTH, "owner": NAME_LENGTH}


def check_inquiry(values: list[tuple[Column, Any]], region: str | None = None
                  ) -> tuple[Inquiry | None, list[FieldError]]:
    """Every value checked by the rules ``add_lead`` applies; all problems, not just the first. National phone
    numbers are read in ``region`` (the process's calendar country; ``rules.phone_region``)."""
    out = Inquiry(name="")
    errors: list[FieldError] = []
    for column, raw in values:
        target = column.target
        if isinstance(raw, list) and (column.field is None or column.field.type != "choices"):
            # a form's repeated name (checkboxes) or a JSON list: only a choices field takes several values
            errors.append(FieldError(column.header, Message(
                N_("'{key}' takes one value, got {count}; only a field of several choices takes more"),
                key=column.header, count=len(raw))))
            continue
        try:
            if column.field is not None:
                typed = rules.coerce_field(column.field, raw)
                if typed is not None:
                    out.fields[target] = typed
                continue
            amount = target == "value" and isinstance(raw, (int, float)) and not isinstance(raw, bool)
            if raw is not None and not isinstance(raw, str) and not amount:
                raise InvalidInputError(N_("{target} must be text, got {raw!r}"), target=target, raw=raw)
            if target == "email":
                out.email = rules.check_email(raw)
                out.email_norm = rules.normalise_email(out.email)
            elif target == "phone":
                out.phone = rules.check_phone(raw, region)
                out.phone_norm = rules.normalise_phone(out.phone)
            elif target == "value":
                out.value_minor = (rules.money_to_minor(rules.parse_money(raw))
                                   if raw is not None and str(raw).strip() else None)
            else:
                setattr(out, target, rules.one_line_text(raw, target, _TEXT_LIMITS[target]))
        except InvalidInputError as exc:
            errors.append(FieldError.of(column.header, exc))
    name_header = next((c.header for c, _ in values if c.target == "name"), "name")
    if not out.name and not any(e.field == name_header for e in errors):
        errors.insert(0, FieldError(name_header, Message(N_("a lead needs the client's name"))))
    return (None if errors else out), errors


def find_client(conn: Connection, email_norm: str | None, phone_norm: str | None) -> int | None:
    """The earliest client with this normalised e-mail, else with this phone: the same person again.

    On PostgreSQL two requests for the same person may run side by side: each first takes a transaction lock
    on its e-mail and phone (advisory locks, in a fixed order), so the second waits until the first has
    committed its new client, then finds it. (SQLite's writers take turns at ``BEGIN IMMEDIATE`` already.)"""
    if conn.dialect.name == "postgresql":
        names = [f"{kind}:{value}" for kind, value in (("email", email_norm), ("phone", phone_norm)) if value]
        for name in sorted(names):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": name})
    for statement, key in ((_EARLIEST_BY_EMAIL, email_norm), (_EARLIEST_BY_PHONE, phone_norm)):
        if key:
            found = driver_rows(conn, statement, {"key": key})[0]["earliest"]
            if found is not None:
                return int(found)
    return None


def _earliest_client(column: sa.ColumnElement[Any]) -> sa.Select[tuple[Any]]:
    return sa.select(sa.func.min(clients.c.id).label("earliest")).where(column == sa.bindparam("key"),
                                                                          clients.c.merged_into.is_(None))


#: Built once: an intake post asks them twice, and building a statement costs more than running it.
_EARLIEST_BY_EMAIL = _earliest_client(clients.c.email_norm)
_EARLIEST_BY_PHONE = _earliest_client(clients.c.phone_norm)



# -- the HTTP intake ---------------------------------------------------------------------------------

def check_submission(spec: ProcessSpec, values: Mapping[str, Any]) -> Inquiry:
    """A web form's inquiry, by the import's rules: keys are recognised like a file's headers (attributes,
    field ids, labels), process fields may also come as a ``fields`` object. Every problem is collected;
    unknown keys and an owner (the assignment rules choose it) are problems too."""
    errors: list[FieldError] = []
    nested = values.get("fields", {}) if spec.field_spec("fields") is None else {}
    if not isinstance(nested, Mapping):
        errors.append(FieldError("fields", Message(N_("fields must be an object of field ids and values, got "
                                                      "{value!r}"), value=nested)))
        nested = {}
    keys = [k for k in values if k != "fields" or spec.field_spec("fields") is not None]
    plan = plan_columns(spec, keys, what="key")
    known = [*ATTRIBUTES, *(f.id for f in spec.fields)]
    errors += [FieldError(k, Message(N_("'{key}' is not a lead attribute or a field of process {process}"
                                        "{suggestion}"), key=k, process=spec.id, suggestion=did_you_mean(k, known)))
               for k in plan.unknown]
    errors += [FieldError(k, Message(N_("'{key}' is set by leadflow, not by an inquiry"), key=k))
               for k in plan.ignored]
    errors += [FieldError(second, Message(N_("'{first}' and '{second}' both give the lead's {target}; send one"),
                                          first=first, second=second, target=target))
               for first, second, target in plan.duplicates]
    errors += [FieldError(c.header, Message(N_("the owner of a new lead is chosen by the assignment rules, not by a "
                                               "form"))) for c in plan.columns if c.target == "owner"]
    columns = [(c, values[c.header]) for c in plan.columns if c.target != "owner"]
    given = {c.target: c.header for c, _ in columns}
    for key, value in nested.items():
        spec_field = spec.field_spec(str(key))
        if spec_field is None:
            errors.append(FieldError(f"fields.{key}", Message(
                N_("'{key}' is not a field of process {process}{suggestion}"), key=key, process=spec.id,
                suggestion=did_you_mean(str(key), [f.id for f in spec.fields]))))
        elif spec_field.id in given:
            errors.append(FieldError(f"fields.{key}", Message(N_("'{key}' is also given as '{other}'"), key=key,
                                                              other=given[spec_field.id])))
        else:
            columns.append((Column(-1, f"fields.{key}", spec_field.id, spec_field), value))
    inquiry, problems = check_inquiry(columns, spec.calendar)
    errors += problems
    if errors or inquiry is None:
        raise InquiryErrors(errors, language=spec.language)
    return inquiry
