"""Validate a process document against ``schemas/process.schema.json`` and explain each violation.

Every error the validator yields becomes a located ``Problem`` in words an admin understands (an unknown key
with "did you mean", a YAML 1.1 surprise instead of "expected a number", the branch of a ``oneOf`` the author
evidently meant); what it refuses is added to ``Document.refused`` so the semantic checks skip it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from engine import paths
from engine.document import Document, Path_
from engine.errors import Problem, did_you_mean, either, joined, suggest
from engine.i18n import N_, Message

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

@cache
def schema() -> dict[str, Any]:
    return json.loads(paths.schema_file().read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _validator() -> Validator:
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 5.0 as an integer; a whole-number slot takes only what is written as one.
    whole = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    strict = validators.extend(Draft202012Validator, type_checker=whole)
    return strict(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


_TYPE_WORDS = {
    "string": N_("text"),
    "integer": N_("a whole number"),
    "number": N_("a number"),
    "boolean": N_("true or false"),
    "array": N_("a list"),
    "object": N_("a mapping of keys to values"),
    "null": N_("nothing"),
}
#: The schema's descriptions that a problem quotes (a pattern's rule, what a ``oneOf`` takes), for the catalogues:
#: a problem shows one in the reader's language (``Message(description)``); tests/test_i18n_process_problems.py
#: checks every one the schema has is here.
SCHEMA_DESCRIPTIONS = (
    N_("ISO 4217 currency code of lead values and money fields, e.g. PLN, EUR, RON."),
    N_("ISO 3166 country code whose weekends and public holidays every deadline skips, e.g. PL, RO, GB."),
    N_("ISO 639-1 code of the language of the process's e-mails, two lowercase letters such as pl, en, ro "
       "(default: en); template NAME is looked up as NAME.<language>.txt.j2, then NAME.txt.j2."),
    N_("client, owner, or a role id."),
    N_("Who is reminded: client, owner, or (format 2) a role id: its users in the lead's team."),
    N_("A test on the lead's fields: {field, op, value}, on its attributes: {attribute, op, value}, or "
       "{all: [...]}, {any: [...]}, {not: {...}}."),
    N_("The value (a list for in/not_in; absent for is_set/is_unset)."),
    N_("What happens when a lead enters the stage: exactly one of create_task, send_email, remind."),
)


def describe_value(value: Any) -> str:
    """A value of the document in words (an ``i18n.Message``, but for true and false)."""
    if value is None:
        return Message(N_("nothing (an empty value)"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return Message(N_("the number {number}"), number=value)
    if isinstance(value, str):
        return Message(N_("the text {text}"), text=repr(value))
    if isinstance(value, list):
        return Message(N_("a list"))
    if isinstance(value, dict):
        return Message(N_("a mapping"))
    return Message(N_("a {kind} value"), kind=type(value).__name__)  # pragma: no cover - the parser yields JSON only


def schema_problems(doc: Document) -> list[Problem]:
    """Every schema violation of the document, located and explained.

    Says nothing about values the reader refused already; adds to ``doc.refused`` every value it
    refuses (a missing required key counts as a refused value), so the semantic checks skip them.
    """
    out: list[Problem] = []
    read = set(doc.refused)
    for error in _validator().iter_errors(doc.data):
        path: Path_ = tuple(error.absolute_path)
        if _under(path, read):
            continue
        if error.validator == "type" and path in doc.surprises and "string" not in _kinds(error.validator_value):
            out.append(doc.surprises[path])  # "YAML 1.1 reads yes as true" says more than "expected a number"
        else:
            out.extend(_explain(doc, error))
        doc.refused.update(_refused_by(error, path))
    for path, surprise in doc.surprises.items():  # the slots whose type let the YAML 1.1 reading pass
        if path not in doc.refused and not _under(path, read):
            out.append(surprise)
            doc.refused.add(path)
    return out


def _under(path: Path_, refused: set[Path_]) -> bool:
    return any(path[:i] in refused for i in range(len(path) + 1))


def _kinds(expected: Any) -> list[str]:
    return expected if isinstance(expected, list) else [expected]


def _refused_by(error: ValidationError, path: Path_) -> list[Path_]:
    """The values a schema error makes unreadable for the semantic checks."""
    if error.validator == "additionalProperties":
        return []  # the checks never read an unknown key
    if error.validator == "required":
        return [(*path, key) for key in error.validator_value if key not in error.instance]
    if error.validator == "not":
        return [(*path, "options")]
    return [path]


def _explain(doc: Document, error: ValidationError) -> Iterator[Problem]:
    path: Path_ = tuple(error.absolute_path)
    validator = error.validator
    value = error.validator_value
    instance = error.instance
    schema_part = error.schema if isinstance(error.schema, dict) else {}

    if validator in ("oneOf", "anyOf"):
        yield from _explain_alternatives(doc, error, path)
    elif validator == "additionalProperties":
        allowed = list(schema_part.get("properties", {}))
        for key in instance:
            if key not in allowed:
                yield doc.problem(
                    (*path, key), Message(N_("unknown key '{key}'{hint} allowed keys here: {allowed}"), key=key,
                                          hint=did_you_mean(key, allowed) or ";", allowed=", ".join(allowed)),
                    at_key=True,
                )
    elif validator == "required":
        missing = [k for k in value if k not in instance]
        allowed = list(schema_part.get("properties", {}))
        closed = schema_part.get("additionalProperties") is False
        unknown = [k for k in instance if k not in allowed] if closed else []
        for key in missing:
            if any(suggest(k, allowed) == f"; did you mean '{key}'?" for k in unknown):
                continue  # its misspelling is reported as an unknown key, with "did you mean '<key>'?"
            choice = key == "options" and instance.get("type") in ("choice", "choices")
            yield doc.problem(path, Message(N_("missing required key '{key}' (a {type} field lists its options)"),
                                            key=key, type=instance.get("type")) if choice else
                              Message(N_("missing required key '{key}'"), key=key))
    elif validator == "type":
        yield doc.problem(path, _type_message(doc, path, value, instance))
    elif validator == "enum":
        yield doc.problem(path, _enum_message(doc, path, value, instance))
    elif validator == "const":
        yield doc.problem(path, Message(N_("must be {expected}, got {value}"), expected=repr(value),
                                        value=describe_value(instance)))
    elif validator == "pattern":
        yield doc.problem(path, _pattern_message(value, instance, schema_part))
    elif validator in ("minimum", "exclusiveMinimum"):
        yield doc.problem(path, Message(N_("must be at least {minimum}, got {value}"), minimum=value,
                                        value=instance))
    elif validator in ("maximum", "exclusiveMaximum"):
        yield doc.problem(path, Message(N_("must be at most {maximum}, got {value}"), maximum=value,
                                        value=instance))
    elif validator == "minProperties":
        yield doc.problem(path, Message(N_("an empty mapping says nothing; give the text, or its languages such as "
                                           "{example}"), example="{en: ..., pl: ...}"))
    elif validator == "minItems":
        yield doc.problem(path, Message(N_("needs at least 1 item, got {count}"), count=len(instance)) if value == 1
                          else Message(N_("needs at least {minimum} items, got {count}"), minimum=value,
                                       count=len(instance)))
    elif validator == "uniqueItems":
        seen: set[str] = set()
        dupes = sorted({json.dumps(x, default=str) for x in instance
                        if json.dumps(x, default=str) in seen or seen.add(json.dumps(x, default=str))})  # type: ignore[func-returns-value]
        yield doc.problem(path, Message(N_("lists the same value more than once: {values}"),
                                        values=", ".join(dupes)))
    elif validator == "minLength":
        yield doc.problem(path, Message(N_("must not be empty")))
    elif validator == "maxLength":
        yield doc.problem(path, Message(N_("is longer than {count} characters"), count=value))
    elif validator == "format":
        yield doc.problem(path, Message(N_("{value} is not a valid {format}"), value=repr(instance), format=value))
    elif validator == "not" and path and isinstance(instance, dict) and "options" in instance:
        yield doc.problem((*path, "options"), Message(N_("'options' are allowed only on fields of type choice")),
                          at_key=True)
    else:  # pragma: no cover - every validator the schema uses is handled above (jsonschema's words stay unshown)
        yield doc.problem(path, Message(N_("{value} is not valid here"), value=describe_value(instance)))


def _explain_alternatives(doc: Document, error: ValidationError, path: Path_) -> Iterator[Problem]:
    """A oneOf failed: pick the branch the author evidently meant (by its required keys) and explain it."""
    branches = error.validator_value
    instance = error.instance
    if error.schema is schema()["$defs"]["text"]:
        # A label: a mapping is read as one of languages, anything else as the plain text it says it is, so a
        # plain label is explained in the words it always was ("expected text, got nothing").
        meant = 1 if isinstance(instance, dict) else 0
        for sub in error.context or ():
            if sub.relative_schema_path and sub.relative_schema_path[0] == meant:
                yield from _explain(doc, sub)
        return
    if isinstance(instance, dict) and any(b.get("required") for b in branches):
        # The branch sharing the most keys with what was written is the one the author meant.
        overlap = [len(set(b.get("properties", {})) & set(instance)) for b in branches]
        best = max(range(len(branches)), key=lambda i: overlap[i])
        if overlap[best]:
            explained = [problem for sub in error.context
                         if sub.relative_schema_path and sub.relative_schema_path[0] == best
                         for problem in _explain(doc, sub)]
            if explained:
                yield from explained
                return
        shapes = ["{" + ", ".join(b.get("required", ())) + "}" for b in branches if b.get("required")]
        known = [k for b in branches for k in b.get("required", ())]
        hints = [hint for hint in (did_you_mean(k, known) for k in instance) if hint]
        keys = ", ".join(instance) or Message(N_("no keys"))
        yield doc.problem(path, Message(N_("has {keys}{hints} expected one of these shapes: {shapes}"), keys=keys,
                                        hints=joined(hints) or ";", shapes=either(shapes)))
        return
    description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    yield doc.problem(path, Message(N_("{value} is not valid here. {description}"), value=describe_value(instance),
                                    description=Message(description)) if description
                      else Message(N_("{value} is not valid here"), value=describe_value(instance)))


def _type_message(doc: Document, path: Path_, expected: Any, instance: Any) -> str:
    kinds = _kinds(expected)
    want = either([Message(_TYPE_WORDS[k]) if k in _TYPE_WORDS else str(k) for k in kinds])
    raw = doc.source(path)
    got = describe_value(instance)
    if kinds == ["integer"] and isinstance(instance, float) and instance.is_integer():
        if raw is not None and raw != str(instance):
            return Message(N_("expected {expected}, got {value} (written {raw}); write {number}"), expected=want,
                           value=got, raw=raw, number=int(instance))
        return Message(N_("expected {expected}, got {value}; write {number}"), expected=want, value=got,
                       number=int(instance))
    if "string" in kinds and raw is not None:
        if isinstance(instance, bool):
            return Message(N_("expected {expected}, got {value} (YAML 1.1 reads an unquoted {raw} as {reading}); "
                              "write it in quotes: '{raw}'"), expected=want, value=got, raw=raw,
                           reading=str(instance).lower())
        if isinstance(instance, int) and raw.strip().startswith("0") and raw.strip() != "0":
            return Message(N_("expected {expected}, got {value} (YAML reads {raw} as the number {number}); write it "
                              "in quotes: '{raw}'"), expected=want, value=got, raw=raw, number=instance)
        if isinstance(instance, (int, float)):
            return Message(N_("expected {expected}, got {value}; write it in quotes if you mean the text '{raw}'"),
                           expected=want, value=got, raw=raw)
        if instance is None:
            return Message(N_("expected {expected}, got nothing; give a value or remove the key"), expected=want)
    return Message(N_("expected {expected}, got {value}"), expected=want, value=got)


def _enum_message(doc: Document, path: Path_, allowed: list[Any], instance: Any) -> str:
    shown = ", ".join(str(a) for a in allowed)
    raw = doc.source(path)
    if isinstance(instance, bool) and raw is not None:
        return Message(N_("YAML 1.1 reads an unquoted {raw} as {reading}; expected one of: {allowed}"), raw=raw,
                       reading=str(instance).lower(), allowed=shown)
    hint = (did_you_mean(instance, [str(a) for a in allowed]) if isinstance(instance, str) else "") or ";"
    return Message(N_("{value} is not allowed{hint} expected one of: {allowed}"), value=describe_value(instance),
                   hint=hint, allowed=shown)


def _pattern_message(pattern: str, instance: str, schema_part: dict[str, Any]) -> str:
    if pattern == "^[a-z][a-z0-9_]*$":
        slug = re.sub(r"[^a-z0-9_]+", "_", instance.lower()).strip("_")
        slug = slug if slug and slug[0].isalpha() else f"x_{slug}"
        return Message(N_("{value} is not a valid id: use lowercase letters, digits and underscores, starting with "
                          "a letter (e.g. '{example}')"), value=repr(instance), example=slug)
    description = (Message(schema_part["description"]) if "description" in schema_part
                   else Message(N_("it must match {pattern}"), pattern=pattern))
    if re.fullmatch(pattern, instance.upper()):
        return Message(N_("{value} is not valid: write it in capitals, '{written}'. {description}"),
                       value=repr(instance), written=instance.upper(), description=description)
    if re.fullmatch(pattern, instance.lower()):
        return Message(N_("{value} is not valid: write it in lowercase, '{written}'. {description}"),
                       value=repr(instance), written=instance.lower(), description=description)
    return Message(N_("{value} is not valid: {description}"), value=repr(instance), description=description)
