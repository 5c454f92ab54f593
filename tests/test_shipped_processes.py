"""Every process file shipped in processes/ is valid and follows the house rules of a sales process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.loader import check_file
from engine.spec import BANT_LETTERS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "process.schema.json").read_text(encoding="utf-8"))
SHIPPED = sorted((ROOT / "processes").glob("*.yaml"))
EXPECTED_IDS = {"photovoltaics", "mortgage", "life_insurance", "leasing", "saas_trial"}

shipped = pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])


class _DatesAsText(yaml.SafeLoader):
    """Like the engine's loader, read an unquoted 2024-03-01 as text (the schema checks text dates)."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read(path: Path) -> object:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_DatesAsText)  # a SafeLoader


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_the_expected_processes_are_shipped(processes_dir: Path) -> None:
    ids = {read(p)["id"] for p in processes_dir.glob("*.yaml")}  # type: ignore[index]

    assert ids == EXPECTED_IDS


@shipped
def test_file_name_is_the_process_id(path: Path) -> None:
    assert read(path)["id"] == path.stem  # type: ignore[index]


@shipped
def test_matches_the_json_schema(path: Path) -> None:
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    data = read(path)

    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]

    assert errors == []


@shipped
def test_loads_without_problems(path: Path) -> None:
    spec, problems = check_file(path)

    assert [str(p) for p in problems] == []
    assert spec is not None


@shipped
def test_follows_the_house_rules(path: Path) -> None:
    spec, problems = check_file(path)
    assert spec is not None, problems

    assert len(spec.stages) >= 4
    first, second = spec.stages[0], spec.stages[1]
    assert first.id == "register_lead"
    assert second.id == "first_contact"
    assert (second.deadline_days, second.warning_days) == (2, 1)
    assert {r.bant for r in spec.closure_reasons} >= set(BANT_LETTERS)
    kinds = [r.kind for r in spec.closure_reasons]
    assert "removal" in kinds
    assert "refusal" in kinds
