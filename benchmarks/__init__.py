"""leadflow's benchmarks: scripts that build realistic data and print timings (see docs/performance.md).

Every benchmark pins the clock (``LEADFLOW_NOW``) to its data's "now", which only a demo or test database honours
(engine/purpose.py): the databases they make are marked as test databases, as the test suite's are."""

import os

os.environ.setdefault("LEADFLOW_TEST_DATABASE", "1")
