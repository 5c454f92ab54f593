"""Pure rules over a spec and a lead's data: typed field values, conditions, what blocks a move.

Nothing here touches the database; the engine calls these before it writes.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from engine import i18n
from engine.errors import InvalidInputError
from engine.i18n import N_, Message
from engine.spec import LEAD_ATTRIBUTES, Condition, FieldSpec, ProcessSpec, StageSpec, TaskSpec
from engine.vocab import CLIENT_NAME_LENGTH, EMAIL_LENGTH, PHONE_LENGTH, TaskStatus

_TRUE = {"true", "yes", "y", "1", "tak", "da", "да"}
_FALSE = {"false", "no", "n", "0", "nie", "nu", "нет"}
MONEY_QUANTUM = Decimal("0.01")


def is_encodable(text: str) -> bool:
    """False for strings Python made from invalid UTF-8 (lone surrogates), which no database can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"[+0-9 ()./-]{3,}")
_TAX_ID = re.compile(r"[\w .,/-]+")


def has_control_characters(text: str) -> bool:
    """C0 controls but tab and newline, DEL, and the C1 controls (an 8-bit escape can drive a terminal)."""
    return _CONTROL.search(text) is not None  # a regex: bulk imports check millions of values


def clean_text(value: str | None, what: str, limit: int = CLIENT_NAME_LENGTH) -> str | None:
    """``value`` stripped, or None when empty; refuses text too long, not UTF-8, or with control characters."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInputError(N_("{what} is longer than {limit} characters"), what=what, limit=limit)
    if not is_encodable(value):
        raise InvalidInputError(N_("{what} is not valid text (invalid UTF-8)"), what=what)
    if has_control_characters(value):
        raise InvalidInputError(N_("{what} contains control characters"), what=what)
    return value or None


#: What makes a one-line text read as another: the bidirectional embeddings, overrides and isolates
#: (U+202A-202E, U+2066-2069) and the direction marks (U+200E, U+200F, U+061C).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
#: What breaks a one-line text: line and paragraph breaks and tabs, with the spaces around them.
_BREAKS = re.compile("\\s*[\n\r\t\v\f\x85\u2028\u2029]\\s*")


def one_line_text(value: str | None, what: str, limit: int = CLIENT_NAME_LENGTH) -> str | None:
    """``clean_text`` for a text shown on one line (a client's name or company, a user's or team's name, a source,
    a product, an e-mail address, a phone): the one check of every one-line text, on every path (CLI, API, HTTP,
    import).

    A line break or tab is neutralised into one space (a spreadsheet's multi-line cell is still one name, and a
    mail's header no longer breaks on it); a bidirectional control is refused, because it makes the text show as
    another ("Invoice\u202egpj.exe" shows "Invoice exe.jpg") and removing it silently would store a name other
    than the one sent."""
    if value is None:
        return None
    text = clean_text(_BREAKS.sub(" ", value), what, limit)
    if text is not None and (found := _BIDI_CONTROLS.search(text)) is not None:
        raise InvalidInputError(N_("{what} contains the bidirectional control U+{code:04X} at character "
                                   "{position}; a one-line text may not change the direction it reads in"), what=what,
                                code=ord(found.group()), position=found.start() + 1)
    return text


def check_email(value: str | None, what: str = "e-mail") -> str | None:
    email = one_line_text(value, what, EMAIL_LENGTH)
    if email and not _EMAIL.fullmatch(email):
        raise InvalidInputError(N_("{what} {email!r} is not an address such as name@example.com"), what=what,
                                email=email)
    return email


#: The region national phone numbers are read in when the process names none: ``LEADFLOW_PHONE_REGION`` (an ISO
#: 3166 code such as PL, RO, RU), else PL (docs/intake.md).
DEFAULT_PHONE_REGION = "PL"


class PhoneError(InvalidInputError):
    """A phone number that ``phonenumbers`` cannot read as a valid number."""


def phone_region(region: str | None = None) -> str:
    """The region for national numbers: ``region`` (a process's calendar country) if phonenumbers knows it, else
    the installation's (``LEADFLOW_PHONE_REGION``), else PL."""
    import phonenumbers

    for candidate in (region, os.environ.get("LEADFLOW_PHONE_REGION"), DEFAULT_PHONE_REGION):
        if candidate and candidate.upper() in phonenumbers.SUPPORTED_REGIONS:
            return candidate.upper()
    return DEFAULT_PHONE_REGION


@dataclass(frozen=True)
class Phone:
    e164: str
    national_number: int


def parse_phone(text: str, region: str | None = None) -> Phone:
    """``text`` as a valid phone number (a national one in ``phone_region(region)``), or ``PhoneError`` saying why."""
    known = _BY_E164.get(text)
    if known is not None:
        return known
    phone = _parse_phone(text, phone_region(region))
    if len(_BY_E164) >= 4096:
        _BY_E164.clear()
    _BY_E164[phone.e164] = phone
    return phone


#: Numbers read before, by their E.164 form: a checked number is read again as that (its client, its search
#: columns), and an E.164 number reads the same in every region.
_BY_E164: dict[str, Phone] = {}


@functools.lru_cache(maxsize=4096)  # a new lead's phone is read three or four times (the inquiry, its client)
def _parse_phone(text: str, where: str) -> Phone:
    import phonenumbers

    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "it is not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "it is too short",
        phonenumbers.NumberParseException.TOO_LONG: "it is too long",
    }
    try:
        number = phonenumbers.parse(text, where)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(N_("phone {text!r} is not a phone number: {reason}"), text=text,
                         reason=reasons.get(exc.error_type, str(exc))) from None
    if not phonenumbers.is_valid_number(number):
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "it is too short",
            phonenumbers.ValidationResult.TOO_LONG: "it is too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "its country code is unknown",
            phonenumbers.ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
        }.get(phonenumbers.is_possible_number_with_reason(number), "no such number is in use")
        region_of = phonenumbers.region_code_for_country_code(number.country_code or 0)
        raise PhoneError(N_("phone {text!r} is not a valid number of {region_of} (+{country_code}): {why}; "
                            "write it as +CC NUMBER, or as a national number of {where}"), text=text,
                         region_of=region_of,
                         country_code=number.country_code, why=why, where=where)
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number.national_number or 0)


def check_phone(value: str | None, region: str | None = None) -> str | None:
    """A phone number checked and in E.164 (``+48601222333``): national numbers read in ``phone_region(region)``;
    refused with the reason when it is no valid number."""
    phone = one_line_text(value, "phone", PHONE_LENGTH)
    if phone and not _PHONE.fullmatch(phone):
        raise InvalidInputError(N_("phone {phone!r} may contain only digits, spaces and + ( ) . / -"), phone=phone)
    if phone and phone.startswith("00"):
        phone = "+" + phone[2:]
    return parse_phone(phone, region).e164 if phone else None


def check_tax_id(value: str | None) -> str | None:
    """A tax id (NIP, CUI, INN...) as written, trimmed: letters, digits, spaces and - . / only."""
    tax_id = one_line_text(value, "tax id", PHONE_LENGTH)
    if tax_id and not _TAX_ID.fullmatch(tax_id):
        raise InvalidInputError(N_("tax id {tax_id!r} may contain only letters, digits, spaces and - . /"),
                                tax_id=tax_id)
    return tax_id


def normalise_email(email: str | None) -> str | None:
    """The form of an e-mail address that finds its client again: trimmed, lower case."""
    return email.strip().lower() or None if email else None


def normalise_phone(phone: str | None) -> str | None:
    """The form of a phone number that finds its client again: E.164, as ``check_phone`` stores it."""
    return phone or None


#: The decimal mark of each language's numbers and its grouping mark besides spaces (CLDR: Polish and Russian
#: group with spaces only, so ``35.000`` is ambiguous there); a space of any kind always groups.
_MARKS: dict[str, tuple[str, str | None]] = {"en": (".", ","), "pl": (",", None), "ro": (",", "."), "ru": (",", None)}
_SEPARATED = re.compile(r"[+-]?[0-9.,]+")
_GROUPED = re.compile(r"[0-9]{1,3}(?:[0-9]{3})*")


def decimal_text(text: str, *, what: str = "value", language: str | None = None) -> str:
    """A number as people write it (``35 000,00``, ``35.000,00``, ``35,000.00``, ``12,5``) as ``Decimal`` reads
    it (``35000.00``), the one reading of every input path: spaces group; with both marks the last one is the
    decimal mark; one mark used several times groups; one mark used once is the decimal mark unless exactly three
    digits follow it, when the reader's language decides (``i18n.language()``: ``35.000`` is 35000 in Romanian,
    35 in English) and a mark that is neither its decimal nor its grouping one (``35.000`` in Polish) is refused as
    ambiguous. Anything else is returned for ``Decimal`` to judge."""
    raw = re.sub(r"[\s\u00a0\u202f']", "", text.strip())
    if not _SEPARATED.fullmatch(raw) or ("," not in raw and "." not in raw):
        return raw
    sign = raw[0] if raw[0] in "+-" else ""
    body = raw[len(sign):]
    if "," in body and "." in body:
        decimal_mark = max((",", "."), key=body.rfind)
        whole, _sep, fraction = body.rpartition(decimal_mark)
        return sign + _ungrouped(whole, "." if decimal_mark == "," else ",", text, what) + "." + fraction
    mark = "," if "," in body else "."
    if body.count(mark) > 1:
        return sign + _ungrouped(body, mark, text, what)
    whole, _sep, fraction = body.partition(mark)
    if len(fraction) != 3 or not whole:
        return sign + whole + "." + fraction
    decimal_mark, group_mark = _MARKS.get(language or i18n.language(), _MARKS["en"])
    if mark == decimal_mark:
        return sign + whole + "." + fraction
    if mark == group_mark:
        return sign + _ungrouped(body, mark, text, what)
    raise InvalidInputError(N_("{what} {text!r} is ambiguous: write {whole}{fraction} for thousands or "
                               "{whole}{decimal}{fraction} for a fraction"), what=what, text=text, whole=whole,
                            fraction=fraction, decimal=decimal_mark)


def _ungrouped(whole: str, group_mark: str, text: str, what: str) -> str:
    digits = whole.replace(group_mark, "")
    groups = whole.split(group_mark)
    if not (_GROUPED.fullmatch(groups[0]) and len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        raise InvalidInputError(N_("{what} must be a number such as 12500.50 or 12 500,50, got {text!r}: its "
                                   "thousands are not groups of three digits"), what=what, text=text)
    return digits


def chosen_language(code: str | None) -> str | None:
    """A language a user chose for themselves or a client (None or empty: none, the default applies), or the
    refusal naming the languages leadflow speaks (``i18n.LANGUAGES``)."""
    if code is None or not code.strip():
        return None
    found = code.strip().lower()
    if found not in i18n.LANGUAGES:
        raise InvalidInputError(N_("language '{language}' is not one leadflow speaks; choose one of {known}"),
                                language=code, known=", ".join(i18n.LANGUAGES))
    return found


_SHORT_DATE = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")


def local_date(text: str, language: str | None = None) -> dt.date:
    """A date written in ISO (``2026-03-16``) or, in Polish, Romanian and Russian, the locale's short form, day
    first (``16.03.2026``, ``16/03/2026``); English takes ISO only (its day and month orders differ).
    ``ValueError`` for anything else."""
    found = _SHORT_DATE.fullmatch(text.strip())
    if found and (language or i18n.language()) in ("pl", "ro", "ru"):
        day, month, year = (int(g) for g in found.groups())
        return dt.date(year, month, day)
    return dt.date.fromisoformat(text.strip())


def parse_money(text: Any, *, what: str = "value") -> Decimal:
    """An exact amount with at most two decimals; accepts '12 500,50' as written in PL/RO/RU."""
    if isinstance(text, bool):
        raise InvalidInputError(N_("{what} must be an amount such as 12500.50, got {text!r}"), what=what, text=text)
    raw = decimal_text(str(text), what=what)
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidInputError(N_("{what} must be an amount such as 12500.50, got {text!r}"), what=what,
                                text=text) from None
    if not amount.is_finite():
        raise InvalidInputError(N_("{what} must be a finite amount, got {text!r}"), what=what, text=text)
    if amount < 0:
        raise InvalidInputError(N_("{what} must not be negative, got {text!r}"), what=what, text=text)
    if amount >= Decimal(10) ** 13:  # first: quantizing more digits than the context's precision raises
        raise InvalidInputError(N_("{what} is too large: {text!r}"), what=what, text=text)
    if amount != amount.quantize(MONEY_QUANTUM):
        raise InvalidInputError(N_("{what} has more than two decimals: {text!r}"), what=what, text=text)
    return amount.quantize(MONEY_QUANTUM)


def money_to_minor(amount: Decimal) -> int:
    return int(amount * 100)


def minor_to_money(minor: int | None) -> str | None:
    return None if minor is None else str((Decimal(minor) / 100).quantize(MONEY_QUANTUM))


def coerce_field(field: FieldSpec, value: Any) -> Any:
    """A value (often a string from the CLI, a CSV or a form) as the JSON value stored for ``field``.

    text -> str, number -> int or float, money -> decimal string, date -> 'YYYY-MM-DD',
    choice -> one of the options, bool -> true/false. Empty text clears the field (None).
    """
    where = Message(N_("field '{field}' ({type})"), field=field.id, type=field.type)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if field.type == "text":
        if not isinstance(value, str):
            raise InvalidInputError(N_("{where} takes text, got {value!r}"), where=where, value=value)
        if not is_encodable(value):
            raise InvalidInputError(N_("{where} is not valid text (invalid UTF-8)"), where=where)
        if has_control_characters(value):
            raise InvalidInputError(N_("{where} contains control characters"), where=where)
        if len(value) > 10_000:
            raise InvalidInputError(N_("{where} is longer than 10,000 characters"), where=where)
        return value
    if field.type == "choices":
        return _choices(field, value, where)
    if field.type == "choice":
        text = str(value).strip()
        if text not in field.options:
            raise InvalidInputError(N_("{where} must be one of: {options}; got {value!r}"), where=where,
                                    options=', '.join(field.options), value=value)
        return text
    if field.type == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise InvalidInputError(N_("{where} takes true or false (yes/no), got {value!r}"), where=where, value=value)
    if field.type == "date":
        text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
        try:
            return local_date(text).isoformat()
        except ValueError:
            raise InvalidInputError(N_("{where} takes a date written YYYY-MM-DD, got {value!r}"), where=where,
                                    value=value) from None
    if field.type == "money":
        amount = parse_money(value, what=where)
        _check_bounds(field, amount, where)
        return str(amount)
    # number
    if isinstance(value, bool):
        raise InvalidInputError(N_("{where} takes a number, got {value!r}"), where=where, value=value)
    try:
        number = Decimal(decimal_text(value, what=where) if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise InvalidInputError(N_("{where} takes a number, got {value!r}"), where=where, value=value) from None
    if not number.is_finite():
        raise InvalidInputError(N_("{where} takes a finite number, got {value!r}"), where=where, value=value)
    if number != 0 and not -15 <= number.adjusted() <= 15:
        raise InvalidInputError(N_("{where} takes a number between 1e-15 and 1e15 in size, got {value!r}"), where=where,
                                value=value)
    _check_bounds(field, number, where)
    return int(number) if number == number.to_integral_value() else float(number)


def _choices(field: FieldSpec, value: Any, where: str) -> list[str] | None:
    """Options of a ``choices`` field, from a list or text separated by commas; stored in the options' order."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    chosen = {str(item).strip() for item in items} - {""}
    wrong = sorted(chosen - set(field.options))
    if wrong:
        raise InvalidInputError(N_("{where} takes options from: {options} (separated by commas); "
                                   "got {value}"), where=where, options=', '.join(field.options),
                                value=', '.join(repr(w) for w in wrong))
    return [o for o in field.options if o in chosen] or None


def _check_bounds(field: FieldSpec, number: Decimal, where: str) -> None:
    if field.min is not None and number < Decimal(str(field.min)):
        raise InvalidInputError(N_("{where} must be at least {min}, got {number}"), where=where, min=field.min,
                                number=number)
    if field.max is not None and number > Decimal(str(field.max)):
        raise InvalidInputError(N_("{where} must be at most {max}, got {number}"), where=where, max=field.max,
                                number=number)


def _comparable(kind: str, value: Any) -> Any:
    if kind == "money":
        return Decimal(str(value))
    return value


class Facts(Protocol):
    """What a condition reads of a lead: its fields and the attributes in ``LEAD_ATTRIBUTES``."""

    @property
    def fields(self) -> dict[str, Any]: ...
    @property
    def value_minor(self) -> int | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...
    @property
    def team(self) -> str | None: ...


def attribute_key(name: str) -> str:
    """The key of a lead attribute among the facts a condition reads (field ids cannot start with '@')."""
    return f"@{name}"


def facts(fields: dict[str, Any], *, value_minor: int | None, source: str | None, product: str | None,
          team: str | None) -> dict[str, Any]:
    """What a condition reads of a lead: its fields, and its attributes under ``attribute_key``."""
    return {**fields, "@value": None if value_minor is None else Decimal(value_minor) / 100, "@source": source,
            "@product": product, "@team": team}


def lead_facts(lead: Facts) -> dict[str, Any]:
    """``facts`` of a lead (a ``LeadState`` or anything with its fields and attributes)."""
    return facts(lead.fields, value_minor=lead.value_minor, source=lead.source, product=lead.product,
                 team=lead.team)


def evaluate(cond: Condition, fields: dict[str, Any], spec: ProcessSpec) -> bool:
    """Whether ``cond`` holds for a lead with these facts (its stored, typed field values, and its attributes
    as ``facts`` gives them: a condition on an attribute reads nothing when the caller passed fields alone)."""
    if cond.all:
        return all(evaluate(c, fields, spec) for c in cond.all)
    if cond.any:
        return any(evaluate(c, fields, spec) for c in cond.any)
    if cond.not_ is not None:
        return not evaluate(cond.not_, fields, spec)
    if cond.attribute is not None:
        kind = LEAD_ATTRIBUTES[cond.attribute]
        current = fields.get(attribute_key(cond.attribute))
    else:
        assert cond.field is not None
        field = spec.field_spec(cond.field)
        assert field is not None
        kind = field.type
        current = fields.get(cond.field)
    if cond.op == "is_set":
        return current is not None
    if cond.op == "is_unset":
        return current is None
    if current is None:
        return cond.op in ("ne", "not_in", "not_contains")
    if cond.op in ("contains", "not_contains"):  # a choices field: a list of options
        return (cond.value in current) == (cond.op == "contains")
    have = _comparable(kind, current)
    if cond.op in ("in", "not_in"):
        found = any(have == _comparable(kind, v) for v in cond.value)
        return found if cond.op == "in" else not found
    want = _comparable(kind, cond.value)
    if cond.op == "eq":
        return bool(have == want)
    if cond.op == "ne":
        return bool(have != want)
    if cond.op == "gt":
        return bool(have > want)
    if cond.op == "gte":
        return bool(have >= want)
    if cond.op == "lt":
        return bool(have < want)
    return bool(have <= want)  # lte


def applies(task: TaskSpec, fields: dict[str, Any], spec: ProcessSpec) -> bool:
    """Whether ``task`` applies to a lead with these facts (``lead_facts``)."""
    return task.when is None or evaluate(task.when, fields, spec)


def missing_to_leave(
    stage: StageSpec, task_states: dict[str, str], fields: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(open mandatory tasks, unset required fields) that keep a lead in ``stage``."""
    open_tasks = [t.id for t in stage.all_tasks if t.mandatory and task_states.get(t.id) == TaskStatus.OPEN]
    unset = [f for f in stage.required_fields if fields.get(f) is None]
    return open_tasks, unset
