from dataclasses import replace

import pytest

from hostagent.protocol import ProvisionSpec
from hostagent.sim import KINDS, LIBVIRT_MODEL_MAX, SIM_DIR, node_file_for, node_xml, simulated_host

lv = pytest.importorskip("hostagent.libvirt_driver")
pytest.importorskip("libvirt")

pytestmark = pytest.mark.libvirt


@pytest.fixture
def spec(spec_dict):
    return ProvisionSpec.from_dict(spec_dict)


def test_node_file_describes_the_8_gpu_host(conn):
    info = lv.node_info(conn)
    assert info["cpus"] == 256 and info["sockets"] == 2 and info["threads"] == 2
    xml = lv.node_device_xml(conn, "0000:bd:00.0")
    assert xml is not None and "<numa node='5'/>" in xml
    assert lv.node_device_xml(conn, "0000:99:00.0") is None


def test_provision_defines_and_starts_and_is_idempotent(conn, spec):
    assert lv.provision(conn, spec, domain_type="test") == "running"
    assert lv.provision(conn, spec, domain_type="test") == "running"
    assert lv.list_domains(conn) == ["job-42"]
    xml = lv.domain_xml(conn, "job-42")
    assert "<vcpupin vcpu='3' cpuset='51'/>" in xml
    assert "<memory mode='strict' nodeset='3'/>" in xml
    assert "<page size='1048576' unit='KiB'/>" in xml
    assert xml.count("<hostdev ") == 2


def test_teardown_is_safe_to_repeat(conn, spec):
    lv.provision(conn, spec, domain_type="test")
    assert lv.destroy_domain(conn, "job-42") is True
    assert lv.domain_state(conn, "job-42") == "shutoff"
    assert lv.destroy_domain(conn, "job-42") is False
    assert lv.undefine_domain(conn, "job-42") is True
    assert lv.undefine_domain(conn, "job-42") is False
    lv.teardown(conn, "job-42")
    assert lv.domain_state(conn, "job-42") is None


def test_define_twice_updates_a_stopped_domain(conn, spec, spec_dict):
    lv.define_domain(conn, __import__("hostagent.domain_xml").domain_xml.build_domain_xml(
        spec, domain_type="test"))
    assert lv.domain_state(conn, "job-42") == "shutoff"
    bigger = ProvisionSpec.from_dict({**spec_dict, "memory_mib": 16384})
    assert lv.provision(conn, bigger, domain_type="test") == "running"
    assert "16777216" in lv.domain_xml(conn, "job-42")


def test_start_of_unknown_domain_is_a_clear_error(conn):
    with pytest.raises(lv.DriverError, match="not defined"):
        lv.start_domain(conn, "nope")


def test_bad_uri_is_a_driver_error(tmp_path):
    with pytest.raises(lv.DriverError, match="cannot connect"):
        lv.connect(f"test://{tmp_path}/missing.xml")


def test_every_shipped_node_file_matches_its_generator():
    for kind in ("dgx_a100", "hgx_h100", "pcie_rtx6000ada", "consumer_2x_rtx5090"):
        assert node_file_for(kind).read_text() == node_xml(simulated_host(kind, 0)), kind


@pytest.mark.parametrize("path", sorted(SIM_DIR.glob("node_*.xml")), ids=lambda p: p.stem)
def test_every_shipped_node_file_opens_in_libvirt_and_reports_its_machine(path):
    """libvirt's test driver refuses a node file it cannot parse (e.g. a CPU model
    longer than nodeinfo's 31 characters): no simulated host may need a fallback."""
    kind = path.stem.removeprefix("node_")
    host = simulated_host(kind, 0)
    c = lv.connect(f"test://{path.resolve()}")
    try:
        model, memory_mib, cpus, _mhz, nodes, _sockets, cores, threads = c.getInfo()
        assert len(model) <= LIBVIRT_MODEL_MAX and model
        assert cpus == host["cpu"]["cpus"] and nodes == len(host["numa_nodes"])
        assert (cores, threads) == (host["cpu"]["cores_per_socket"],
                                    host["cpu"]["threads_per_core"])
        assert memory_mib == host["memory_mib"]
        assert lv.node_device_xml(c, host["gpus"][-1]["pci"]) is not None
    finally:
        c.close()


def test_a_cpu_model_too_long_for_libvirt_is_refused_by_the_generator():
    host = simulated_host("consumer_2x_rtx5090", 0)
    assert len(host["cpu"]["model"]) > LIBVIRT_MODEL_MAX  # the machine's real cpuinfo name
    kind = KINDS["consumer_2x_rtx5090"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(KINDS, "consumer_2x_rtx5090", replace(kind, node_cpu_model=""))
        with pytest.raises(ValueError, match="longer than libvirt"):
            node_xml(host)


def test_generated_node_file_for_another_host_index_opens(tmp_path):
    host = simulated_host("hgx_h100", 5)
    path = tmp_path / "node.xml"
    path.write_text(node_xml(host))
    c = lv.connect(f"test://{path}")
    try:
        assert lv.node_device_xml(c, host["gpus"][7]["pci"]) is not None
    finally:
        c.close()
