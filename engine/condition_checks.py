"""The checks of a process file's conditions (a transition's, a task's or an assignment rule's ``when``) and of
the values they compare with: a part of the semantic checks (``engine.semantics``), which locate each problem in
the document."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from typing import Any

from engine.document import Document, Path_
from engine.errors import Problem, did_you_mean
from engine.i18n import N_, Message
from engine.spec import LEAD_ATTRIBUTES, LIST_OPERATORS, OPERATORS_BY_TYPE, UNARY_OPERATORS

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: The months as a date's problem names them (in the nominative: "February 2025 has 28 days").
MONTHS = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"), N_("July"),
          N_("August"), N_("September"), N_("October"), N_("November"), N_("December"))
#: A reference to something the file does not declare, by what it names (a sentence each, for the languages).
UNDECLARED = {
    "stage": N_("stage '{name}' is not declared{hint} declared stages: {declared}"),
    "field": N_("field '{name}' is not declared{hint} declared fields: {declared}"),
    "role": N_("role '{name}' is not declared{hint} declared roles: {declared}"),
}


class ConditionChecks:
    """The semantic checker's conditions and values, and the two ways it words a problem."""

    doc: Document
    fields: dict[str, Any]

    def at(self, path: Path_, message: str) -> Problem:
        return self.doc.problem(path, message)

    def _unknown(self, what: str, name: str, declared: list[str]) -> Message:
        return Message(UNDECLARED[what], name=name, hint=did_you_mean(name, declared) or ";",
                       declared=", ".join(declared) or Message(N_("none")))

    def _check_condition(self, path: Path_, cond: dict[str, Any]) -> Iterator[Problem]:
        for combinator in ("all", "any"):
            if combinator in cond:
                for k, sub in enumerate(cond[combinator]):
                    yield from self._check_condition((*path, combinator, k), sub)
                return
        if "not" in cond:
            yield from self._check_condition((*path, "not"), cond["not"])
            return
        op = cond["op"]
        if "attribute" in cond:
            name = cond["attribute"]
            if name == "team" and path[0] == "assignment":
                yield self.at((*path, "attribute"), Message(
                    N_("an assignment rule cannot test the lead's team: the rules are what give the lead its team; "
                       "test its fields, value, source or product")))
                return
            field_ = {"type": LEAD_ATTRIBUTES[name], "id": name,
                      "what": Message(N_("the lead's {attribute}"), attribute=name)}
            what = Message(N_("the lead's {attribute} ({type})"), attribute=name, type=field_["type"])
        else:
            name = cond["field"]
            found = self.fields.get(name)
            if found is None:
                yield self.at((*path, "field"), self._unknown("field", name, list(self.fields)))
                return
            if found.get("personal"):  # an erasure replaces its values: the lead's history must not depend on them
                yield self.at((*path, "field"), Message(
                    N_("field '{field}' is personal (erased with the client's data) and may not decide a condition; "
                       "remove 'personal' or the condition"), field=name))
                return
            field_ = found
            what = _typed_field(field_["type"], name)
        kind = field_["type"]
        if op not in OPERATORS_BY_TYPE[kind]:
            yield self.at((*path, "op"), Message(N_("operator '{op}' does not apply to {what}; use one of: {ops}"),
                                                 op=op, what=what, ops=", ".join(OPERATORS_BY_TYPE[kind])))
            return
        if op in UNARY_OPERATORS:
            if "value" in cond:
                yield self.at((*path, "value"), Message(N_("operator '{op}' takes no value"), op=op))
            return
        if "value" not in cond:
            yield self.at(path, Message(N_("operator '{op}' needs a value"), op=op))
            return
        value = cond["value"]
        if op in LIST_OPERATORS:
            if not isinstance(value, list):
                yield self.at((*path, "value"), Message(N_("operator '{op}' takes a list of values, e.g. [a, b]"),
                                                        op=op))
                return
            for k, item in enumerate(value):
                yield from self._check_value((*path, "value", k), field_, item)
        elif isinstance(value, list):
            yield self.at((*path, "value"), Message(N_("operator '{op}' takes one value, not a list"), op=op))
        else:
            yield from self._check_value((*path, "value"), field_, value)

    def _check_value(self, path: Path_, field_: dict[str, Any], value: Any) -> Iterator[Problem]:
        kind, name = field_["type"], field_["id"]
        raw = self.doc.source(path)
        what = field_.get("what") or _typed_field(kind, name)
        if kind in ("choice", "choices"):
            if not isinstance(value, str) or value not in field_["options"]:
                shown = raw if raw is not None else value
                yield self.at(path, Message(N_("'{value}' is not an option of {what}{hint} options: {options}"),
                                            value=shown, what=_typed_field(kind, name),
                                            hint=did_you_mean(str(shown), field_["options"]) or ";",
                                            options=", ".join(field_["options"])))
        elif kind == "bool":
            if not isinstance(value, bool):
                yield self.at(path, Message(N_("bool field '{field}' compares with true or false, got {value}"),
                                            field=name, value=repr(value)))
        elif kind in ("number", "money"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                yield self.at(path, Message(N_("{what} compares with a number, got {value}"), what=what,
                                            value=repr(value)))
            elif kind == "money" and value < 0:
                yield self.at(path, Message(N_("money must not be negative, got {value}"), value=value))
        elif kind == "date":
            # Stored dates are YYYY-MM-DD text and compare as such, so only that exact form will do
            # (date.fromisoformat alone would also take 20240301 or 2024-W09-5).
            written = isinstance(value, str) and _ISO_DATE.fullmatch(value) is not None
            wrong = _nonexistent_date(value) if written else Message(N_("not written so"))
            if wrong:
                yield self.at(path, Message(N_("date field '{field}' compares with a date written YYYY-MM-DD, got "
                                               "{value}: {why}"), field=name, value=repr(value), why=wrong))
        elif kind == "text" and not isinstance(value, str):
            if raw is not None:
                yield self.at(path, Message(N_("{what} compares with text, got {value} (write it in quotes: '{raw}')"),
                                            what=what, value=repr(value), raw=raw))
            else:
                yield self.at(path, Message(N_("{what} compares with text, got {value}"), what=what,
                                            value=repr(value)))


def _typed_field(kind: str, name: str) -> Message:
    """``choice field 'roof_type'``: a field named with its type."""
    return Message(N_("{type} field '{field}'"), type=kind, field=name)


def _nonexistent_date(text: str) -> str:
    """Why a YYYY-MM-DD text is no date, or "" when it is one."""
    year, month, day = (int(part) for part in text.split("-"))
    if not 1 <= month <= 12:
        return Message(N_("a date that does not exist: there is no month {month}"), month=f"{month:02d}")
    days = calendar.monthrange(year, month)[1] if year else 31
    if not year:
        return Message(N_("a date that does not exist: there is no year 0"))
    if not 1 <= day <= days:
        return Message(N_("a date that does not exist: {month} {year} has {days} days"),
                       month=Message(MONTHS[month - 1]), year=year, days=days)
    return ""
