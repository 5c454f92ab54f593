"""Reading a CSV file as Excel writes it (BOM, delimiters, code pages named on error), and the cells that a
spreadsheet would run as formulas."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from engine.errors import InvalidInputError
from engine.i18n import N_, Message

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


def _decode_problem(path: Path, encoding: str) -> Message:
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
                    return Message(N_("{name}: line {number} is not UTF-8 (byte 0x{bad}); the file looks like "
                                      "{described}: save it as 'CSV UTF-8' or pass --encoding {codec}"),
                                   name=path.name, number=number, bad=bad, described=described, codec=codec)
                return Message(N_("{name}: line {number} is not {encoding} (byte 0x{bad}); pass the file's "
                                  "--encoding"), name=path.name, number=number, encoding=encoding, bad=bad)
    return Message(N_("{name} is not {encoding} text; pass the file's --encoding"), name=path.name, encoding=encoding)


class CsvFile:
    """A CSV file as people have them: UTF-8 with or without Excel's BOM (or UTF-16 with its BOM, or an
    ``encoding`` named), comma, semicolon or tab, quoted multi-line cells, CRLF."""

    def __init__(self, path: str | Path, *, encoding: str | None = None, delimiter: str | None = None):
        self.path = Path(path)
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise InvalidInputError(N_("encoding {encoding!r} is not known; use e.g. utf-8, cp1250, cp1251, "
                                           "iso-8859-2"), encoding=encoding) from None
        try:
            self._binary: IO[bytes] = self.path.open("rb")
        except OSError as exc:
            raise InvalidInputError(N_("cannot read {path}: {strerror}"), path=self.path,
                                    strerror=exc.strerror or exc) from None
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
                raise InvalidInputError(N_("{name} is empty: a CSV file starts with a header line naming "
                                           "its columns"), name=self.path.name)
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
            problem = _decode_problem(self.path, self.encoding)
            raise InvalidInputError(problem.template, **problem.params) from None

    def _next(self) -> list[str]:
        try:
            return self._decoding(lambda: next(self._reader))  # type: ignore[no-any-return]
        except csv.Error as exc:
            reason, line = str(exc), self._reader.line_num
            if "end of data" in reason or "field limit" in reason:
                reason, line = "a quoted cell is never closed (a \" missing)", self._record_start
            raise InvalidInputError(N_("{name}: line {line}: the CSV is malformed: {reason}"), name=self.path.name,
                                    line=line, reason=reason) from None

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
        raise InvalidInputError(N_("cannot read {path}: {strerror}"), path=path, strerror=exc.strerror or exc) from None
    return digest.hexdigest()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula ('=HYPERLINK(...)', '+48 600...', '-1', '@SUM') is
    written with a leading apostrophe, which spreadsheets show as text (OWASP's advice)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def unneutralise(cell: str) -> str:
    """The inverse of ``neutralise``, so that an exported file imports as it was."""
    return cell[1:] if cell.startswith("'") and cell[1:2] and cell[1] in "=+-@\t\r" else cell
