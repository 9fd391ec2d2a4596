"""Training vCPU threads run SCHED_BATCH (checks: sched.batch): the domain XML asks
libvirt for it declaratively, <cputune><vcpusched vcpus='0-N' scheduler='batch'/>."""

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from msgspec.structs import replace

from hostagent.domain_xml import build_domain_xml
from hostagent.protocol import ProvisionSpec


def _cpuset(text):
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


@pytest.fixture
def spec(spec_dict):
    return ProvisionSpec.from_dict(spec_dict)


def test_every_vcpu_runs_sched_batch(spec):
    dom = ET.fromstring(build_domain_xml(spec))
    (sched,) = dom.findall("cputune/vcpusched")
    assert sched.attrib == {"vcpus": f"0-{spec.vcpus - 1}", "scheduler": "batch"}


def test_a_one_vcpu_domain_names_vcpu_0(spec):
    one = replace(spec, vcpus=1, cpus=spec.cpus[:1])
    (sched,) = ET.fromstring(build_domain_xml(one)).findall("cputune/vcpusched")
    assert sched.attrib == {"vcpus": "0", "scheduler": "batch"}


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None,
                    reason="virt-xml-validate (libxml2-utils/libvirt-clients) not installed")
@pytest.mark.parametrize("domain_type", ["kvm", "test"])
def test_the_batch_policy_validates_against_libvirt_schema(spec, tmp_path, domain_type):
    path = tmp_path / "domain.xml"
    path.write_text(build_domain_xml(spec, domain_type=domain_type))
    assert "vcpusched" in path.read_text()
    result = subprocess.run(["virt-xml-validate", str(path), "domain"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.libvirt
def test_the_domain_defines_and_starts_with_the_batch_policy(spec):
    lv = pytest.importorskip("hostagent.libvirt_driver")
    pytest.importorskip("libvirt")
    from hostagent.sim import node_file_for

    conn = lv.connect(f"test://{node_file_for('dgx_a100')}")
    try:
        assert lv.provision(conn, spec, domain_type="test") == "running"
        live = ET.fromstring(lv.domain_xml(conn, spec.name))
        # libvirt keeps the policy, one entry per vCPU (it normalises the range).
        batch = set()
        for sched in live.findall("cputune/vcpusched"):
            assert sched.get("scheduler") == "batch"
            batch |= _cpuset(sched.get("vcpus"))
        assert batch == set(range(spec.vcpus))
    finally:
        conn.close()
