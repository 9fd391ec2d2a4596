"""The wire protocol (hostagent.protocol): every message type round-trips both
ways, a malformed one is refused naming the field, and sides one protocol version
apart understand each other while two apart are refused with the reason."""

import json
from datetime import UTC, datetime

import msgspec
import pytest

from hostagent import protocol
from hostagent.protocol import (
    PROTOCOL_VERSION,
    CheckResult,
    ChecksContext,
    ChecksResult,
    ConsoleAnswer,
    DomainEnd,
    DomainReport,
    DomainsResult,
    Heartbeat,
    Inventory,
    JobContext,
    ListDomainsCommand,
    Message,
    ProvisionCommand,
    ProvisionResult,
    ProvisionSpec,
    Registration,
    ReportTo,
    RunChecksCommand,
    SpecError,
    TeardownCommand,
    TeardownResult,
    XidEvent,
    decode,
    encode,
)

NOW = datetime(2026, 12, 7, 21, 0, 0, 250000, tzinfo=UTC)


def _spec(spec_dict) -> ProvisionSpec:
    return ProvisionSpec.from_dict(spec_dict)


def _messages(spec_dict) -> list[Message]:
    """One filled-in example of every message type."""
    report_to = ReportTo(task="console.core.tasks.workflow.host_result",
                         context={"op": "provision", "job_id": 42, "generation": 3})
    check = CheckResult(id="kvm.available", status="fail", risk="critical",
                        evidence={"dev": "/dev/kvm"}, reason="absent", title="KVM")
    xid = XidEvent(kind="xid", line="NVRM: Xid (PCI:0000:07:00): 79", xid=79,
                   pci="0000:07:00", fault="hardware", cordon=True)
    inventory = decode(Inventory, {
        "cpu_count": 8, "memory_gib": 64, "facts": {"kind": "x"},
        "numa_nodes": [{"node": 0, "cpus": [0, 1, 2, 3], "memory_gib": 64}],
        "gpus": [{"index": 0, "uuid": "GPU-1", "pci_address": "0000:07:00.0",
                  "model": "A100-SXM4-40GB", "memory_mib": 40960, "numa_node": 0}],
        "nics": [{"name": "mlx5_0", "vfs": ["0000:e0:00.1"]}],
        "links": [{"a": "GPU0", "b": "GPU1", "kind": "NV12", "nvlinks": 12}]})
    return [
        ProvisionCommand(host="dgx-1", spec=_spec(spec_dict), report_to=report_to),
        TeardownCommand(host="dgx-1", name="coupler-job-42", job_id="42", report_to=report_to),
        ListDomainsCommand(host="dgx-1", with_xml=True),
        RunChecksCommand(host="dgx-1", root="/", baseline={"board_name": "DGXA100"},
                         peers=("10.0.0.2:7471",)),
        ProvisionResult(job_id="42", host="dgx-1", ok=True, domain="coupler-job-42",
                        state="running", evidence={"verified": True}),
        ProvisionResult(job_id="42", host="dgx-1", ok=False, error="pre-flight: no KVM"),
        TeardownResult(job_id="42", host="dgx-1", ok=True, domain="coupler-job-42",
                       state="absent"),
        DomainsResult(host="dgx-1", domains=(DomainReport(
            name="coupler-job-42", state="shutoff", reason="shutdown",
            end=DomainEnd(succeeded=True, reason="exit status 0", exit_status=0)),)),
        ChecksResult(host="dgx-1", ok=True, checks=(check,)),
        JobContext(op="teardown", job_id=42, generation=3, host="dgx-1"),
        ChecksContext(host_id=7, requested_by="admin"),
        Heartbeat(host="dgx-1", sent_at=NOW, agent_version="0.3.0",
                  domains=("coupler-job-42",), gpus=("0000:07:00.0",),
                  stopped_domains=("coupler-job-9",),
                  domain_states={"coupler-job-42": "running", "coupler-job-9": "shutoff"},
                  domain_ends={"coupler-job-9": DomainEnd(succeeded=False, reason="crashed")},
                  console_tail={"coupler-job-42": ("login:",)},
                  hypervisor={"hypervisor": "qemu", "hypervisor_warnings": ["TCG"]},
                  xid_events=(xid,), checks=(check,), latency_endpoint="10.0.0.1:7471"),
        Heartbeat(host="dgx-1", sent_at=NOW, healthy=False, libvirt_error="gone"),
        Registration(inventory=inventory, libvirt_uri="test:///default", agent_version="0.3.0",
                     latency_endpoint="10.0.0.1:7471", hypervisor={"hypervisor": "test"}),
        ConsoleAnswer(host="dgx-1", state="ready", queue="host.dgx-1", peers=("10.0.0.2:7471",),
                      baseline={"board_name": "DGXA100"}, incidents=1),
    ]


def _ids(spec_dict=None):
    return [type(m).__name__ for m in _messages(_SPEC)]


_SPEC = {"job_id": "42", "name": "job-42", "vcpus": 2, "memory_mib": 2048, "cpus": [4, 5],
         "numa_nodes": [0], "gpus": ["0000:07:00.0"], "hugepages": True}


def test_every_message_type_is_covered():
    declared = {name for name in protocol.__all__
                if isinstance(getattr(protocol, name), type)
                and issubclass(getattr(protocol, name), Message)
                and getattr(protocol, name) is not Message}
    assert {type(m).__name__ for m in _messages(_SPEC)} == declared


@pytest.mark.parametrize("index", range(len(_messages(_SPEC))), ids=_ids())
def test_each_message_round_trips_through_json_both_ways(index):
    msg = _messages(_SPEC)[index]
    wire = json.dumps(encode(msg))
    assert json.loads(wire)["version"] == PROTOCOL_VERSION
    assert decode(type(msg), wire.encode()) == msg  # bytes (the REST body)
    assert decode(type(msg), json.loads(wire)) == msg  # builtins (Celery, the envelope)
    # ... and back again: what was decoded encodes to the same wire text.
    assert json.dumps(encode(decode(type(msg), wire))) == wire


# One malformed variant per type: (type, builtins, the field the refusal names).
MALFORMED = [
    (ProvisionCommand, {"host": "h", "spec": {**_SPEC, "vcpus": 3}}, "cpus"),
    (ProvisionCommand, {"host": "h", "spec": {**_SPEC, "colour": "blue"}}, "unknown keys"),
    (ProvisionCommand, {"host": "h"}, "spec"),
    (TeardownCommand, {"host": "h", "name": 42}, "name"),
    (ListDomainsCommand, {"host": "h", "with_xml": "yes"}, "with_xml"),
    (RunChecksCommand, {"host": "h", "peers": "10.0.0.2:7471"}, "peers"),
    (RunChecksCommand, {"host": "h", "report_to": {"task": "t", "queue": 1}}, "queue"),
    (ProvisionResult, {"job_id": "1", "host": "h", "ok": "yes"}, "ok"),
    (ProvisionResult, {"job_id": "1", "host": "h", "ok": True, "evidence": []}, "evidence"),
    (TeardownResult, {"host": "h"}, "ok"),
    (DomainsResult, {"host": "h", "domains": [{"name": "d"}]}, "state"),
    (ChecksResult, {"host": "h", "ok": True, "checks": [{"id": "x", "status": "ok",
                                                         "risk": "low"}]}, "status"),
    (JobContext, {"op": "provision", "job_id": "42", "generation": 1}, "job_id"),
    (JobContext, {"op": "reboot", "job_id": 42, "generation": 1}, "op"),
    (ChecksContext, {"host_id": None}, "host_id"),
    (Heartbeat, {"host": "h", "sent_at": "now"}, "sent_at"),
    (Heartbeat, {"host": "h", "sent_at": "2026-12-07T21:00:00"}, "timezone"),
    (Heartbeat, {"sent_at": "2026-12-07T21:00:00Z", "domain_ends": {"d": {"reason": "x"}}},
     "succeeded"),
    (Heartbeat, {"sent_at": "2026-12-07T21:00:00Z", "xid_events": [{"kind": "xid", "line": "",
                                                                     "fault": "cosmic rays"}]},
     "fault"),
    (Heartbeat, {"sent_at": "2026-12-07T21:00:00Z", "domain_states": {"d": 5}}, "domain_states"),
    (Heartbeat, {"sent_at": "2026-12-07T21:00:00Z", "latency_endpoint": 7471},
     "latency_endpoint"),
    (Registration, {"inventory": {"gpus": [{"index": 0, "uuid": "u"}]}}, "pci_address"),
    (Registration, {"inventory": {"gpus": [{"index": "0", "uuid": "u", "pci_address": "p",
                                            "model": "m"}]}}, "index"),
    (Registration, {"inventory": []}, "inventory"),
    (ConsoleAnswer, {"peers": [1]}, "peers"),
]


@pytest.mark.parametrize(("cls", "data", "field"), MALFORMED,
                         ids=[f"{c.__name__}-{f}" for c, _d, f in MALFORMED])
def test_a_malformed_message_is_refused_naming_the_field(cls, data, field):
    for wire in ({**data, "version": PROTOCOL_VERSION},
                 json.dumps({**data, "version": PROTOCOL_VERSION}).encode()):
        with pytest.raises(SpecError, match=field):
            decode(cls, wire)


@pytest.mark.parametrize("wire", [b"", b"{", b"[1, 2]", b'"heartbeat"', b"[" * 100000])
def test_what_is_not_a_json_object_is_refused(wire):
    with pytest.raises(SpecError, match="Heartbeat"):
        decode(Heartbeat, wire)


# --- one version apart ----------------------------------------------------------------


def test_a_version_1_heartbeat_is_read_with_its_unix_time_and_defaults():
    """What today's (version 1) agent sends: no version, Unix time, untyped extras."""
    beat = decode(Heartbeat, {"host": "h", "sent_at": NOW.timestamp(), "agent_version": "0.2.0",
                              "domains": ["coupler-job-1"], "gpus": [], "healthy": True,
                              "load": {}, "stopped_domains": [], "domain_states": {},
                              "domain_ends": {}, "console_tail": {},
                              "hypervisor": {"hypervisor": "test"}, "xid_events": []})
    assert beat.version == 1
    assert beat.sent_at == NOW
    assert beat.checks is None and beat.latency_endpoint is None  # not sent: defaults


def test_a_version_1_answer_context_names_the_generation_attempt():
    ctx = decode(JobContext, {"op": "provision", "job_id": 4, "attempt": 2, "host": "h"})
    assert (ctx.version, ctx.generation) == (1, 2)
    # Only version 1 had that name: a version 2 context must say generation.
    with pytest.raises(SpecError, match="generation"):
        decode(JobContext, {"version": 2, "op": "provision", "job_id": 4, "attempt": 2})


def test_a_version_1_command_is_obeyed():
    """What today's console sends: no version keys anywhere."""
    cmd = decode(ProvisionCommand, {"host": "h", "spec": {**_SPEC, "job_id": 42},
                                    "report_to": {"task": "t", "queue": "workflow",
                                                  "context": {"attempt": 1}}})
    assert cmd.version == 1 and cmd.spec.job_id == "42"


def test_a_newer_message_with_fields_this_side_does_not_know_is_read_without_them():
    newer = PROTOCOL_VERSION + 1
    beat = decode(Heartbeat, json.dumps({"version": newer, "host": "h",
                                         "sent_at": "2026-12-07T21:00:00+01:00",
                                         "gpu_temperatures": {"0": 71}}).encode())
    assert beat.version == newer and beat.sent_at == datetime(2026, 12, 7, 20, tzinfo=UTC)
    # A command from a newer console too: its new keys are ignored...
    cmd = decode(ProvisionCommand, {"version": newer, "host": "h", "priority": 3,
                                    "spec": {**_SPEC, "tpm": True}})
    assert cmd.spec == _spec(_SPEC)
    # ... but at this side's version every key is known: an unknown one is a typo.
    with pytest.raises(SpecError, match=r"unknown keys \['tpm'\]"):
        decode(ProvisionCommand, {"version": PROTOCOL_VERSION, "host": "h",
                                  "spec": {**_SPEC, "tpm": True}})


@pytest.mark.parametrize("version", [PROTOCOL_VERSION - 2, PROTOCOL_VERSION + 2, 99])
@pytest.mark.parametrize("cls", [Heartbeat, ProvisionCommand, ProvisionResult, Registration])
def test_a_message_two_versions_away_is_refused_with_the_reason(cls, version):
    with pytest.raises(SpecError, match=rf"protocol version {version} is \d+ versions away "
                                        rf"from this side's {PROTOCOL_VERSION}"):
        decode(cls, {"version": version})


@pytest.mark.parametrize("version", ["2", True, None])
def test_a_version_that_is_not_an_integer_is_refused(version):
    with pytest.raises(SpecError, match="version"):
        decode(Heartbeat, {"version": version, "sent_at": "2026-12-07T21:00:00Z"})


def test_messages_for_a_version_1_peer_are_in_its_shape():
    beat = encode(Heartbeat(host="h", sent_at=NOW), 1)
    assert "version" not in beat and beat["sent_at"] == NOW.timestamp()
    ctx = encode(JobContext(op="provision", job_id=4, generation=2), 1)
    assert ctx["attempt"] == 2 and "generation" not in ctx and "version" not in ctx
    cmd = encode(TeardownCommand(host="h", name="coupler-job-4"), 1)
    assert "version" not in cmd
    # Both sides read what they wrote for each other.
    assert decode(Heartbeat, beat).sent_at == NOW
    assert decode(JobContext, ctx).generation == 2


def test_wire_times_are_iso_8601_with_a_zone():
    wire = encode(Heartbeat(host="h", sent_at=NOW))["sent_at"]
    assert datetime.fromisoformat(wire) == NOW and wire.endswith("Z")
    other_zone = decode(Heartbeat, {"version": 2, "sent_at": "2026-12-07T22:00:00.25+01:00"})
    assert other_zone.sent_at == NOW


def test_the_heartbeat_body_decodes_straight_from_bytes():
    beat = _messages(_SPEC)[11]
    assert isinstance(beat, Heartbeat)
    body = msgspec.json.encode(beat)
    assert decode(Heartbeat, body) == beat


# --- the provision spec ---------------------------------------------------------------


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
        ({"vcpus": True}, "vcpus"),
        ({"cpus": [1, 1, 2, 3]}, "duplicate"),
        ({"gpus": ["3b:00.0"]}, "PCI address"),
        ({"numa_nodes": []}, "numa_nodes"),
        ({"hugepages": "yes"}, "hugepages"),
        ({"memory_mib": 1500}, "1 GiB"),
        ({"colour": "blue"}, "unknown keys"),
        ({"cgroup": {"cpu_weight": 0}}, "cgroup.cpu_weight"),
        ({"cgroup": {"memory_high": 10, "memory_max": 5}}, "memory_high"),
        ({"cgroup": {"io_max": [{"device": "/dev/sda"}]}}, "MAJ:MIN"),
        ({"cgroup": {"io_max": [{"device": "8:16", "rbsp": 1}]}}, r"io_max\[0\]: unknown"),
        ({"io_limits": [{"device": "sda; rm -rf /"}]}, "/dev path"),
    ],
)
def test_invalid_specs_raise_spec_error_naming_the_field(spec_dict, change, message):
    spec_dict.update(change)
    with pytest.raises(SpecError, match=message):
        ProvisionSpec.from_dict(spec_dict)


def test_a_missing_required_key_is_named(spec_dict):
    del spec_dict["gpus"]
    with pytest.raises(SpecError, match="gpus"):
        ProvisionSpec.from_dict(spec_dict)


def test_direct_construction_is_validated(spec_dict):
    spec = ProvisionSpec.from_dict(spec_dict)
    with pytest.raises(SpecError):
        ProvisionSpec(job_id="1", name="bad name", vcpus=1, memory_mib=1024, cpus=(0,),
                      numa_nodes=(0,), gpus=(), hugepages=False)
    assert msgspec.structs.replace(spec) == spec


def test_gpu_addresses_are_lowercased(spec_dict):
    spec_dict["gpus"] = ["0000:3B:00.0"]
    assert ProvisionSpec.from_dict(spec_dict).gpus == ("0000:3b:00.0",)


def test_reports_ignore_unknown_keys():
    hb = Heartbeat(host="sim-a100-00", sent_at=NOW, domains=("job-1",), load={"cpu": 0.5})
    assert decode(Heartbeat, {**encode(hb), "new_field": 1}) == hb
    cr = CheckResult(id="kvm.available", status="pass", risk="critical", evidence={"a": 1})
    assert CheckResult.from_dict({**cr.to_dict(), "new_field": 1}) == cr


def test_reports_validate_enums():
    with pytest.raises(SpecError, match="status"):
        CheckResult(id="x", status="ok", risk="low")
    with pytest.raises(SpecError, match="fault"):
        XidEvent(kind="xid", line="", fault="cosmic rays")


# --- the agent's heartbeat loop against consoles of each version --------------------------


@pytest.mark.parametrize("console_version", [None, PROTOCOL_VERSION, PROTOCOL_VERSION + 1])
def test_the_agent_writes_heartbeats_in_the_version_the_console_answers_in(console_version):
    """A version 1 console answers without ``version`` and reads Unix times: after its
    first answer the agent writes that; a console of this version or newer gets this one."""
    from hostagent import runtime

    runtime.reset()
    try:
        config = runtime.AgentConfig(console_url="http://console", hosts=[
            runtime.HostConfig(name="dgx-a100-01")])
        runtime.configure(config)
        posts = []

        def post(url, token, body):
            posts.append((url.rsplit("/", 2)[-2], json.loads(json.dumps(body))))
            answer = {"host": "dgx-a100-01", "peers": [], "baseline": None}
            return answer if console_version is None else {**answer, "version": console_version}

        loop = runtime.HeartbeatLoop(config, post=post, checks_every=1000)
        loop.beat_once()
        loop.beat_once()
        (what, registration), *beats = posts
        # Before any answer, this side's version (a version 1 console ignores the key).
        assert what == "register" and registration["version"] == PROTOCOL_VERSION
        assert decode(Registration, registration).agent_version
        assert len(beats) == 2
        for _what, beat in beats:  # after the registration's answer: the console's
            if console_version is None:
                assert "version" not in beat and isinstance(beat["sent_at"], float)
            else:
                assert beat["version"] == PROTOCOL_VERSION
                assert datetime.fromisoformat(beat["sent_at"]).tzinfo is not None
            assert decode(Heartbeat, beat).host == "dgx-a100-01"  # the console reads either
    finally:
        runtime.reset()


def test_a_console_answer_two_versions_away_is_ignored_and_logged(caplog):
    from hostagent import runtime

    runtime.reset()
    try:
        config = runtime.AgentConfig(console_url="http://console", hosts=[
            runtime.HostConfig(name="dgx-a100-01")])
        runtime.configure(config)
        loop = runtime.HeartbeatLoop(config, post=lambda url, token, body: {
            "version": PROTOCOL_VERSION + 2, "peers": ["10.0.0.9:7471"]})
        loop.beat_once()
        assert loop.peers.get("dgx-a100-01") is None
        assert "2 versions away" in caplog.text
    finally:
        runtime.reset()
