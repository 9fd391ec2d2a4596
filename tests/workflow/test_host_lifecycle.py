"""Host lifecycle across the watchdog and the agent: an offline host comes back in
the state it had, and re-registration follows GPUs by UUID."""

import time

import pytest
from django.utils import timezone

from console.core.actions.agents import (
    do_agent_heartbeat,
    do_agent_register,
    do_mark_host_offline,
)
from console.core.actions.hosts import do_cordon_host, do_drain_host
from console.core.choices import HostState, JobState
from console.core.models import Event, Host

pytestmark = pytest.mark.django_db(transaction=True)


def _beat(host, **extra):
    return do_agent_heartbeat(host, {"host": host.name, "sent_at": time.time(), **extra})


def _offline_then_back(host, *, register=False):
    do_mark_host_offline(host, reason="no heartbeat for 120 s")
    host.refresh_from_db()
    assert host.state == HostState.OFFLINE
    if register:
        from console.core.demo.profiles import inventory_for

        do_agent_register(host, inventory=inventory_for("dgx_a100", host.name, group="rack-a"),
                          agent_version="t")
    else:
        _beat(host)
    host.refresh_from_db()
    return host


def test_a_ready_host_comes_back_ready(cluster):
    host = Host.objects.get(name="dgx-1")
    host = _offline_then_back(host)
    assert host.state == HostState.READY and host.state_reason == ""
    assert "state_before_offline" not in host.facts
    online = Event.objects.filter(host=host, kind="online").latest("pk")
    assert (online.from_state, online.to_state) == (HostState.OFFLINE, HostState.READY)


@pytest.mark.parametrize("register", [False, True])
def test_an_admin_cordon_survives_going_offline(cluster, register):
    host = do_cordon_host(Host.objects.get(name="dgx-1"), actor="admin", reason="bad fan")
    host = _offline_then_back(host, register=register)
    assert host.state == HostState.CORDONED
    assert host.state_reason == "bad fan"
    online = Event.objects.filter(host=host, kind="online").latest("pk")
    assert online.to_state == HostState.CORDONED and "bad fan" in online.reason
    # A second heartbeat changes nothing.
    _beat(host)
    host.refresh_from_db()
    assert host.state == HostState.CORDONED


def test_a_drain_survives_going_offline(cluster):
    host = do_drain_host(Host.objects.get(name="dgx-2"), actor="admin", reason="RMA")
    host = _offline_then_back(host)
    assert host.state == HostState.DRAINING and host.state_reason == "RMA"


def test_a_fault_cordon_survives_going_offline(cluster):
    host = Host.objects.get(name="hgx-1")
    host.last_heartbeat = timezone.now()
    host.save(update_fields=["last_heartbeat"])
    xid = {"kind": "xid", "line": "NVRM: Xid (PCI:0000:99:00): 79, GPU has fallen off the bus.",
           "xid": 79, "pci": "0000:99:00", "fault": "hardware", "cordon": True}
    _beat(host, xid_events=[xid])
    host.refresh_from_db()
    assert host.state == HostState.CORDONED
    host = _offline_then_back(host)
    assert host.state == HostState.CORDONED and "Xid 79" in host.state_reason


# --- the domain states a heartbeat reports -------------------------------------------------


def _running_job(submit):
    from console.core.models import Allocation, Job

    job = Job.objects.get(pk=submit(gpus_per_host=1, gpu_model="RTX-6000-Ada").pk)
    assert job.state == JobState.RUNNING, job.pending_reason
    host = Allocation.objects.filter(job=job).first().host
    return job, host


def _agent_beat(host):
    """What the host's agent would send now (its real heartbeat body)."""
    from hostagent import runtime

    return do_agent_heartbeat(host, runtime.heartbeat_body(host.name))


def test_a_paused_domain_leaves_the_job_running(cluster, submit):
    from hostagent import runtime

    job, host = _running_job(submit)
    dom = runtime.connection(host.name).lookupByName(job.domain_name)
    dom.suspend()
    body = runtime.heartbeat_body(host.name)
    assert body["domain_states"][job.domain_name] == "paused"
    assert job.domain_name in body["stopped_domains"]  # the old list, kept as it was
    assert do_agent_heartbeat(host, body)["finished"] == 0
    job.refresh_from_db()
    assert job.state == JobState.RUNNING


@pytest.mark.parametrize("state", ["paused", "blocked", "pmsuspended", "shutdown", "nostate"])
def test_only_shutoff_and_crashed_end_a_job(cluster, submit, state):
    job, host = _running_job(submit)
    summary = _beat(host, domains=[], stopped_domains=[job.domain_name],
                    domain_states={job.domain_name: state})
    assert summary["finished"] == 0
    job.refresh_from_db()
    assert job.state == JobState.RUNNING


def test_a_clean_shutdown_succeeds_the_job(cluster, submit):
    from hostagent import runtime

    job, host = _running_job(submit)
    runtime.connection(host.name).lookupByName(job.domain_name).destroy()
    assert runtime.heartbeat_body(host.name)["domain_states"][job.domain_name] == "shutoff"
    assert _agent_beat(host)["finished"] == 1
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


def test_a_crashed_domain_fails_the_job_with_the_reason(cluster, submit):
    job, host = _running_job(submit)
    summary = _beat(host, domains=[], stopped_domains=[job.domain_name],
                    domain_states={job.domain_name: "crashed"})
    assert summary["finished"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "crashed" in job.failure_reason and host.name in job.failure_reason
