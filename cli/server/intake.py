"""The HTTP intake of web forms (``POST /v1/leads`` with an integration token), as it was in 0.1: a JSON object
or a form post of the lead's values, named like an import's columns (docs/intake.md).

Every decision (what a valid inquiry is, who owns the lead) is the engine's ``intake.submit``; this module only
reads the body and shapes the 201 answer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from cli.server.problems import Problem
from engine import results

LEAD_BODY: dict[str, Any] = {
    "type": "object",
    "description": "The inquiry. Keys are named like an import's columns: the attributes below, the process's "
                   "field ids or labels; process fields may also come as a 'fields' object.",
    "properties": {
        "process": {"type": "string", "description": "Default: the token's process."},
        "name": {"type": "string", "maxLength": 500},
        "company": {"type": "string", "maxLength": 500},
        "email": {"type": "string", "maxLength": 320},
        "phone": {"type": "string", "maxLength": 64},
        "source": {"type": "string", "maxLength": 200, "description": "Default: the token's source."},
        "product": {"type": "string", "maxLength": 200},
        "value": {"type": ["string", "number"], "description": "An exact amount: 45000.50 or '45 000,50'."},
        "fields": {"type": "object", "additionalProperties": True},
    },
    "required": ["name"],
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
}
FORM_BODY = {**LEAD_BODY, "properties": {k: v for k, v in LEAD_BODY["properties"].items() if k != "fields"}}
REQUEST_BODY = {"required": True, "content": {"application/json": {"schema": LEAD_BODY},
                                              "application/x-www-form-urlencoded": {"schema": FORM_BODY}}}


def media_type(content_type: str) -> str:
    return content_type.split(";", maxsplit=1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """A JSON object, or the refusal: 400 for text that is not JSON, 422 for JSON that is not an object."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Problem(422, f"the body must be a JSON object of {what}, got {type(data).__name__}")
    return data


def values(body: bytes, content_type: str) -> dict[str, Any]:
    """The inquiry's values from a JSON object or a form post (application/x-www-form-urlencoded)."""
    if is_json(content_type):
        return json_object(body, "the lead's values")
    kind = media_type(content_type)
    if kind == "application/x-www-form-urlencoded":
        try:
            # strict: a percent-escape that is not UTF-8 is refused, not stored as U+FFFD
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=500, errors="strict")
        except UnicodeDecodeError:
            raise Problem(400, "the form is not UTF-8 (a value or its %-escapes)") from None
        except ValueError as exc:
            raise Problem(400, f"the form cannot be read: {exc}") from None
        given: dict[str, list[str]] = {}
        for key, value in pairs:
            given.setdefault(key, []).append(value)
        # a repeated name (a form's checkboxes) is a list, which only a choices field takes (the engine says so)
        return {key: found[0] if len(found) == 1 else found for key, found in given.items()}
    raise Problem(415, f"send the lead as application/json or application/x-www-form-urlencoded, not "
                       f"{kind or 'a body without a Content-Type'}")


def created(result: results.Submission) -> dict[str, Any]:
    """The 201 answer of the intake: the new lead's id, client, process, stage and owner, and its URL."""
    lead = result["lead"]
    return {"id": lead["id"], "client_id": lead["client_id"], "client_existed": result["client_existed"],
            "process": lead["process"], "stage": lead["stage"], "owner": lead["owner"],
            "url": f"/v1/leads/{lead['id']}"}
