"""What a history file's columns are: the history columns by their names, the ``reached_<stage>`` dates, the stages
and closure reasons by id or label (folded as headers are), and the old system's reasons mapped to the process's
(``--map-reason OLD=NEW``), and a company's row without a person read as an inquiry. Used by the history import
(``engine.intake.history_import``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.errors import InvalidInputError, did_you_mean
from engine.i18n import N_, every_text
from engine.intake.columns import Column, header_key
from engine.intake.inquiry import Inquiry, check_inquiry
from engine.spec import ClosureReason, ProcessSpec

#: The history columns and the other names people give them (compared by ``header_key``). ``reached_<stage>``
#: columns (a stage's id or name) give the date a deal reached that stage.
HISTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("external id", "deal id", "opportunity id", "crm id", "old id"),
    "stage": ("deal stage", "etap", "etapa", "этап", "стадия"),
    "status": ("outcome", "deal status"),
    "created_at": ("created", "created on", "engage date", "opened", "date created", "data utworzenia"),
    "stage_entered_at": ("in stage since", "stage since"),
    "closed_at": ("close date", "closed", "closed on", "date closed", "data zamknięcia"),
    "close_reason": ("lost reason", "loss reason", "powód", "motiv", "причина"),
    "team": ("sales team", "zespół", "echipa", "команда"),
    "contact_role": ("role", "contact role", "stanowisko"),
    "tax_id": ("tax id", "vat id", "vat number", "nip", "cui", "cif", "inn", "инн"),
}
REACHED = "reached"


#: The columns only a history reads: where each deal stands and since when (with the ``reached_<stage>`` dates).
WHERE_AND_WHEN = ("stage", "status", "created_at", "stage_entered_at", "closed_at", "close_reason")


@dataclass
class HistoryPlan:
    """Which column of the file is which history value."""

    columns: dict[str, int]  # history key -> column index
    reached: dict[str, int]  # stage id -> column index
    headers: dict[str, str]  # history key or reached stage -> the header as written


def plan_history(spec: ProcessSpec, header: list[str]) -> HistoryPlan:
    names = {header_key(k): k for k in HISTORY_COLUMNS}
    names.update({header_key(o): k for k, others in HISTORY_COLUMNS.items() for o in others})
    stages = stage_names(spec)
    plan = HistoryPlan({}, {}, {})
    for index, text in enumerate(header):
        key = header_key(text)
        if key in names and names[key] not in plan.columns:
            plan.columns[names[key]] = index
            plan.headers[names[key]] = text
        elif key.startswith(REACHED) and key[len(REACHED):] in stages:
            stage = stages[key[len(REACHED):]]
            plan.reached[stage] = index
            plan.headers[stage] = text
    return plan


def history_headers(spec: ProcessSpec, header: list[str], left_aside: list[str]) -> list[str]:
    """Of ``left_aside`` (the columns of ``header`` an import of new leads does not read: unknown, or an export's
    state read past), those a history import reads as a deal's stage, status or dates, when the file looks like
    another system's deals: an id of the old system and where each deal stands (a stage or a status). leadflow's own
    export (no external_id column) and a web form's (a created_at alone) are not; [] for them."""
    plan = plan_history(spec, header)
    if "external_id" not in plan.columns or not ({"stage", "status"} & set(plan.columns)):
        return []
    found = [plan.columns[k] for k in WHERE_AND_WHEN if k in plan.columns] + list(plan.reached.values())
    return [header[i] for i in sorted(found) if header[i] in left_aside]


def stage_names(spec: ProcessSpec) -> dict[str, str]:
    """The stages by id and by name in any of the process's languages (folded as headers are: case, accents and
    punctuation aside); an id wins over another stage's name."""
    names = {header_key(name): s.id for s in spec.stages for name in every_text(s.name)}
    names.update({header_key(s.id): s.id for s in spec.stages})
    return names


def reason_map(given: Mapping[str, str] | str | None) -> dict[str, str]:
    """The old system's closure reasons mapped to the process's: a mapping, or lines of ``OLD=NEW`` (the CLI's
    repeated ``--map-reason``, the HTTP API's ``map_reason``)."""
    if given is None:
        return {}
    if isinstance(given, Mapping):
        return {str(k): str(v) for k, v in given.items()}
    out: dict[str, str] = {}
    for line in given.splitlines():
        if not line.strip():
            continue
        old, sep, new = line.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InvalidInputError(N_("the closure reason mapping {line!r} is not OLD=NEW (an old system's reason = a "
                                       "closure reason of the process)"), line=line)
        out[old.strip()] = new.strip()
    return out


#: In a reason mapping, the old system's "reason" that stands for every reason neither the catalogue nor another line
#: of the mapping knows (``--map-reason "*=other"``); ``reason_lookup`` keeps its reason under this key, which no
#: folded text is.
ANY_REASON = "*"


def reason_lookup(spec: ProcessSpec, reason_map: dict[str, str]) -> dict[str, ClosureReason]:
    """The closure reasons by id and label in any of the process's languages (folded), the old system's reasons
    mapped to them, and under ``ANY_REASON`` the one every other reason goes to, if the mapping names one."""
    out: dict[str, ClosureReason] = {}
    for r in spec.closure_reasons:
        for label in every_text(r.label):
            out.setdefault(header_key(label), r)
    for r in spec.closure_reasons:
        out[header_key(r.id)] = r
    for old, new in reason_map.items():
        target = out.get(header_key(new))
        if target is None:
            ids = [r.id for r in spec.closure_reasons]
            raise InvalidInputError(N_("closure reason mapping {old}={new}: {new!r} is not a closure reason of process "
                                       "{process}{suggestion}; reasons: {ids}"), old=old, new=new, process=spec.id,
                                    suggestion=did_you_mean(new, ids), ids=', '.join(ids))
        out[ANY_REASON if old.strip() == ANY_REASON else header_key(old)] = target
    return out


def company_inquiry(values: list[tuple[Column, str]], region: str | None) -> Inquiry:
    """The inquiry of a company's row without a person: checked with the company standing in for the name."""
    company = next(v for c, v in values if c.target == "company" and v.strip())
    named = [(c, v) for c, v in values if c.target != "name"]
    inquiry, errors = check_inquiry([*named, (Column(-1, "name", "name"), company)], region)
    assert inquiry is not None and not errors
    inquiry.name = ""
    return inquiry
