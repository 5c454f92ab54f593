"""The value types every result uses: timestamps, amounts, and the only values that are arbitrary JSON."""

from __future__ import annotations

from typing import Any, TypeAlias

#: A value of a process field or of an event's data: whatever JSON the process declares (text, a number, a
#: boolean, a date as text, a list of choices). The one place where the results hold ``Any``.
JsonValue: TypeAlias = Any
#: An amount as a decimal string with two decimals ("45000.00"), or None when there is none.
Money: TypeAlias = str | None
#: An instant as ISO-8601 without an offset ("2026-03-02T09:00:00").
Timestamp: TypeAlias = str
