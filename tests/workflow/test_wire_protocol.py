"""The typed wire protocol seen from the console's database (hostagent.protocol).

Every way in — the REST agent endpoints (registration, heartbeat) and the broker
(signed answers, check results) — decodes the whole message as its declared type
before anything is applied: a malformed one is refused with a logged reason and
changes nothing. The agent likewise refuses a malformed command and does
nothing. Console and agent one protocol version apart understand each other
(each writes in the other's version); two apart are refused with the reason.
"""

import json
import logging
import time
from datetime import UTC, datetime

import pytest

from console.core.actions.agents import do_issue_agent_token
from console.core.choices import JobState
from console.core.models import CheckResult, Event, Gpu, Host, Incident, Job
from console.core.signed_messages import seal_command
from hostagent import agent_tasks, runtime
from hostagent.protocol import PROTOCOL_VERSION, signing

RESULT_TASK = "console.core.tasks.workflow.host_result"
# What a version 1 (untyped) agent's ProvisionSpec accepted: a v1 command holds no other key.
V1_SPEC_KEYS = {"name", "vcpus", "memory_mib", "cpus", "numa_nodes", "gpus", "hugepages",
                "job_id", "cgroup", "io_limits", "io_weight", "gpu_shares", "image",
                "require_kvm", "numa_cells", "nic_vfs"}


@pytest.fixture
def tokens(cluster):
    issued = {h.name: do_issue_agent_token(h, actor="test") for h in Host.objects.all()}
    runtime.configure(runtime.AgentConfig(hosts=[
        runtime.HostConfig(name=name, token=token) for name, token in issued.items()]))
    return issued


def _post(api_client, what, token, body, host="dgx-1"):
    return api_client.post(f"/api/v1/agent/hosts/{host}/{what}/", json.dumps(body),
                           content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")


def _iso(offset_s: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() + offset_s, UTC).isoformat()


def _db_state():
    """Everything an agent's message could change."""
    hosts = list(Host.objects.order_by("name").values_list(
        "name", "state", "facts", "last_heartbeat", "inventory_digest", "group"))
    return (hosts, Event.objects.count(), CheckResult.objects.count(),
            Incident.objects.count(), list(Gpu.objects.order_by("pk").values_list(
                "pk", "cordoned", "allocated_milli")),
            list(Job.objects.order_by("pk").values_list("pk", "state", "generation")))


CHECK = {"id": "kvm.available", "status": "fail", "risk": "critical", "evidence": {}}
XID = {"kind": "xid", "line": "NVRM: Xid (PCI:0000:07:00): 79, GPU has fallen off the bus",
       "xid": 79, "pci": "0000:07:00", "fault": "hardware", "cordon": True}

# Heartbeats whose every part but one is valid (a check and an Xid event that would be
# applied): the bad part refuses the whole beat.
BAD_BEATS = {
    "a check with an unknown status": {"checks": [CHECK, {**CHECK, "status": "meh"}]},
    "an Xid event of an unknown kind": {"checks": [CHECK], "xid_events": [{**XID, "kind": "?"}]},
    "a domain end without its verdict": {"checks": [CHECK], "xid_events": [XID],
                                         "domain_ends": {"coupler-job-1": {"reason": "x"}}},
    "domain states that are not text": {"xid_events": [XID], "domain_states": {"d": 1}},
    "a time without a zone": {"xid_events": [XID], "sent_at": "2026-12-07T21:00:00"},
    "two protocol versions ahead": {"xid_events": [XID], "version": PROTOCOL_VERSION + 2},
    "two protocol versions behind": {"xid_events": [XID], "version": PROTOCOL_VERSION - 2},
    "a version that is text": {"xid_events": [XID], "version": "2"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("why", list(BAD_BEATS))
def test_a_malformed_heartbeat_is_refused_whole_and_changes_nothing(api_client, tokens, why,
                                                                     caplog):
    before = _db_state()
    body = {"version": PROTOCOL_VERSION, "host": "dgx-1", "sent_at": _iso(), **BAD_BEATS[why]}
    with caplog.at_level(logging.WARNING, logger="coupler.security"):
        response = _post(api_client, "heartbeat", tokens["dgx-1"], body)
    assert response.status_code == 400, response.content
    assert _db_state() == before
    assert "refused an agent's heartbeat" in caplog.text
    # The same beat without its bad part is applied: the refusal was about that part.
    good = {k: v for k, v in body.items() if k not in BAD_BEATS[why] or k == "checks"}
    good.update(checks=[CHECK], xid_events=[XID], sent_at=_iso(1))
    assert _post(api_client, "heartbeat", tokens["dgx-1"], good).status_code == 200
    assert Incident.objects.count() == 1 and CheckResult.objects.count() == 1


@pytest.mark.django_db
def test_a_heartbeat_two_versions_away_names_the_versions(api_client, tokens):
    body = {"version": PROTOCOL_VERSION + 2, "host": "dgx-1", "sent_at": _iso()}
    detail = _post(api_client, "heartbeat", tokens["dgx-1"], body).json()["detail"]
    assert f"protocol version {PROTOCOL_VERSION + 2} is 2 versions away" in detail


BAD_REGISTRATIONS = {
    "an inventory that is a list": {"inventory": []},
    "a GPU without its PCI address": {"inventory": {"gpus": [{"index": 0, "uuid": "u",
                                                              "model": "m"}]}},
    "a NUMA node index as text": {"inventory": {"gpus": [], "numa_nodes": [{"node": "0"}]}},
    "an agent version as a number": {"agent_version": 2},
    "two protocol versions behind": {"version": PROTOCOL_VERSION - 2},
}


@pytest.mark.django_db
@pytest.mark.parametrize("why", list(BAD_REGISTRATIONS))
def test_a_malformed_registration_is_refused_and_changes_nothing(api_client, tokens, why):
    from coupler_demo.profiles import inventory_for

    inventory = inventory_for("dgx_a100", "dgx-1", group="rack-z")
    body = {"version": PROTOCOL_VERSION, "inventory": inventory, "agent_version": "t",
            **BAD_REGISTRATIONS[why]}
    before = _db_state()
    assert _post(api_client, "register", tokens["dgx-1"], body).status_code == 400
    assert _db_state() == before


@pytest.mark.django_db
def test_a_version_1_agent_is_understood_and_answered_in_version_1(api_client, tokens):
    """Today's agent: no version, Unix times, the extras as loose keys."""
    from coupler_demo.profiles import inventory_for

    registration = {"inventory": inventory_for("dgx_a100", "dgx-1", group="rack-z"),
                    "libvirt_uri": "test:///default", "agent_version": "0.2.0",
                    "latency_endpoint": "10.0.0.1:7471", "hypervisor": {"hypervisor": "test"}}
    answer = _post(api_client, "register", tokens["dgx-1"], registration).json()
    assert "version" not in answer and answer["host"] == "dgx-1" and "peers" in answer
    beat = {"host": "dgx-1", "sent_at": time.time(), "agent_version": "0.2.0",
            "domains": [], "gpus": [], "healthy": True, "load": {}, "stopped_domains": [],
            "domain_states": {}, "domain_ends": {}, "console_tail": {},
            "hypervisor": {"hypervisor": "test"}, "xid_events": [XID],
            "latency_endpoint": "10.0.0.1:7471"}
    response = _post(api_client, "heartbeat", tokens["dgx-1"], beat)
    assert response.status_code == 200, response.content
    assert "version" not in response.json() and response.json()["incidents"] == 1
    host = Host.objects.get(name="dgx-1")
    assert host.facts["protocol_version"] == 1 and host.group == "rack-z"


@pytest.mark.django_db
def test_a_newer_agent_is_understood_and_answered_in_this_version(api_client, tokens):
    beat = {"version": PROTOCOL_VERSION + 1, "host": "dgx-1", "sent_at": _iso(),
            "xid_events": [{**XID, "temperature_c": 91}], "gpu_temperatures": {"0": 91}}
    response = _post(api_client, "heartbeat", tokens["dgx-1"], beat)
    assert response.status_code == 200, response.content
    assert response.json()["version"] == PROTOCOL_VERSION
    assert response.json()["incidents"] == 1
    # Commands to it are written in this side's version (it reads one version back).
    assert Host.objects.get(name="dgx-1").facts["protocol_version"] == PROTOCOL_VERSION + 1
    envelope = seal_command("dgx-1", "hostagent.teardown", _teardown_command("dgx-1"))
    assert json.loads(envelope["body"])["version"] == PROTOCOL_VERSION


def _teardown_command(host):
    from hostagent.protocol import TeardownCommand

    return TeardownCommand(host=host, name="coupler-job-41", job_id="41")


# --- the broker -------------------------------------------------------------------------




def _provisioning(submit, unsent):
    job = submit(gpus_per_host=4, gpu_model="H100-SXM5-80GB")
    assert Job.objects.get(pk=job.pk).state == JobState.PROVISIONING
    host, verb, kwargs, context = unsent[-1]
    assert verb == "provision" and context["generation"] == job.generation
    return Job.objects.get(pk=job.pk), host, kwargs, context


def _answer(token, host, payload, context, task=RESULT_TASK):
    return signing.seal({"payload": payload, "context": context},
                        sender=signing.host_principal(host), recipient=signing.CONSOLE,
                        task=task, key=signing.key_from_token(token))


@pytest.mark.django_db(transaction=True)
def test_a_malformed_answer_signed_by_the_right_host_changes_nothing(tokens, submit, unsent,
                                                                     caplog):
    from console.core.tasks.workflow import host_result

    job, host, _kwargs, context = _provisioning(submit, unsent)
    up = {"version": PROTOCOL_VERSION, "job_id": str(job.pk), "host": host, "ok": True,
          "domain": job.domain_name, "state": "running"}
    malformed = [
        ({**up, "ok": "yes"}, context),
        ({**up, "evidence": ["not", "an", "object"]}, context),
        ({**up, "version": PROTOCOL_VERSION + 2}, context),
        (up, {**context, "generation": str(job.generation)}),
        (up, {**context, "op": "reboot"}),
    ]
    before = _db_state()
    with caplog.at_level(logging.WARNING):
        for payload, ctx in malformed:
            assert host_result(_answer(tokens[host], host, payload, ctx)) is False
    assert _db_state() == before
    assert caplog.text.count("refused a host answer") == len(malformed)
    # The well-formed answer is applied.
    assert host_result(_answer(tokens[host], host, up, context)) is True
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING


@pytest.mark.django_db(transaction=True)
def test_malformed_check_results_change_nothing(tokens, caplog):
    from console.core.tasks.hosts import CHECKS_RESULT_TASK, host_checks_result

    host = Host.objects.get(name="dgx-1")
    context = {"op": "checks", "host_id": host.pk, "requested_by": "admin"}
    payload = {"host": "dgx-1", "ok": True, "checks": [CHECK, {**CHECK, "id": 7}]}
    before = _db_state()
    with caplog.at_level(logging.WARNING):
        assert host_checks_result(_answer(tokens["dgx-1"], "dgx-1", payload, context,
                                          CHECKS_RESULT_TASK)) is False
    assert _db_state() == before and "refused check results" in caplog.text
    payload["checks"] = [CHECK]
    assert host_checks_result(_answer(tokens["dgx-1"], "dgx-1", payload, context,
                                      CHECKS_RESULT_TASK)) is True
    assert CheckResult.objects.filter(host=host, check_id="kvm.available").exists()


@pytest.mark.django_db(transaction=True)
def test_a_malformed_command_is_refused_by_the_agent_and_answered_as_a_failure(
        tokens, submit, unsent, answers, caplog):
    from console.core.tasks.workflow import host_result

    job, host, kwargs, context = _provisioning(submit, unsent)
    body = {"version": PROTOCOL_VERSION, "host": host,
            "spec": {**kwargs["spec"], "colour": "blue"},
            "report_to": {"task": RESULT_TASK, "queue": "workflow", "context": context}}
    envelope = seal_command(host, "hostagent.provision", body)
    with caplog.at_level(logging.WARNING, logger="hostagent.agent_tasks"):
        result = agent_tasks.provision.run(signed=envelope)
    assert result["refused"] and "unknown keys ['colour']" in result["error"]
    assert runtime.list_domains(host) == []  # nothing done on the host
    assert "refused hostagent.provision" in caplog.text
    # Its answer (signed, a failure naming the refusal) fails this generation.
    ((name, (answer,), _queue),) = answers
    assert name == RESULT_TASK and host_result(answer) is True
    job = Job.objects.get(pk=job.pk)
    assert job.state in (JobState.TEARDOWN, JobState.QUEUED, JobState.PROVISIONING)
    failed = Event.objects.get(job=job, kind="member_failed")
    assert "unknown keys ['colour']" in failed.reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("agent_version", [1, PROTOCOL_VERSION])
def test_commands_and_answers_are_written_in_the_peers_version(tokens, submit, unsent, answers,
                                                              agent_version):
    """The console writes a host's commands in the version its agent last spoke; the
    agent answers in the version of the command; the whole round trip applies."""
    from console.core.tasks.workflow import host_result
    from hostagent.protocol import ProvisionCommand, decode

    Host.objects.update(facts={"protocol_version": agent_version})
    job, host, kwargs, context = _provisioning(submit, unsent)
    command = decode(ProvisionCommand, {"host": host, **kwargs, "report_to": {
        "task": RESULT_TASK, "queue": "workflow", "context": context}})
    envelope = seal_command(host, "hostagent.provision", command)
    body = json.loads(envelope["body"])
    if agent_version == 1:  # exactly what a version 1 agent's task accepts
        assert set(body) == {"host", "spec", "report_to"}
        assert set(body["spec"]) <= V1_SPEC_KEYS
    else:
        assert body["version"] == PROTOCOL_VERSION
    assert agent_tasks.provision.run(signed=envelope)["ok"] is True
    ((_name, (answer,), _queue),) = answers
    payload = json.loads(answer["body"])["payload"]
    assert ("version" in payload) == (agent_version != 1)
    assert host_result(answer) is True
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    assert Event.objects.get(job=job, kind="member_up").data["generation"] == job.generation
