"""The operation table (cli/operations.py): every operation names a real engine method with its parameters, every
route is declared once, and the table stays light enough for the remote CLI to import."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from cli.operations import BY_NAME, OPERATIONS, Operation, route
from engine.api import Engine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unopened() -> Engine:
    return Engine(None, user="nobody")  # type: ignore[arg-type]  # services are made without a database


def _method(engine: Engine, op: Operation) -> inspect.Signature | None:
    try:
        return inspect.signature(getattr(type(getattr(engine, op.service)), op.method))
    except AttributeError:
        return None


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.http} {op.path}")
def test_every_operation_is_an_engine_method_taking_its_parameters(unopened: Engine, op: Operation) -> None:
    signature = _method(unopened, op)
    if signature is None:
        # logging in (engine.auth, tokens.add_personal) lands with the auth branch; the server skips them till then
        assert op.name in {"auth.login", "auth.logout", "tokens.add_personal"}, f"{op.name}: no such operation"
        return
    accepted = set(signature.parameters) - {"self"}
    for p in op.params:
        assert p.name in accepted, f"{op.name} takes no parameter {p.name!r}"
    for name, parameter in signature.parameters.items():
        if name != "self" and parameter.default is inspect.Parameter.empty and op.body != "intake":
            assert name in {p.name for p in op.params}, f"{op.name}: the required {name!r} is not declared"
    for p in op.placed("path"):
        assert "{" + p.name + "}" in op.path
    if op.versioned:
        assert "if_version" in accepted, f"{op.name} changes a lead but takes no if_version"


def test_a_route_is_declared_once_per_audience() -> None:
    keys = [(op.http, op.path, op.audience) for op in OPERATIONS]
    assert len(keys) == len(set(keys))
    assert len(BY_NAME) == len(OPERATIONS)
    assert route(BY_NAME["leads.complete_task"], lead_id=7, task_id="a/b") == "/v1/leads/7/tasks/a%2Fb/done"


def test_the_table_imports_only_the_standard_library() -> None:
    code = ("import sys, cli.operations; heavy = {'sqlalchemy', 'jinja2', 'transitions', 'engine', 'fastapi', "
            "'click', 'rich', 'yaml'}; print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
