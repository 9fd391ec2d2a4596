"""provision() adopts a running domain of the job's name only if it holds exactly
the spec's hardware; a stale VM from an earlier attempt is replaced."""

import pytest

from hostagent.domain_xml import build_domain_xml
from hostagent.protocol import ProvisionSpec

lv = pytest.importorskip("hostagent.libvirt_driver")
pytest.importorskip("libvirt")

pytestmark = pytest.mark.libvirt


def _uuid(conn, name):
    return conn.lookupByName(name).UUIDString()


def test_the_same_spec_adopts_the_running_domain(conn, spec_dict):
    spec = ProvisionSpec.from_dict(spec_dict)
    assert lv.provision(conn, spec, domain_type="test") == "running"
    uuid, domain_id = _uuid(conn, "job-42"), conn.lookupByName("job-42").ID()
    assert lv.provision(conn, spec, domain_type="test") == "running"
    # Not restarted: the same domain, still running under the same id.
    assert _uuid(conn, "job-42") == uuid
    assert conn.lookupByName("job-42").ID() == domain_id
    assert lv.placement_differences(lv.domain_xml(conn, "job-42"),
                                    build_domain_xml(spec, domain_type="test")) == []


@pytest.mark.parametrize("change, key", [
    ({"gpus": ["0000:07:00.0", "0000:bd:00.0"]}, "hostdevs"),
    ({"cpus": [52, 53, 54, 55]}, "vcpupin"),
    ({"vcpus": 2, "cpus": [48, 49]}, "vcpus"),
    ({"memory_mib": 16384}, "memory"),
])
def test_a_stale_domain_with_other_hardware_is_replaced(conn, spec_dict, change, key):
    stale = ProvisionSpec.from_dict(spec_dict)
    lv.provision(conn, stale, domain_type="test")
    old_id = conn.lookupByName("job-42").ID()
    fresh = ProvisionSpec.from_dict({**spec_dict, **change})
    stale_xml = lv.domain_xml(conn, "job-42")
    assert key in lv.placement_differences(stale_xml,
                                           build_domain_xml(fresh, domain_type="test"))

    assert lv.provision(conn, fresh, domain_type="test") == "running"

    assert lv.list_domains(conn) == ["job-42"]
    assert conn.lookupByName("job-42").ID() != old_id  # destroyed and started afresh
    now = lv.domain_xml(conn, "job-42")
    assert lv.placement_differences(now, build_domain_xml(fresh, domain_type="test")) == []
    if key == "hostdevs":
        assert "bus='0xbd'" in now and "bus='0x0f'" not in now


def test_placement_compares_normalised_values():
    ours = build_domain_xml(ProvisionSpec.from_dict({
        "name": "job-1", "vcpus": 2, "memory_mib": 1024, "cpus": [4, 5],
        "numa_nodes": [0], "gpus": ["0000:07:00.0"], "hugepages": False}), domain_type="test")
    theirs = """<domain type='test'><name>job-1</name>
      <memory unit='KiB'>1048576</memory><vcpu placement='static'>2</vcpu>
      <cputune><vcpupin vcpu='1' cpuset='5'/><vcpupin vcpu='0' cpuset='4'/>
        <emulatorpin cpuset='4,5'/></cputune>
      <numatune><memory mode='strict' nodeset='0'/></numatune>
      <devices><hostdev mode='subsystem' type='pci' managed='yes'><source>
        <address domain='0x0000' bus='0x07' slot='0x00' function='0x0'/></source>
      </hostdev></devices></domain>"""
    assert lv.placement_differences(theirs, ours) == []
    assert lv.placement_differences(theirs.replace("bus='0x07'", "bus='0x0f'"),
                                    ours) == ["hostdevs"]
