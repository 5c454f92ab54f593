"""Leads from outside: recognising what an inquiry's columns or keys mean, checking an inquiry by the
process's rules, and the bulk CSV import.

One checker (``InquiryChecker``) serves the CSV import and the HTTP intake, so a row of a file and a form
post are typed and refused alike, by the same functions ``Engine.add_lead`` uses (``engine.rules``).

The import streams the file once and writes in batches with driver-level ``executemany``, in ONE
transaction: a bad file, ``on_error="abort"`` with a bad row, a dry run or a killed process leave the
database exactly as before, and a rerun cannot create duplicates. Every lead it writes is what
``Engine.add_lead`` would have stored for the same input: the same ``created`` event, applied by
``engine.state.apply`` (once per distinct first-stage outcome, then reused for every lead like it), the
same task rows and projections, written by the same ``store.write_leads`` (tests/test_intake_import.py proves it
lead by lead), and its owner decided by the same ``assignment.owner_of_new_lead``.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import actions, policy, results, rules, store
from engine.assignment import Assigner, owner_of_new_lead
from engine.errors import InvalidInputError, LeadflowError, suggest
from engine.spec import FieldSpec, ProcessSpec
from engine.state import Event, LeadState, apply
from engine.store import clients, imports, leads
from engine.vocab import CLIENT_NAME_LENGTH, NAME_LENGTH, EventKind

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


def header_key(text: str) -> str:
    """A name as compared: 'E-mail ' -> 'email', 'Imię i nazwisko' -> 'imieinazwisko' (case, accents,
    spaces and punctuation aside)."""
    text = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in text.casefold() if ch.isalnum())


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


def plan_columns(spec: ProcessSpec, headers: list[str], mapping: Mapping[str, str] | None = None,
                 *, what: str = "column") -> ColumnPlan:
    """What each header means: the mapping first, then the process's field ids, the attributes and their
    other names, the fields' labels, and the state columns of an export; the rest is unknown."""
    names: dict[str, str] = {}
    for label_key, name in [*((header_key(f.label), f.id) for f in spec.fields),
                            *((header_key(s), a) for a, others in SYNONYMS.items() for s in others),
                            *((header_key(a), a) for a in ATTRIBUTES),
                            *((header_key(f.id), f.id) for f in spec.fields)]:
        names[label_key] = name  # later entries win: field ids over attributes over synonyms over labels
    state = {header_key(c) for c in STATE_COLUMNS}
    mapped = {header_key(k): v for k, v in (mapping or {}).items()}
    for header, wanted in (mapping or {}).items():
        if wanted != IGNORE and wanted not in ATTRIBUTES and spec.field_spec(wanted) is None:
            known = [*ATTRIBUTES, *(f.id for f in spec.fields)]
            raise InvalidInputError(f"the mapping sends {what} {header!r} to {wanted!r}, which is neither a lead "
                                    f"attribute nor a field of process {spec.id}{suggest(wanted, known)}; "
                                    f"use one of: {', '.join(known)}, or ignore")
    if mapping:
        missing = [h for h in mapping if header_key(h) not in {header_key(x) for x in headers}]
        if missing:
            raise InvalidInputError(f"the mapping names {what}s the file does not have: {', '.join(map(repr, missing))}"
                                    f"; the file's {what}s are: {', '.join(map(repr, headers))}")
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
    ``delimiter``. See docs/intake.md."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read the mapping file {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the mapping file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise InvalidInputError(f"the mapping file {path} must hold 'columns:', a mapping of the file's headers "
                                "to lead attributes or field ids, e.g. columns: {\"Nr tel.\": phone}")
    extra = set(data) - {"columns", "encoding", "delimiter"}
    if extra:
        raise InvalidInputError(f"the mapping file {path} has unknown keys {', '.join(sorted(map(str, extra)))}; "
                                "allowed: columns, encoding, delimiter")
    columns = {}
    for header, target in data["columns"].items():
        if not isinstance(header, str) or not isinstance(target, str):
            raise InvalidInputError(f"the mapping file {path}: every entry of 'columns' maps a header to a name, "
                                    f"got {header!r}: {target!r}")
        columns[header] = target
    delimiter = data.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or delimiter not in DELIMITERS):
        raise InvalidInputError(f"the mapping file {path}: delimiter {delimiter!r} is not one of , ; or a tab")
    encoding = data.get("encoding")
    if encoding is not None and not isinstance(encoding, str):
        raise InvalidInputError(f"the mapping file {path}: encoding must be a name such as cp1250")
    return {"columns": columns, "encoding": encoding, "delimiter": delimiter}


# -- checking an inquiry -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldError:
    """One refused value: the column or key as the sender wrote it, and why."""

    field: str
    message: str


class InquiryErrors(InvalidInputError):
    """An inquiry with refused values; ``errors`` lists every one (the HTTP intake answers them as 422)."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(e.message for e in errors))


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


def check_inquiry(values: list[tuple[Column, Any]]) -> tuple[Inquiry | None, list[FieldError]]:
    """Every value checked by the rules ``add_lead`` applies; all problems, not just the first."""
    out = Inquiry(name="")
    errors: list[FieldError] = []
    for column, raw in values:
        target = column.target
        try:
            if column.field is not None:
                typed = rules.coerce_field(column.field, raw)
                if typed is not None:
                    out.fields[target] = typed
                continue
            amount = target == "value" and isinstance(raw, (int, float)) and not isinstance(raw, bool)
            if raw is not None and not isinstance(raw, str) and not amount:
                raise InvalidInputError(f"{target} must be text, got {raw!r}")
            if target == "email":
                out.email = rules.check_email(raw)
                out.email_norm = rules.normalise_email(out.email)
            elif target == "phone":
                out.phone = rules.check_phone(raw)
                out.phone_norm = rules.normalise_phone(out.phone)
            elif target == "value":
                out.value_minor = (rules.money_to_minor(rules.parse_money(raw))
                                   if raw is not None and str(raw).strip() else None)
            else:
                setattr(out, target, rules.clean_text(raw, target, _TEXT_LIMITS[target]))
        except InvalidInputError as exc:
            errors.append(FieldError(column.header, str(exc)))
    name_header = next((c.header for c, _ in values if c.target == "name"), "name")
    if not out.name and not any(e.field == name_header for e in errors):
        errors.insert(0, FieldError(name_header, "a lead needs the client's name"))
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
    for column, key in ((clients.c.email_norm, email_norm), (clients.c.phone_norm, phone_norm)):
        if key:
            found = conn.execute(sa.select(sa.func.min(clients.c.id)).where(column == key)).scalar()
            if found is not None:
                return int(found)
    return None


# -- reading the file ----------------------------------------------------------------------------------

DELIMITERS = (",", ";", "\t")


def detect_delimiter(line: str) -> str:
    """The delimiter of a CSV file, from its header line: the most frequent of , ; tab outside quotes
    (csv.Sniffer guesses from the data and is often wrong on Excel's files). Ties go to the comma."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equals: the comma


def _encoding_guess(raw: bytes) -> tuple[str, str]:
    """(codec, description) a non-UTF-8 line most likely is in: Cyrillic text is almost all high bytes."""
    letters = [b for b in raw if b >= 0x80 or chr(b).isalpha()]
    high = sum(1 for b in letters if b >= 0x80)
    if letters and high / len(letters) > 0.5:
        return "cp1251", "Windows-1251 (Cyrillic)"
    return "cp1250", "Windows-1250 (Central European: Polish, Romanian, ...)"


def _decode_problem(path: Path, encoding: str) -> str:
    """Where a file stops being ``encoding``: its line number, the byte, and a guess what it is instead."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                bad = raw[exc.start:exc.start + 1].hex()
                if encoding.replace("-", "").lower().startswith("utf8"):
                    codec, described = _encoding_guess(raw)
                    return (f"{path.name}: line {number} is not UTF-8 (byte 0x{bad}); the file looks like "
                            f"{described}: save it as 'CSV UTF-8' or pass --encoding {codec}")
                return f"{path.name}: line {number} is not {encoding} (byte 0x{bad}); pass the file's --encoding"
    return f"{path.name} is not {encoding} text; pass the file's --encoding"


class CsvFile:
    """A CSV file as people have them: UTF-8 with or without Excel's BOM (or UTF-16 with its BOM, or an
    ``encoding`` named), comma, semicolon or tab, quoted multi-line cells, CRLF."""

    def __init__(self, path: str | Path, *, encoding: str | None = None, delimiter: str | None = None):
        self.path = Path(path)
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise InvalidInputError(f"encoding {encoding!r} is not known; use e.g. utf-8, cp1250, cp1251, "
                                        "iso-8859-2") from None
        try:
            self._binary: IO[bytes] = self.path.open("rb")
        except OSError as exc:
            raise InvalidInputError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        self.size = os.fstat(self._binary.fileno()).st_size
        head = self._binary.read(4)
        self._binary.seek(0)
        self.bom = head.startswith(codecs.BOM_UTF8)
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            self.encoding = "utf-16"
        elif self.bom and (encoding is None or encoding.replace("-", "").lower() in ("utf8", "utf8sig")):
            self.encoding = "utf-8-sig"
        else:
            self.encoding = encoding or "utf-8"
        self._record_start = 1
        self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, errors="strict", newline="")
        try:
            first = self._decoding(self._text.readline)
            if not first.strip():
                raise InvalidInputError(f"{self.path.name} is empty: a CSV file starts with a header line naming "
                                        "its columns")
            self.delimiter = delimiter or detect_delimiter(first)
            self._reader = csv.reader(itertools.chain([first], self._text), delimiter=self.delimiter, strict=True)
            self.header = [h.strip() for h in self._next()]
        except BaseException:
            self.close()
            raise

    def _decoding(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except UnicodeDecodeError:
            raise InvalidInputError(_decode_problem(self.path, self.encoding)) from None

    def _next(self) -> list[str]:
        try:
            return self._decoding(lambda: next(self._reader))  # type: ignore[no-any-return]
        except csv.Error as exc:
            reason, line = str(exc), self._reader.line_num
            if "end of data" in reason or "field limit" in reason:
                reason, line = "a quoted cell is never closed (a \" missing)", self._record_start
            raise InvalidInputError(f"{self.path.name}: line {line}: the CSV is malformed: {reason}") from None

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(line number where the record starts, cells), blank lines skipped."""
        while True:
            start = self._record_start = self._reader.line_num + 1
            try:
                record = self._next()
            except StopIteration:
                return
            if record and any(cell.strip() for cell in record):
                yield start, record

    @property
    def bytes_read(self) -> int:
        return min(self._binary.tell(), self.size)

    def close(self) -> None:
        self._text.close()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula ('=HYPERLINK(...)', '+48 600...', '-1', '@SUM') is
    written with a leading apostrophe, which spreadsheets show as text (OWASP's advice)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def unneutralise(cell: str) -> str:
    """The inverse of ``neutralise``, so that an exported file imports as it was."""
    return cell[1:] if cell.startswith("'") and cell[1:2] and cell[1] in "=+-@\t\r" else cell


# -- the import ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Pending:
    """A checked row waiting in a batch."""

    line: int
    inquiry: Inquiry
    owner: str | None = None
    team: str | None = None
    assignment: dict[str, Any] | None = None  # the assignment rules' decision, kept in the created event
    client_id: int = 0
    lead_id: int = 0


@dataclass
class ImportOptions:
    process: str
    mapping: dict[str, Any] | None = None
    owner: str | None = None
    assign: str | None = None  # "auto": leave owners to the assignment rules
    dry_run: bool = False
    on_error: str = "skip"
    encoding: str | None = None
    rejects: str | Path | None = None
    again: bool = False
    batch_size: int = 5000
    progress: Callable[[int, int, int], None] | None = None  # (bytes read, file size, rows read)


class _Rejects:
    """The rejected rows: counted, the first ``keep`` kept for the report, all written to a CSV if asked."""

    keep = 1000

    def __init__(self, path: str | Path | None, header: list[str], delimiter: str):
        self.count = 0
        self.first: list[results.RejectedRow] = []
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        if self.path is not None:
            try:
                fd, tmp = tempfile.mkstemp(prefix=".rejects-", suffix=".csv", dir=self.path.parent or ".")
            except OSError as exc:
                raise InvalidInputError(f"cannot write the rejects file {self.path}: {exc.strerror or exc}") from None
            self._tmp = Path(tmp)
            # UTF-8 with a BOM, the input's delimiter: Excel opens it as it opened the input
            self._file = open(fd, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed in finish/discard)
            self._writer = csv.writer(self._file, delimiter=delimiter)
            self._writer.writerow([*header, "line", "reason"])

    def add(self, line: int, cells: list[str], reason: str) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append({"line": line, "reason": reason})
        if self._file is not None:
            self._writer.writerow([*cells, line, reason])

    def finish(self) -> None:
        if self._file is not None and self.path is not None:
            self._file.close()
            self._tmp.replace(self.path)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)


class BulkImport:
    """One CSV import inside the caller's transaction (see the module's docstring)."""

    def __init__(self, conn: Connection, *, actor: policy.Actor, spec: ProcessSpec, version: int, at: dt.datetime,
                 specs: Callable[[str, int], ProcessSpec], options: ImportOptions, user: policy.UserLookup):
        self.conn = conn
        self.actor = actor
        self.spec = spec
        self.version = version
        self.at = at
        self.specs = specs
        self.options = options
        self._user = user
        self._owners: dict[str, policy.Actor | str] = {}  # owner name -> the user, or why they cannot own
        self.default_owner = self._owner_row(options.owner) if options.owner else None
        if isinstance(self.default_owner, str):
            raise InvalidInputError(f"--owner: {self.default_owner}")
        self.stats = _no_counts()
        self._templates: dict[tuple[bool, ...], tuple[LeadState, actions.Entry | None]] = {}
        self._conditional = [t for t in spec.first_stage.all_tasks if t.when is not None]
        self._at = store.driver_value(conn, leads.c.created_at, at)
        self._postgres = conn.dialect.name == "postgresql"
        self.first_client_id: int | None = None
        self.lead_ids: list[int] = []  # first and last lead id of the import
        # ONE Assigner for the whole import, made at the first row the rules place (it locks the teams'
        # round-robin cursors until the import ends): it reads the teams and loads once and counts what it places
        self.assigner: Assigner | None = None
        self._owned: dict[str, int] = {}  # leads this batch gave an owner by name: not yet in stage_counts

    # -- owners: assignment.owner_of_new_lead decides, as for leads.add ---------------------------
    def _owner_row(self, name: str) -> policy.Actor | str:
        """The owner named in the file or by --owner, or why they cannot own this lead."""
        if name not in self._owners:
            try:
                owner = self._user(name)
                policy.require_can_give(self.actor, owner, f"import leads for {name}")
                self._owners[name] = owner
            except LeadflowError as exc:
                self._owners[name] = str(exc)
        return self._owners[name]

    def place(self, batch: list[_Pending]) -> None:
        """Who owns each new lead: the row's owner column, else ``--owner``, else nobody yet (``--assign auto``:
        the assignment rules); an unowned lead waits in the importing manager's team, as with ``add_lead``."""
        for item in batch:
            q = item.inquiry
            named = self._owners[q.owner] if q.owner else self.default_owner
            assert not isinstance(named, str)  # a refused owner's rows were rejected when read
            item.owner, item.team, item.assignment = owner_of_new_lead(
                self.actor, named, self.spec, q.product, q.fields, self._assigner)
            if named is not None:
                self._owned[named.name] = self._owned.get(named.name, 0) + 1
                if self.assigner is not None and item.owner in self.assigner.load:
                    self.assigner.load[item.owner] += 1  # the cap counts them, as add_lead's would
            if item.assignment is not None and item.owner is not None:
                self.stats["assigned_by_rules"] += 1
            elif item.owner is None:
                self.stats["unassigned"] += 1

    def _assigner(self) -> Assigner:
        if self.assigner is None:
            self.assigner = Assigner.load_for(self.conn, self.spec)
            for name, count in self._owned.items():  # this batch's leads so far are not in stage_counts yet
                if name in self.assigner.load:
                    self.assigner.load[name] += count
        return self.assigner

    # -- clients: the same person is one client -------------------------------------------------------
    def _resolve_clients(self, batch: list[_Pending]) -> list[tuple[Any, ...]]:
        """Attach each row to the client with its normalised e-mail (else phone): one who existed before, one an
        earlier row created; new clients get ids. Returns the new client rows."""
        emails = {p.inquiry.email_norm for p in batch} - {None}
        phones = {p.inquiry.phone_norm for p in batch} - {None}
        by_email = self._lookup(clients.c.email_norm, emails)  # type: ignore[arg-type]
        by_phone = self._lookup(clients.c.phone_norm, phones)  # type: ignore[arg-type]
        new: list[_Pending] = []
        for item in batch:
            e, ph = item.inquiry.email_norm, item.inquiry.phone_norm
            found = (by_email.get(e) if e else None) or (by_phone.get(ph) if ph else None)
            if found is None:
                new.append(item)
                item.client_id = -len(new)  # a client this batch creates, numbered when ids are reserved
            else:
                item.client_id = found
                earlier_row = found < 0 or (self.first_client_id is not None and found >= self.first_client_id)
                if earlier_row:
                    self.stats["repeated_clients"] += 1
                else:
                    self.stats["existing_clients"] += 1
            if e:
                by_email.setdefault(e, item.client_id)
            if ph:
                by_phone.setdefault(ph, item.client_id)
        ids = store.reserve_ids(self.conn, clients, len(new))
        if ids and self.first_client_id is None:
            self.first_client_id = ids[0]
        for item in batch:
            if item.client_id < 0:
                item.client_id = ids[-item.client_id - 1]
        self.stats["new_clients"] += len(new)
        return [(item.client_id, q.name, q.company, q.email, q.phone, q.email_norm, q.phone_norm, self._at)
                for item in new for q in [item.inquiry]]

    def _lookup(self, column: sa.Column[Any], keys: set[str]) -> dict[str, int]:
        if not keys:
            return {}
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self._postgres:
                cursor.execute(f"SELECT {column.name}, id FROM clients WHERE {column.name} = ANY(%s) ORDER BY id",
                               (list(keys),))
            else:
                found: list[tuple[str, int]] = []
                ordered = list(keys)
                for start in range(0, len(ordered), 30_000):  # SQLite allows 32,766 parameters
                    chunk = ordered[start:start + 30_000]
                    cursor.execute(f"SELECT {column.name}, id FROM clients WHERE {column.name} IN "
                                   f"({','.join('?' * len(chunk))}) ORDER BY id", chunk)
                    found += cursor.fetchall()
                return _first_ids(found)
            return _first_ids(list(cursor.fetchall()))
        finally:
            cursor.close()

    # -- leads -----------------------------------------------------------------------------------------
    def _template(self, item: _Pending, data: dict[str, Any]) -> tuple[LeadState, actions.Entry | None]:
        """A new lead's state from ``state.apply`` of its ``created`` event, and the first stage's ``on_enter``.

        What the event does at the first stage (its tasks, deadlines and light) depends only on the instant
        and on which of the stage's conditional tasks apply, so it is computed once per such outcome."""
        key = tuple(rules.applies(t, item.inquiry.fields, self.spec) for t in self._conditional)
        if key not in self._templates:
            state = apply(None, Event(EventKind.CREATED, self.at, self.actor.name, data), self.specs)
            # the first stage's on_enter actions, planned once for the outcome and given to each lead with its keys
            entry = actions.on_enter(self.spec, dataclasses.replace(state, id=0), self.at)
            self._templates[key] = (state, entry if entry.records or entry.mails else None)
        return self._templates[key]

    def flush(self, batch: list[_Pending]) -> None:
        """Write a batch: its new clients, then its leads through the write path (``store.write_leads``: the lead
        rows, the first stage's tasks, the projections, the ``created`` events), then the mails they queue."""
        if batch:
            with store.collector_paused(len(batch)):
                self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        self.place(batch)
        client_rows = self._resolve_clients(batch)
        store.insert_rows(self.conn, clients, ["id", "name", "company", "email", "phone", "email_norm",
                                               "phone_norm", "created_at"], client_rows)
        changes: list[store.LeadChange] = []
        entries: list[actions.Entry] = []
        process, version, actor = self.spec.id, self.version, self.actor.name
        for item, lead_id in zip(batch, store.reserve_ids(self.conn, leads, len(batch)), strict=True):
            q = item.inquiry
            item.lead_id = lead_id
            data = {"client_id": item.client_id, "process": process, "process_version": version,
                    "owner": item.owner, "team": item.team, "source": q.source, "product": q.product,
                    "value_minor": q.value_minor, "fields": q.fields}
            if item.assignment is not None:
                data["assignment"] = item.assignment
            template, on_enter = self._template(item, data)
            if on_enter is not None:
                entry = on_enter.for_lead(lead_id)
                data["actions"] = entry.records
                entries.append(entry)
            # the template with the lead's own values: what apply makes of this lead's event (its tasks alike)
            state = object.__new__(LeadState)
            state.__dict__.update(template.__dict__, id=lead_id, client_id=item.client_id, owner=item.owner,
                                  team=item.team, source=q.source, product=q.product, value_minor=q.value_minor,
                                  fields=q.fields)
            changes.append(store.LeadChange(None, state, [Event(EventKind.CREATED, self.at, actor, data)]))
        store.write_leads(self.conn, changes)
        self._owned.clear()  # counted in stage_counts now
        self.stats["mails_queued"] += actions.store(self.conn, entries)
        self.stats["imported"] += len(batch)
        if not self.lead_ids:
            self.lead_ids.append(batch[0].lead_id)
        self.lead_ids[1:] = [batch[-1].lead_id]

    def finish(self) -> None:
        if self.assigner is not None:
            self.assigner.save(self.conn)


def _first_ids(rows: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, client_id in rows:
        out.setdefault(key, client_id)
    return out


def run_import(conn: Connection, path: str | Path, *, actor: policy.Actor, spec: ProcessSpec, version: int,
               at: dt.datetime, specs: Callable[[str, int], ProcessSpec], user: policy.UserLookup,
               options: ImportOptions) -> results.ImportReport:
    """Import ``path`` into the transaction of ``conn``; returns the report (see docs/intake.md).

    The caller commits when ``report["status"] == "imported"`` and rolls back otherwise (a dry run, an
    aborted import); a problem with the file as a whole raises ``InvalidInputError``."""
    path = Path(path)
    if options.on_error not in ("skip", "abort"):
        raise InvalidInputError(f"on_error {options.on_error!r} is not one of: skip, abort")
    if options.assign not in (None, "auto"):
        raise InvalidInputError(f"assign {options.assign!r} is not 'auto' (the assignment rules)")
    if options.owner and options.assign:
        raise InvalidInputError("give either an owner for every lead or --assign auto, not both")
    sha256 = file_sha256(path)
    earlier = conn.execute(sa.select(imports).where(imports.c.process == spec.id, imports.c.sha256 == sha256)
                           .order_by(imports.c.id.desc()).limit(1)).mappings().first()
    if earlier is not None and not options.again:
        raise InvalidInputError(
            f"{path.name} was already imported into {spec.id} (import {earlier['id']} by {earlier['actor']} on "
            f"{earlier['finished_at']:%Y-%m-%d %H:%M}: {earlier['imported']} leads); importing it again would "
            "add every lead a second time (to do it anyway: --again)")
    mapping = options.mapping or {}
    source = CsvFile(path, encoding=options.encoding or mapping.get("encoding"), delimiter=mapping.get("delimiter"))
    try:
        plan = plan_columns(spec, source.header, mapping.get("columns"))
        for first, second, target in plan.duplicates:
            raise InvalidInputError(f"columns {first!r} and {second!r} both give the lead's {target}; send one of "
                                    "them to 'ignore' in a mapping file")
        if not any(c.target == "name" for c in plan.columns):
            raise InvalidInputError(
                f"{path.name} has no column for the client's name (a header such as 'name'); its columns are "
                f"{', '.join(map(repr, source.header))}: map one to name in a mapping file")
        bulk = BulkImport(conn, actor=actor, spec=spec, version=version, at=at, specs=specs, options=options,
                          user=user)
        rejects = _Rejects(options.rejects, source.header, source.delimiter)
        try:
            rows = _read(source, plan, bulk, rejects, options)
        except BaseException:
            rejects.discard()
            raise
        rejects.finish()
    finally:
        source.close()
    writing = not options.dry_run and not (rejects.count and options.on_error == "abort")
    status = "imported" if writing else ("dry_run" if options.dry_run else "aborted")
    report: results.ImportReport = {
        "status": status, "file": str(path), "sha256": sha256, "process": spec.id, "process_version": version,
        "encoding": source.encoding, "delimiter": source.delimiter,
        "columns": {c.header: c.target for c in plan.columns}, "ignored_columns": plan.ignored,
        "unknown_columns": [{"column": h, "did_you_mean": plan.closest(spec, h)} for h in plan.unknown],
        "rows": rows, **bulk.stats, "rejected": rejects.count,
        "rejects": rejects.first, "rejects_file": str(options.rejects) if options.rejects else None,
        "first_lead_id": bulk.lead_ids[0] if bulk.lead_ids else None,
        "last_lead_id": bulk.lead_ids[-1] if bulk.lead_ids else None, "import_id": None,
    }
    if status == "aborted":  # nothing was written: none of the batches written before the bad row counts
        report = {**report, **_no_counts(), "first_lead_id": None, "last_lead_id": None}
    if status != "imported":
        return report
    bulk.finish()
    report["import_id"] = store.new_id(conn.execute(sa.insert(imports).values(
        sha256=sha256, process=spec.id, file_name=path.name, actor=actor.name, started_at=at,
        finished_at=at, rows=rows, imported=bulk.stats["imported"], new_clients=bulk.stats["new_clients"],
        rejected=rejects.count)))
    return report


def _no_counts() -> results.ImportCounts:
    return {"imported": 0, "new_clients": 0, "existing_clients": 0, "repeated_clients": 0, "assigned_by_rules": 0,
            "unassigned": 0, "mails_queued": 0}


def _read(source: CsvFile, plan: ColumnPlan, bulk: BulkImport, rejects: _Rejects, options: ImportOptions) -> int:
    """Check every record, batch the good ones, flush full batches; returns the number of records."""
    width = len(source.header)
    columns = plan.columns
    owner_index = next((c.index for c in columns if c.target == "owner"), None)
    batch: list[_Pending] = []
    writing = True
    rows = 0
    for line, cells in source.records():
        rows += 1
        if len(cells) != width and not (len(cells) > width and not any(c.strip() for c in cells[width:])):
            rejects.add(line, cells, f"the row has {len(cells)} cells, the header {width}")
            writing = writing and options.on_error == "skip"
            continue
        values = [(c, _cell(cells[c.index])) for c in columns]
        inquiry, errors = check_inquiry(values)
        if inquiry is not None and inquiry.owner:
            row = bulk._owner_row(inquiry.owner)
            if isinstance(row, str):
                header = source.header[owner_index] if owner_index is not None else "owner"
                errors.append(FieldError(header, row))
        if errors:
            rejects.add(line, cells, "; ".join(e.message for e in errors))
            writing = writing and options.on_error == "skip"
            continue
        if writing:
            assert inquiry is not None
            batch.append(_Pending(line, inquiry))
            if len(batch) >= options.batch_size:
                bulk.flush(batch)
                batch = []
                if options.progress is not None:
                    options.progress(source.bytes_read, source.size, rows)
    if writing:
        bulk.flush(batch)
    if options.progress is not None:
        options.progress(source.size, source.size, rows)
    return rows


def _cell(text: str) -> str:
    """A cell as the inquiry's value: an export's apostrophe undone, Windows line breaks inside it made plain."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return unneutralise(text) if text[:1] == "'" else text


# -- the HTTP intake ---------------------------------------------------------------------------------

def check_submission(spec: ProcessSpec, values: Mapping[str, Any]) -> Inquiry:
    """A web form's inquiry, by the import's rules: keys are recognised like a file's headers (attributes,
    field ids, labels), process fields may also come as a ``fields`` object. Every problem is collected;
    unknown keys and an owner (the assignment rules choose it) are problems too."""
    errors: list[FieldError] = []
    nested = values.get("fields", {}) if spec.field_spec("fields") is None else {}
    if not isinstance(nested, Mapping):
        errors.append(FieldError("fields", f"fields must be an object of field ids and values, got {nested!r}"))
        nested = {}
    keys = [k for k in values if k != "fields" or spec.field_spec("fields") is not None]
    plan = plan_columns(spec, keys, what="key")
    known = [*ATTRIBUTES, *(f.id for f in spec.fields)]
    errors += [FieldError(k, f"'{k}' is not a lead attribute or a field of process {spec.id}{suggest(k, known)}")
               for k in plan.unknown]
    errors += [FieldError(k, f"'{k}' is set by leadflow, not by an inquiry") for k in plan.ignored]
    errors += [FieldError(second, f"'{first}' and '{second}' both give the lead's {target}; send one")
               for first, second, target in plan.duplicates]
    errors += [FieldError(c.header, "the owner of a new lead is chosen by the assignment rules, not by a form")
               for c in plan.columns if c.target == "owner"]
    columns = [(c, values[c.header]) for c in plan.columns if c.target != "owner"]
    given = {c.target: c.header for c, _ in columns}
    for key, value in nested.items():
        spec_field = spec.field_spec(str(key))
        if spec_field is None:
            errors.append(FieldError(f"fields.{key}", f"'{key}' is not a field of process {spec.id}"
                                                      f"{suggest(str(key), [f.id for f in spec.fields])}"))
        elif spec_field.id in given:
            errors.append(FieldError(f"fields.{key}", f"'{key}' is also given as '{given[spec_field.id]}'"))
        else:
            columns.append((Column(-1, f"fields.{key}", spec_field.id, spec_field), value))
    inquiry, problems = check_inquiry(columns)
    errors += problems
    if errors or inquiry is None:
        raise InquiryErrors(errors)
    return inquiry


# -- the export --------------------------------------------------------------------------------------

#: The lead's columns in an export; the process's fields follow, one column each (by field id).
EXPORT_COLUMNS = ("id", "process", "stage", "status", "owner", "team", "name", "company", "email", "phone",
                  "source", "product", "value", "created_at")


def _export_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def export_csv(conn: Connection, out: IO[str], *, actor: policy.Actor, specs: list[ProcessSpec],
               excel: bool = False) -> int:
    """Write the leads of ``specs``'s processes the actor may see as CSV to ``out``; returns the number of leads.

    Every cell a spreadsheet would take for a formula is neutralised. ``excel``: a BOM, semicolons and CRLF,
    what Excel in Poland, Romania or Russia opens without an import dialogue."""
    field_ids = list(dict.fromkeys(f.id for spec in specs for f in spec.fields))
    if excel:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n" if excel else "\n")
    writer.writerow([*EXPORT_COLUMNS, *field_ids])
    query = (sa.select(leads.c.id, leads.c.process, leads.c.stage, leads.c.status, leads.c.owner, leads.c.team,
                       clients.c.name, clients.c.company, clients.c.email, clients.c.phone, leads.c.source,
                       leads.c.product, leads.c.value_minor, leads.c.created_at, leads.c.fields_json)
             .join(clients, clients.c.id == leads.c.client_id)
             .where(leads.c.process.in_([s.id for s in specs])).order_by(leads.c.id))
    count = 0
    for row in conn.execution_options(yield_per=5000).execute(policy.visible_leads(actor, query)):
        fields = json.loads(row.fields_json)
        cells = [str(row.id), row.process, row.stage, row.status, row.owner, row.team, row.name, row.company,
                 row.email, row.phone, row.source, row.product, rules.minor_to_money(row.value_minor),
                 row.created_at.isoformat(), *(fields.get(f) for f in field_ids)]
        writer.writerow([neutralise(_export_value(c)) for c in cells])
        count += 1
    return count
