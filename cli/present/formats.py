"""Numbers, money, dates and times as the reader's language writes them (Babel, CLDR's data).

English keeps leadflow's plain forms (``45000.00 PLN``, ``2026-03-03 23:59``), which scripts, the tests and the
documentation read; every other language gets its locale's (``45 000,00 zł``, ``3.03.2026 23:59``). Times are
the installation's wall-clock time (``LEADFLOW_TZ``, docs/design.md), so they are shown as stored. Babel loads
only when a non-English text is formatted.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from engine import i18n

#: The CLDR locale of each language leadflow speaks.
LOCALES = {"en": "en_GB", "pl": "pl_PL", "ro": "ro_RO", "ru": "ru_RU"}


def locale(code: str | None = None) -> str:
    return LOCALES.get(code or i18n.language(), "en_GB")


def _english(code: str | None) -> bool:
    return (code or i18n.language()) == i18n.SOURCE


def money(amount: str | Decimal | None, currency: str, code: str | None = None) -> str:
    """``'1580000.00', 'PLN'`` -> ``1580000.00 PLN`` (English), ``1 580 000,00 zł`` (Polish)."""
    if amount is None or amount == "":
        return "-"
    if _english(code):
        return f"{amount} {currency}"
    from babel.numbers import format_currency

    return str(format_currency(Decimal(str(amount)), currency, locale=locale(code)))


def amount(value: str | Decimal | None, code: str | None = None) -> str:
    """An amount without its currency (a table's column under a heading that names it): ``45 000,00``."""
    if value is None or value == "":
        return "-"
    if _english(code):
        return str(value)
    from babel.numbers import format_decimal

    return str(format_decimal(Decimal(str(value)), format="#,##0.00", locale=locale(code)))


def number(value: Any, code: str | None = None) -> str:
    """A count or measure with the locale's separators (``1 234,5``)."""
    if value is None:
        return "-"
    if _english(code):
        return str(value)
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=locale(code)))


def percent(ratio: float | None, code: str | None = None, *, decimals: int = 1) -> str:
    """0.125 -> ``12.5%`` (English), ``12,5%`` (Polish); one decimal (or ``decimals``: 0 gives ``13%``)."""
    if ratio is None:
        return ""
    if _english(code):
        return f"{ratio:.{decimals}%}"
    from babel.numbers import format_percent

    return str(format_percent(ratio, format="#,##0" + ("." + "0" * decimals if decimals else "") + "%",
                              locale=locale(code)))


def _parse(value: str | dt.datetime | dt.date) -> dt.datetime | dt.date:
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    return dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)


def date(value: str | dt.date | None, code: str | None = None) -> str:
    """``2026-03-16`` in the locale's short form (``16.03.2026``)."""
    if not value:
        return ""
    if _english(code):
        return str(value)[:10]
    from babel.dates import format_date

    day = _parse(value)
    return str(format_date(day.date() if isinstance(day, dt.datetime) else day, format="short", locale=locale(code)))


def short_time(value: str | dt.datetime | None, code: str | None = None) -> str:
    """An instant to the minute: ``2026-03-03 23:59`` (English), ``3.03.2026, 23:59`` (Polish)."""
    if not value:
        return ""
    if _english(code):
        return str(value).replace("T", " ")[:16]
    from babel.dates import format_datetime

    return str(format_datetime(_parse(value), format="short", locale=locale(code)))


def date_time(value: str | dt.datetime | None, code: str | None = None) -> str:
    """An instant as a sentence names it: ``2026-03-16T10:00:00`` (English), ``16 mar 2026, 10:00:00`` (Polish)."""
    if not value:
        return ""
    if _english(code):
        return str(value)
    from babel.dates import format_datetime

    return str(format_datetime(_parse(value), format="medium", locale=locale(code)))


def relative(delta: dt.timedelta, code: str | None = None) -> str:
    """A time from now: ``-3 days`` -> ``3 days ago``, ``3 dni temu``, ``acum 3 zile``, ``3 дня назад``."""
    from babel.dates import format_timedelta

    return str(format_timedelta(delta, add_direction=True, locale=locale(code)))
