"""CI must have PostgreSQL: when ``LEADFLOW_TEST_PG_URL`` is set, the server answers ``select 1``.

Locally the test is skipped without the variable; under ``CI=true`` a missing
variable is a failure, so that the postgres tests can never be skipped silently.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("LEADFLOW_TEST_PG_URL", "").strip()
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.mark.postgres
def test_postgres_available() -> None:
    if not PG_URL:
        if IN_CI:
            pytest.fail(
                "CI=true but LEADFLOW_TEST_PG_URL is not set: CI must provide a PostgreSQL server "
                "(see .ci/run)"
            )
        pytest.skip(
            "LEADFLOW_TEST_PG_URL is not set; set it to e.g. "
            "postgresql+psycopg://leadflow:leadflow@127.0.0.1:54329/leadflow_test to run the postgres tests"
        )

    engine = create_engine(PG_URL, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            assert engine.dialect.name == "postgresql"
            assert engine.dialect.driver == "psycopg"
            assert conn.execute(text("select 1")).scalar_one() == 1
            version = conn.execute(text("show server_version")).scalar_one()
            assert version
    finally:
        engine.dispose()
