"""Finding clients and leads by what a person types: the folded search keys and the reading of a search text
(the queries over them are ``engine.search``'s service, engine/services/search.py).

**Folding** (``fold``) is what makes ``zolc`` find "Łukasz Żółć", ``stefan`` find "Ștefan" and "Ştefan", and
``жанна`` find "Жанна": case-folded, Latin letters without their diacritics (ł, ø, đ, ß and the like by a
table, the rest by Unicode decomposition), compatibility forms unified (ﬁ, full-width digits), every run of
punctuation and spaces one space. Other scripts keep their letters (Cyrillic stays Cyrillic, only ё is е).
A client's ``search_name`` (its folded name, for exact and prefix matches through an ordinary index) and
``search_key`` (name, company, e-mail, phone digits and tax id, folded, for partial matches through a trigram
index) are computed by ``client_search_columns`` whenever a client is written (engine/store/client_rows.py).

**Ranking**: exact (a whole field: the name, the company, the e-mail, the phone, the tax id, the lead id), then
prefix (the name, or a word of it, starts with the text), then partial (the text anywhere in the key); within a
rank by name, then id. Only what the actor may see is searched (``policy.visible_clients``).

**Indexes**: exact and prefix matches read ``ix_clients_search_name``, phones and e-mails their own indexes. A
partial match of three characters or more reads a trigram index: on SQLite the FTS5 table ``client_search``
(tokenizer ``trigram``, kept by triggers on ``clients``; a text of several words through its rarest-looking word
when that one matches few clients, its matches then checked against the whole text), on PostgreSQL a GIN index
with ``pg_trgm``. Where
neither exists (an SQLite built without FTS5, a PostgreSQL without the extension) partial matches scan the
clients: correct, slower (docs/performance.md). Shorter text is matched as exact and prefix only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.rules import PhoneError, has_control_characters, is_encodable, parse_phone

#: How long a search text may be, and how many hits one search returns at most.
TEXT_LENGTH = 200
MAX_LIMIT = 500
#: The length of ``clients.search_name`` (the index's key); longer names are matched by their first characters.
SEARCH_NAME_LENGTH = 200
#: Below this many characters a partial match cannot use a trigram index: such text matches exact and prefix only.
PARTIAL_MIN = 3

_LETTERS = str.maketrans({
    "ł": "l", "đ": "d", "ø": "o", "ß": "ss", "æ": "ae", "œ": "oe", "ı": "i", "ħ": "h", "þ": "th", "ð": "d",
    "ŀ": "l", "ŧ": "t", "ё": "е",
})
_SEPARATORS = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\D")
_PHONE_TEXT = re.compile(r"[+0-9 ()./-]+")


def fold(text: str) -> str:
    """``text`` as search keys hold it: lower case, Latin letters without diacritics, words separated by one
    space. Idempotent: ``fold(fold(x)) == fold(x)``."""
    for _ in range(4):  # case folding and normalisation settle after a round or two (tests/test_search.py)
        folded = _fold_once(text)
        if folded == text:
            break
        text = folded
    return text


def _fold_once(text: str) -> str:
    if text.isascii():  # no accents, and casefold is lower: the same as below, a tenth of its time (an e-mail)
        return _SEPARATORS.sub(" ", text.lower()).strip()
    kept: list[str] = []
    for ch in unicodedata.normalize("NFKD", text.casefold().translate(_LETTERS)):
        if unicodedata.combining(ch) and kept and kept[-1].isascii():
            continue  # a Latin letter's accent (ą, ș, ş, é); other scripts keep theirs (й)
        kept.append(ch)
    joined = unicodedata.normalize("NFC", "".join(kept)).casefold()
    return _SEPARATORS.sub(" ", joined).strip()


def phone_digits(phone: str | None) -> str:
    """The digits of a stored phone (E.164 without the ``+``), and the national number's, for partial matches."""
    if not phone:
        return ""
    digits = _DIGITS.sub("", phone)
    try:
        national = str(parse_phone(phone).national_number)
    except PhoneError:
        return digits
    return f"{digits} {national}" if national != digits else digits


def client_search_columns(name: str, company: str | None, email: str | None, phone: str | None,
                          tax_id: str | None) -> tuple[str, str]:
    """A client's ``search_name`` and ``search_key``: the one function that computes them."""
    folded_name = fold(name)
    tax = fold(tax_id or "")
    tax_digits = _DIGITS.sub("", tax)  # "PL 525-000-11-22" is found by 525000 too, as phones are by their digits
    parts = [folded_name, fold(company or ""), fold(email or ""), phone_digits(phone), tax,
             tax_digits if tax_digits != tax else ""]
    return folded_name[:SEARCH_NAME_LENGTH].rstrip(), " ".join(p for p in parts if p)


# -- a search ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """What a search text may mean: folded words, a lead id, a phone number, an e-mail address."""

    text: str
    folded: str
    lead_id: int | None
    phone: str | None  # E.164, when the text parses as a phone number
    email: str | None
    digits: str  # the text's digits alone (a phone typed with spaces or dashes)


def parse_query(text: str, region: str | None = None) -> Query:
    """The search text checked (refused: empty, too long, control characters) and read every way it may mean."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("the search text is empty; give a name, company, e-mail, phone, tax id or lead id")
    text = text.strip()
    if len(text) > TEXT_LENGTH:
        raise InvalidInputError(N_("the search text is longer than {text_length} characters ({count})"),
                                text_length=TEXT_LENGTH, count=len(text))
    if not is_encodable(text) or has_control_characters(text):
        raise InvalidInputError("the search text contains control characters or invalid UTF-8; give plain text")
    folded = fold(text)
    if not folded and "@" not in text:
        raise InvalidInputError(N_("the search text {text!r} has no letters or digits to look for"), text=text)
    bare = text.lstrip("#")
    lead_id = int(bare) if bare.isascii() and bare.isdigit() and len(bare) <= 12 else None
    phone = None
    if _PHONE_TEXT.fullmatch(text) and len(_DIGITS.sub("", text)) >= 6:
        try:
            phone = parse_phone(text, region).e164
        except PhoneError:
            phone = None
    email = text.lower() if "@" in text else None
    return Query(text, folded, lead_id, phone, email, _DIGITS.sub("", text))


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(N_("the search limit must be a whole number from 1 to {max_limit}, got {limit!r}"),
                                max_limit=MAX_LIMIT, limit=limit)
    return limit
