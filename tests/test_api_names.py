"""The engine's public surface: grouped by service, with the flat names of 0.1 kept for 0.2 (docs/api.md)."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import engine
from engine.api import FLAT_NAMES, Engine
from engine.errors import PermissionDenied
from engine.services.context import Service

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def unopened() -> Engine:
    """An engine over a database it never touches: enough to look up its operations."""
    return Engine(sa.create_engine("sqlite://"), user="nobody")


@pytest.mark.parametrize("old", sorted(FLAT_NAMES))
def test_every_flat_name_is_a_method_of_its_service(unopened: Engine, old: str) -> None:
    service_name, method_name = FLAT_NAMES[old]
    service = getattr(unopened, service_name)
    assert isinstance(service, Service)
    assert service.name == service_name
    method = getattr(type(service), method_name)  # on the class: not something __getattr__ made up
    assert inspect.isfunction(method) and not method_name.startswith("_")
    assert getattr(unopened, old) == getattr(service, method_name)


def test_an_unknown_name_is_still_an_attribute_error(unopened: Engine) -> None:
    with pytest.raises(AttributeError, match="no attribute 'add_leads'"):
        unopened.add_leads  # noqa: B018
    assert not hasattr(unopened, "_lead")


def test_every_operation_of_a_service_has_one_flat_name(unopened: Engine) -> None:
    """0.1 code finds every operation under its old name, and no two old names mean one operation."""
    public = set()
    for service_name in {service for service, _ in FLAT_NAMES.values()}:
        service = type(getattr(unopened, service_name))
        public |= {(service_name, m) for m, _ in inspect.getmembers(service, inspect.isfunction)
                   if not m.startswith("_")}
    assert public == set(FLAT_NAMES.values())
    assert len(set(FLAT_NAMES.values())) == len(FLAT_NAMES)


def test_engine_exports_the_engine_lazily() -> None:
    assert engine.Engine is Engine
    loaded = subprocess.run([sys.executable, "-c", "import engine, sys; print('engine.api' in sys.modules)"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


def test_operations_log_at_debug_and_refusals_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'leadflow.db'}"
    admin = Engine.open(url, user="root")
    admin.init()
    try:
        with caplog.at_level(logging.DEBUG, logger="engine"):
            admin.users.add("anna", "salesperson", "north")
            with pytest.raises(PermissionDenied):
                admin.as_user("anna").users.add("olga", "manager")
    finally:
        admin.close()
    records = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert ("engine.services.users", "DEBUG", "root: users.add") in records
    refusal = "user 'anna' (salesperson, team north) may not add users: only an admin may"
    assert [r for r in records if r[1] == "INFO"] == [("engine.services.users", "INFO",
                                                      f"refused users.add for anna: {refusal}")]
