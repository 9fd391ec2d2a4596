"""`make test` runs on pytest-xdist workers; the tests that share a fixed resource
(a Redis database, a database name, Chromium) must stay in one serial group
(tests/conftest.py SERIAL_GROUPS), whatever file they are added to."""

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
