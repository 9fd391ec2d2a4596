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


@pytest.fixture
def conn():
    """A connection to libvirt's test driver on the shipped 8-GPU DGX A100 node file."""
    pytest.importorskip("libvirt")
    from hostagent import libvirt_driver
    from hostagent.sim import node_file_for

    connection = libvirt_driver.connect(f"test://{node_file_for('dgx_a100')}")
    yield connection
    connection.close()
