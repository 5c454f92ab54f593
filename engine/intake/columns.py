"""What a column of a CSV file (or a key of a web form) means: attributes, field ids or labels, a mapping file."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InvalidInputError, did_you_mean
from engine.i18n import N_, every_text
from engine.intake.csv_file import DELIMITERS
from engine.spec import FieldSpec, ProcessSpec, derived

# -- what a column (or a form's key) means ---------------------------------------------------------

#: The inquiry's attributes a file or a form may give, besides the process's fields.
ATTRIBUTES = ("name", "company", "email", "phone", "source", "product", "value", "owner")

#: Other names people give these columns (English, Polish, Romanian, Russian); compared by ``header_key``.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("full name", "client", "client name", "contact", "contact name", "customer", "imię i nazwisko",
             "klient", "nume", "nume complet", "имя", "фио", "клиент"),
    "company": ("company name", "organisation", "organization", "firma", "nazwa firmy", "companie", "compania",
                "компания", "организация"),
    "email": ("e-mail", "mail", "email address", "e-mail address", "adres e-mail", "adres email", "почта",
              "электронная почта"),
    "phone": ("telephone", "phone number", "mobile", "tel", "telefon", "numer telefonu", "nr telefonu",
              "телефон"),
    "source": ("lead source", "źródło", "sursa", "sursă", "источник"),
    "product": ("produkt", "produs", "продукт"),
    "value": ("amount", "expected value", "wartość", "kwota", "valoare", "сумма", "стоимость"),
    "owner": ("salesperson", "opiekun", "handlowiec", "responsabil", "ответственный", "менеджер"),
}

#: Columns an export writes about the lead's state (not the inquiry), and the two a rejects file adds:
#: an import reads past them, so an exported or rejected file imports as it is.
STATE_COLUMNS = ("id", "lead_id", "client_id", "process", "process_version", "stage", "stage_name", "status", "team",
                 "currency", "created_at", "stage_entered_at", "stage_due_at", "closed_at", "close_reason",
                 "line", "reason")

IGNORE = "ignore"


@functools.lru_cache(maxsize=4096)  # a web form sends the same few keys with every post
def header_key(text: str) -> str:
    """A name as compared: 'E-mail ' -> 'email', 'Imię i nazwisko' -> 'imieinazwisko' (case, accents,
    spaces and punctuation aside)."""
    text = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in text.casefold() if ch.isalnum())


_STATE_KEYS = frozenset(header_key(c) for c in STATE_COLUMNS)


@dataclass(frozen=True)
class Column:
    """A recognised column: where it is, its header as written, and what it gives (an attribute or a field)."""

    index: int
    header: str
    target: str
    field: FieldSpec | None = None  # set when ``target`` is a process field


@dataclass
class ColumnPlan:
    columns: list[Column]
    ignored: list[str]  # read past on purpose (state columns of an export, mapped to ``ignore``)
    unknown: list[str]  # not recognised
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (first, second, what both give)

    @staticmethod
    def closest(spec: ProcessSpec, header: str) -> str | None:
        """The attribute or field id an unknown header most likely meant."""
        import difflib

        names = {header_key(n): n for n in [*ATTRIBUTES, *(f.id for f in spec.fields)]}
        close = difflib.get_close_matches(header_key(header), list(names), n=1, cutoff=0.6)
        return names[close[0]] if close else None


@derived
def _known_names(spec: ProcessSpec) -> dict[str, str]:
    """Every name a column of ``spec`` may have, as compared (``header_key``), and what it gives (once per spec: a
    web form's post is planned like a file); a field's label in any of the process's languages."""
    names: dict[str, str] = {}
    for label_key, name in [*((header_key(label), f.id) for f in spec.fields for label in every_text(f.label)),
                            *((header_key(s), a) for a, others in SYNONYMS.items() for s in others),
                            *((header_key(a), a) for a in ATTRIBUTES),
                            *((header_key(f.id), f.id) for f in spec.fields)]:
        names[label_key] = name  # later entries win: field ids over attributes over synonyms over labels
    return names


def plan_columns(spec: ProcessSpec, headers: list[str], mapping: Mapping[str, str] | None = None,
                 *, what: str = "column") -> ColumnPlan:
    """What each header means: the mapping first, then the process's field ids, the attributes and their
    other names, the fields' labels, and the state columns of an export; the rest is unknown."""
    names = _known_names(spec)
    state = _STATE_KEYS
    mapped = {header_key(k): v for k, v in (mapping or {}).items()}
    for header, wanted in (mapping or {}).items():
        if wanted != IGNORE and wanted not in ATTRIBUTES and spec.field_spec(wanted) is None:
            known = [*ATTRIBUTES, *(f.id for f in spec.fields)]
            raise InvalidInputError(N_("the mapping sends {what} {header!r} to {wanted!r}, which is neither a lead "
                                       "attribute nor a field of process {process}{suggestion}; "
                                       "use one of: {known}, or ignore"), what=what, header=header, wanted=wanted,
                                    process=spec.id, suggestion=did_you_mean(wanted, known), known=', '.join(known))
    if mapping:
        missing = [h for h in mapping if header_key(h) not in {header_key(x) for x in headers}]
        if missing:
            raise InvalidInputError(N_("the mapping names {what}s the file does not have: {missing}"
                                       "; the file's {what}s are: {headers}"), what=what,
                                    missing=', '.join(map(repr, missing)),
                                    headers=', '.join(map(repr, headers)))
    plan = ColumnPlan([], [], [])
    taken: dict[str, str] = {}
    for index, header in enumerate(headers):
        key = header_key(header)
        target = mapped.get(key) or names.get(key)
        if target == IGNORE or (target is None and key in state):
            plan.ignored.append(header)
            continue
        if target is None:
            plan.unknown.append(header)
            continue
        if target in taken:
            plan.duplicates.append((taken[target], header, target))
            continue
        taken[target] = header
        plan.columns.append(Column(index, header, target, spec.field_spec(target)))
    return plan


def load_mapping(path: str | Path) -> dict[str, Any]:
    """A mapping file: ``columns: {header: attribute | field id | ignore}``, optional ``encoding`` and
    ``delimiter``, and for a history import ``reasons: {old system's reason: process's reason}``. See
    docs/intake.md."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(N_("cannot read the mapping file {path}: {strerror}"), path=path,
                                strerror=exc.strerror or exc) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(N_("the mapping file {path} is not valid YAML: {problem}"), path=path,
                                problem=' '.join(str(exc).split())) from None
    if not isinstance(data, dict) or not isinstance(data.get("columns", {} if "reasons" in data else None), dict):
        raise InvalidInputError(N_("the mapping file {path} must hold 'columns:', a mapping of the file's headers "
                                   "to lead attributes or field ids, e.g. columns: {{\"Nr tel.\": phone}}"), path=path)
    extra = set(data) - {"columns", "encoding", "delimiter", "reasons"}
    if extra:
        raise InvalidInputError(N_("the mapping file {path} has unknown keys {keys}; "
                                   "allowed: columns, encoding, delimiter, reasons"), path=path,
                                keys=', '.join(sorted(map(str, extra))))
    columns = {}
    for header, target in data.get("columns", {}).items():
        if not isinstance(header, str) or not isinstance(target, str):
            raise InvalidInputError(N_("the mapping file {path}: every entry of 'columns' maps a header to a name, "
                                       "got {header!r}: {target!r}"), path=path, header=header, target=target)
        columns[header] = target
    reasons = data.get("reasons") or {}
    if not isinstance(reasons, dict) or not all(isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip()
                                                for k, v in reasons.items()):
        raise InvalidInputError(N_("the mapping file {path}: 'reasons' maps each of the old system's closure reasons "
                                   "to a closure reason of the process, e.g. reasons: {{\"Too expensive\": price}}"),
                                path=path)
    delimiter = data.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or delimiter not in DELIMITERS):
        raise InvalidInputError(N_("the mapping file {path}: delimiter {delimiter!r} is not one of , ; or a tab"),
                                path=path, delimiter=delimiter)
    encoding = data.get("encoding")
    if encoding is not None and not isinstance(encoding, str):
        raise InvalidInputError(N_("the mapping file {path}: encoding must be a name such as cp1250"), path=path)
    return {"columns": columns, "encoding": encoding, "delimiter": delimiter,
            "reasons": {k.strip(): v.strip() for k, v in reasons.items()}}
