import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from coupler_common.cpulist import format_cpulist
from hostagent.domain_xml import build_domain_xml
from hostagent.protocol import ProvisionSpec, SpecError


@pytest.fixture
def spec(spec_dict):
    return ProvisionSpec.from_dict(spec_dict)


def parse(xml):
    return ET.fromstring(xml)


def test_gpus_are_passed_through_managed_by_pci_address(spec):
    dom = parse(build_domain_xml(spec))
    hostdevs = dom.findall("devices/hostdev")
    assert [h.get("managed") for h in hostdevs] == ["yes", "yes"]
    addr = hostdevs[1].find("source/address").attrib
    assert addr == {"domain": "0x0000", "bus": "0x0f", "slot": "0x00", "function": "0x0"}


def test_vcpus_pinned_one_to_one_and_emulator_on_the_same_cores(spec):
    dom = parse(build_domain_xml(spec))
    pins = [(p.get("vcpu"), p.get("cpuset")) for p in dom.findall("cputune/vcpupin")]
    assert pins == [("0", "48"), ("1", "49"), ("2", "50"), ("3", "51")]
    assert dom.find("cputune/emulatorpin").get("cpuset") == "48-51"
    assert dom.find("cputune/shares").text == "200"
    assert dom.find("vcpu").text == "4"


def test_memory_strict_on_gpu_node_with_1g_hugepages_and_memtune(spec):
    dom = parse(build_domain_xml(spec))
    assert dom.find("numatune/memory").attrib == {"mode": "strict", "nodeset": "3"}
    assert dom.find("memoryBacking/hugepages/page").attrib == {"size": "1", "unit": "G"}
    assert dom.find("memory").text == "8192" and dom.find("memory").get("unit") == "MiB"
    assert dom.find("memtune/hard_limit").text == str(9 * 2**20)
    assert dom.find("memtune/soft_limit").text == str(8 * 2**20)


def test_blkiotune_from_io_limits(spec):
    dom = parse(build_domain_xml(spec))
    assert dom.find("blkiotune/weight").text == "300"
    assert dom.find("blkiotune/device/path").text == "/dev/sdb"
    assert dom.find("blkiotune/device/read_bytes_sec").text == "2000000"
    assert dom.find("blkiotune/device/write_iops_sec").text == "100"


def test_without_hugepages_or_limits_those_elements_are_absent(spec_dict):
    spec_dict.update(hugepages=False, memory_mib=1500, io_limits=[], io_weight=None, cgroup={},
                     gpus=[])
    dom = parse(build_domain_xml(ProvisionSpec.from_dict(spec_dict)))
    for path in ("memoryBacking", "memtune", "blkiotune"):
        assert dom.find(path) is None


def test_memory_is_locked_only_for_passthrough_devices(spec_dict):
    """<locked/> needs RLIMIT_MEMLOCK raised (CAP_SYS_RESOURCE): only where DMA needs it."""
    dom = parse(build_domain_xml(ProvisionSpec.from_dict(spec_dict)))
    assert dom.find("memoryBacking/locked") is not None
    spec_dict.update(gpus=[])
    dom = parse(build_domain_xml(ProvisionSpec.from_dict(spec_dict)))
    assert dom.find("memoryBacking/hugepages/page") is not None
    assert dom.find("memoryBacking/locked") is None


def test_domain_type_is_configurable(spec):
    assert parse(build_domain_xml(spec)).get("type") == "kvm"
    test_dom = parse(build_domain_xml(spec, domain_type="test"))
    assert test_dom.get("type") == "test"
    assert test_dom.find("cpu") is None
    with pytest.raises(SpecError, match="domain_type"):
        build_domain_xml(spec, domain_type="xen'/>")


def test_job_id_cannot_inject_xml(spec_dict):
    spec_dict["job_id"] = "1\"/><hostdev/><x a=\""
    dom = parse(build_domain_xml(ProvisionSpec.from_dict(spec_dict)))
    assert len(dom.findall("devices/hostdev")) == 2
    job = dom.find("metadata/{https://coupler.invalid/xmlns/hostagent/1}job")
    assert job.get("id") == spec_dict["job_id"]


def test_format_cpulist():
    assert format_cpulist([3, 1, 2, 7, 9, 10]) == "1-3,7,9-10"
    assert format_cpulist([]) == ""


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None,
                    reason="virt-xml-validate (libxml2-utils/libvirt-clients) not installed")
@pytest.mark.parametrize("domain_type", ["kvm", "test"])
def test_xml_validates_against_libvirt_schema(spec, tmp_path, domain_type):
    path = tmp_path / "domain.xml"
    path.write_text(build_domain_xml(spec, domain_type=domain_type))
    result = subprocess.run(["virt-xml-validate", str(path), "domain"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
