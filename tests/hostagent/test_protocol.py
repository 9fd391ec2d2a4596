import json

import pytest

from hostagent.protocol import (
    CheckResult,
    Heartbeat,
    ProvisionResult,
    ProvisionSpec,
    SpecError,
    XidEvent,
)


def test_provision_spec_round_trips_through_json(spec_dict):
    spec = ProvisionSpec.from_dict(spec_dict)
    again = ProvisionSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec.cpus == (48, 49, 50, 51)
    assert spec.cgroup.io_max[0].device == "8:16"


def test_integer_job_id_becomes_a_string(spec_dict):
    spec_dict["job_id"] = 42
    assert ProvisionSpec.from_dict(spec_dict).job_id == "42"


def test_minimal_spec_gets_default_cgroup(spec_dict):
    for key in ("cgroup", "io_limits", "io_weight", "job_id"):
        spec_dict.pop(key)
    spec = ProvisionSpec.from_dict(spec_dict)
    assert spec.cgroup.cpu_weight == 100 and spec.cgroup.memory_max is None
    assert spec.job_id == "job-42"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "job</name><evil/>"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": ""}, "name"),
        ({"name": "job 42"}, "name"),
        ({"vcpus": 3}, "cpus"),
        ({"vcpus": "4"}, "vcpus"),
        ({"cpus": [1, 1, 2, 3]}, "duplicate"),
        ({"gpus": ["3b:00.0"]}, "PCI address"),
        ({"numa_nodes": []}, "numa_nodes"),
        ({"hugepages": "yes"}, "hugepages"),
        ({"memory_mib": 1500}, "1 GiB"),
        ({"colour": "blue"}, "unknown keys"),
        ({"cgroup": {"cpu_weight": 0}}, "cgroup.cpu_weight"),
        ({"cgroup": {"memory_high": 10, "memory_max": 5}}, "memory_high"),
        ({"cgroup": {"io_max": [{"device": "/dev/sda"}]}}, "MAJ:MIN"),
        ({"io_limits": [{"device": "sda; rm -rf /"}]}, "/dev path"),
    ],
)
def test_invalid_specs_raise_spec_error_naming_the_field(spec_dict, change, message):
    spec_dict.update(change)
    with pytest.raises(SpecError, match=message):
        ProvisionSpec.from_dict(spec_dict)


def test_missing_required_keys_are_listed(spec_dict):
    del spec_dict["gpus"], spec_dict["vcpus"]
    with pytest.raises(SpecError, match=r"\['vcpus', 'gpus'\]"):
        ProvisionSpec.from_dict(spec_dict)


def test_direct_construction_is_validated(spec_dict):
    spec = ProvisionSpec.from_dict(spec_dict)
    with pytest.raises(SpecError):
        ProvisionSpec(job_id="1", name="bad name", vcpus=1, memory_mib=1024, cpus=(0,),
                      numa_nodes=(0,), gpus=(), hugepages=False)
    assert ProvisionSpec(**{**spec.__dict__}) == spec


def test_gpu_addresses_are_lowercased(spec_dict):
    spec_dict["gpus"] = ["0000:3B:00.0"]
    assert ProvisionSpec.from_dict(spec_dict).gpus == ("0000:3b:00.0",)


def test_reports_round_trip_and_ignore_unknown_keys():
    hb = Heartbeat(host="sim-a100-00", sent_at=1.5, domains=("job-1",), load={"cpu": 0.5})
    assert Heartbeat.from_dict({**hb.to_dict(), "new_field": 1}) == hb
    ev = XidEvent(kind="xid", line="raw", xid=79, pci="0000:2b:00", fault="hardware")
    assert XidEvent.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev
    cr = CheckResult(id="kvm.available", status="pass", risk="critical", evidence={"a": 1})
    assert CheckResult.from_dict(cr.to_dict()) == cr
    pr = ProvisionResult(job_id="1", host="h", ok=True, domain="job-1", state="running")
    assert ProvisionResult.from_dict(pr.to_dict()) == pr


def test_reports_validate_enums():
    with pytest.raises(SpecError, match="status"):
        CheckResult(id="x", status="ok", risk="low")
    with pytest.raises(SpecError, match="fault"):
        XidEvent(kind="xid", line="", fault="cosmic rays")
    with pytest.raises(SpecError, match="sent_at"):
        Heartbeat.from_dict({"host": "h", "sent_at": "now"})
