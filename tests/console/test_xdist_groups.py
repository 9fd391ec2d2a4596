"""`make test` runs most tests on pytest-xdist workers; the tests that share a fixed
resource (a Redis database, a database name, Chromium) run apart, one after another
(tests/conftest.py: SERIAL_GROUPS, the ``broker`` and ``browser`` marks), whatever file
they are added to."""

import re
from pathlib import Path

from tests.conftest import SERIAL_GROUPS, serial_group

TESTS = Path(__file__).resolve().parents[1]
SHARED_RESOURCE_MARKS = re.compile(r"pytest\.mark\.(broker|browser)\b|COUPLER_SMOKE_REDIS_DB")


def test_every_test_on_a_shared_resource_is_in_a_serial_group():
    files = [p for p in TESTS.rglob("test_*.py")
             if "hypervisor" not in p.parts and p != Path(__file__).resolve()
             and SHARED_RESOURCE_MARKS.search(p.read_text())]
    assert files  # the broker, browser and prod-stack tests exist
    outside = [str(p.relative_to(TESTS.parent)) for p in files
               if serial_group(str(p.relative_to(TESTS.parent))) is None]
    assert outside == []


def test_each_serial_group_names_files_that_exist():
    for prefix in SERIAL_GROUPS:
        assert (TESTS.parent / prefix).exists(), prefix


def test_other_tests_spread_over_the_workers():
    assert serial_group("tests/workflow/test_workflow.py::test_x") is None
    assert serial_group("tests/workflow/test_broker.py::test_x[agent]") == "broker"


def test_the_two_parts_split_the_suite_between_them():
    import os
    import subprocess
    import sys

    files = ["tests/workflow/test_broker.py", "tests/deploy/test_broker_acl.py",
             "tests/console/test_constraints.py"]

    def collected(part):
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             "-p", "no:xdist", *files],
            cwd=TESTS.parent, capture_output=True, text=True, timeout=120,
            env={**os.environ, "COUPLER_TEST_PART": part}).stdout
        # -qq (the project's -q and this one): one "path: count" line per file
        return {line.rsplit(":", 1)[0] for line in out.splitlines()
                if line.startswith("tests/") and line.rsplit(":", 1)[-1].strip().isdigit()}

    assert collected("serial") == {"tests/workflow/test_broker.py",
                                   "tests/deploy/test_broker_acl.py"}
    assert collected("parallel") == {"tests/console/test_constraints.py"}
