"""The JSON codec of stored documents (fields, event data): one encoder, sorted keys, dates as ISO text."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def loads(text: str) -> Any:
    return json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {value!r}")


# One encoder for every call: json.dumps with options builds a new one each time (a bulk import calls this
# twice per lead).
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=_json_default)


def dumps(data: Any) -> str:
    return _ENCODER.encode(data)

