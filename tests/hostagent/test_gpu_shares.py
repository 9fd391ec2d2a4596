"""A GPU share reaches the VM as a mediated device (time-sliced vGPU)."""

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from hostagent.domain_xml import build_domain_xml
from hostagent.protocol import ProvisionSpec, SpecError

UUID = "c2177883-f1bb-47f0-914d-32a22e3a8804"


def spec(**overrides):
    body = {"job_id": "7", "name": "coupler-job-7", "vcpus": 2, "memory_mib": 4096,
            "cpus": [48, 49], "numa_nodes": [3], "gpus": [], "hugepages": True,
            "gpu_shares": [{"pci": "0000:07:00.0", "milli": 250, "mdev_uuid": UUID}]}
    body.update(overrides)
    return ProvisionSpec.from_dict(body)


def test_a_share_becomes_an_mdev_hostdev_and_no_pci_passthrough():
    dom = ET.fromstring(build_domain_xml(spec(), domain_type="kvm"))
    mdevs = dom.findall("./devices/hostdev[@type='mdev']")
    assert len(mdevs) == 1
    assert mdevs[0].get("model") == "vfio-pci"
    assert mdevs[0].find("./source/address").get("uuid") == UUID
    assert dom.findall("./devices/hostdev[@type='pci']") == []


def test_a_gpu_is_never_both_passed_through_and_shared():
    with pytest.raises(SpecError, match="never both"):
        spec(gpus=["0000:07:00.0"])


@pytest.mark.parametrize("bad", [
    {"pci": "07:00.0", "milli": 250, "mdev_uuid": UUID},
    {"pci": "0000:07:00.0", "milli": 1000, "mdev_uuid": UUID},
    {"pci": "0000:07:00.0", "milli": 250, "mdev_uuid": "not-a-uuid"},
    {"pci": "0000:07:00.0", "milli": 250, "mdev_uuid": UUID, "mdev_type": "<x/>"},
])
def test_bad_shares_are_refused_with_the_field(bad):
    with pytest.raises(SpecError, match="gpu_shares"):
        spec(gpu_shares=[bad])


def test_the_spec_round_trips_with_its_shares():
    original = spec()
    assert ProvisionSpec.from_dict(original.to_dict()) == original


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None, reason="no virt-xml-validate")
def test_the_domain_with_a_share_validates(tmp_path):
    path = tmp_path / "domain.xml"
    path.write_text(build_domain_xml(spec(), domain_type="kvm"))
    result = subprocess.run(["virt-xml-validate", str(path), "domain"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
