from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hostagent"


@pytest.fixture
def spec_dict():
    return {
        "job_id": "42",
        "name": "job-42",
        "vcpus": 4,
        "memory_mib": 8192,
        "cpus": [48, 49, 50, 51],
        "numa_nodes": [3],
        "gpus": ["0000:07:00.0", "0000:0f:00.0"],
        "hugepages": True,
        "cgroup": {
            "cpu_weight": 200,
            "memory_high": 8 * 2**30,
            "memory_max": 9 * 2**30,
            "io_max": [{"device": "8:16", "rbps": 2097152, "wiops": 120}],
        },
        "io_limits": [{"device": "/dev/sdb", "rbps": 2000000, "wiops": 100}],
        "io_weight": 300,
    }


@pytest.fixture(autouse=True)
def _eager_celery_unless_broker_test():
    """hostagent tests need neither Django nor Celery: override the root
    conftest's autouse fixture so they also run with ``-p no:django``."""
    yield
