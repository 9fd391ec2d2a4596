"""Host lifecycle across the watchdog and the agent: an offline host comes back in
the state it had, and re-registration follows GPUs by UUID."""

import time
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from console.core.actions.agents import do_agent_heartbeat, do_agent_register, do_mark_host_offline
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
        from coupler_demo.profiles import inventory_for

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
    runtime.connection(host.name).lookupByName(job.domain_name).shutdown()
    assert runtime.heartbeat_body(host.name)["domain_states"][job.domain_name] == "shutoff"
    assert _agent_beat(host)["finished"] == 1
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


def test_a_domain_destroyed_outside_coupler_fails_the_job(cluster, submit):
    """shutoff is not success by itself: libvirt's reason (destroyed) says it was killed."""
    from hostagent import runtime

    job, host = _running_job(submit)
    runtime.connection(host.name).lookupByName(job.domain_name).destroy()
    body = runtime.heartbeat_body(host.name)
    assert body["domain_ends"][job.domain_name]["succeeded"] is False
    assert _agent_beat(host)["finished"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "killed" in job.failure_reason


@pytest.mark.parametrize(("end", "state", "words"), [
    ({"succeeded": True, "reason": "exit status 0", "exit_status": 0}, JobState.SUCCEEDED, ""),
    ({"succeeded": False, "reason": "exit status 3", "exit_status": 3}, JobState.FAILED,
     "exit status 3"),
    ({"succeeded": False, "reason": "crashed", "exit_status": None}, JobState.FAILED, "crashed"),
])
def test_the_agents_domain_end_decides_the_outcome(cluster, submit, end, state, words):
    job, host = _running_job(submit)
    summary = _beat(host, domains=[], stopped_domains=[job.domain_name],
                    domain_states={job.domain_name: "shutoff"},
                    domain_ends={job.domain_name: end},
                    console_tail={job.domain_name: ["COUPLER up", "COUPLER exit 3"]},
                    hypervisor={"hypervisor": "qemu", "hypervisor_warnings": ["TCG"]})
    assert summary["finished"] == 1
    job.refresh_from_db()
    host.refresh_from_db()
    assert job.state == state
    assert words in job.failure_reason
    assert host.facts["reported_domains"]["console"][job.domain_name][-1] == "COUPLER exit 3"
    assert host.facts["hypervisor"]["hypervisor"] == "qemu"


def test_a_crashed_domain_fails_the_job_with_the_reason(cluster, submit):
    job, host = _running_job(submit)
    summary = _beat(host, domains=[], stopped_domains=[job.domain_name],
                    domain_states={job.domain_name: "crashed"})
    assert summary["finished"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "crashed" in job.failure_reason and host.name in job.failure_reason


# --- application Xids: only the job that held the GPU then ---------------------------------


def _two_jobs_on_one_host(submit):
    """Two 1-GPU jobs of different tenants on the same RTX host."""
    from console.core.models import Allocation, Job, Tenant

    one = Job.objects.get(pk=submit(gpus_per_host=1, gpu_model="RTX-6000-Ada").pk)
    other_tenant = Tenant.objects.exclude(pk=one.tenant_id).first()
    two = Job.objects.get(pk=submit(tenant=other_tenant, gpus_per_host=1,
                                    gpu_model="RTX-6000-Ada").pk)
    assert one.state == two.state == JobState.RUNNING
    gpu_one = Allocation.objects.get(job=one, gpu__isnull=False).gpu
    gpu_two = Allocation.objects.get(job=two, gpu__isnull=False).gpu
    assert gpu_one.host_id == gpu_two.host_id and gpu_one.pk != gpu_two.pk
    return one, two, gpu_one


def _app_xid(pci, *, line_prefix=""):
    return {"kind": "xid", "xid": 13, "pci": pci, "fault": "application",
            "name": "Graphics Engine Exception",
            "line": f"{line_prefix}NVRM: Xid (PCI:{pci}): 13, Graphics Exception",
            "timestamp": line_prefix.strip("[] ") or None}


def test_an_application_xid_on_an_unknown_gpu_fails_no_job(cluster, submit, tenant_b):
    from console.core.models import Incident, Job

    one, two, gpu = _two_jobs_on_one_host(submit)
    host = gpu.host
    assert _beat(host, xid_events=[_app_xid("0000:99:00.0")])["incidents"] == 1
    for job in (one, two):
        assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    incident = Incident.objects.get()
    assert incident.host == host and incident.gpu is None
    assert "0000:99:00.0" in incident.raw_lines
    assert not incident.jobs.exists() and not incident.tenants.exists()
    host.refresh_from_db()
    assert host.state == HostState.READY  # an application fault cordons nothing


def test_an_application_xid_fails_only_the_job_holding_the_gpu(cluster, submit, tenant_b):
    from console.core.models import Job

    one, two, gpu = _two_jobs_on_one_host(submit)
    _beat(gpu.host, xid_events=[_app_xid(gpu.pci_address[:-2])])  # "0000:07:00", no function
    assert Job.objects.get(pk=one.pk).state == JobState.FAILED
    assert Job.objects.get(pk=two.pk).state == JobState.RUNNING


def test_an_application_xid_logged_before_the_job_ran_fails_nothing(cluster, submit, tenant_b):
    from console.core.models import Incident, Job

    one, two, gpu = _two_jobs_on_one_host(submit)
    # The line was logged an hour before this job started (an earlier tenant's process).
    earlier = (Job.objects.get(pk=one.pk).running_at - timedelta(hours=1))
    stamp = timezone.localtime(earlier).strftime("%Y-%m-%dT%H:%M:%S%z")
    _beat(gpu.host, xid_events=[_app_xid(gpu.pci_address, line_prefix=f"{stamp} ")])
    assert Job.objects.get(pk=one.pk).state == JobState.RUNNING
    assert not Incident.objects.get().jobs.exists()
    # The same Xid logged after it started is its own.
    later = timezone.localtime(timezone.now() + timedelta(seconds=2)).strftime("%a %b %d %H:%M:%S %Y")
    _beat(gpu.host, xid_events=[_app_xid(gpu.pci_address, line_prefix=f"[{later}] ")])
    assert Job.objects.get(pk=one.pk).state == JobState.FAILED
    assert Job.objects.get(pk=two.pk).state == JobState.RUNNING


def test_event_time_reads_the_scanners_timestamps():
    from datetime import datetime

    from console.core.actions.xid_events import event_time

    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert event_time("2026-02-28T10:00:00+00:00", now=now) == datetime(2026, 2, 28, 10,
                                                                        tzinfo=UTC)
    assert event_time("24128.828315", now=now) is None
    assert event_time(None, now=now) is None
    assert event_time("Fri Aug 30 11:43:09 2024", now=now).year == 2024
    assert event_time("Feb 28 11:43:09", now=now).year == 2026
    assert event_time("Dec 31 23:59:00", now=now).year == 2025  # last year's line


# --- re-registration follows GPUs by UUID --------------------------------------------------


def _dgx_inventory(name="dgx-1"):
    import copy

    from coupler_demo.profiles import inventory_for

    return copy.deepcopy(inventory_for("dgx_a100", name, group="rack-a"))


def test_a_gpu_off_the_bus_is_failed_and_the_others_keep_their_rows(cluster, submit):
    from console.core.actions.inventory import do_register_host
    from console.core.models import Allocation, Gpu, Job

    job = Job.objects.get(pk=submit(gpus_per_host=8, gpu_model="A100-SXM4-40GB").pk)
    host = Allocation.objects.filter(job=job).first().host
    inventory = _dgx_inventory(host.name)
    before = {g.uuid: (g.pk, g.index, g.pci_address) for g in Gpu.objects.filter(host=host)}
    held = {a.gpu.uuid: a.gpu_id for a in Allocation.objects.filter(job=job, gpu__isnull=False)}
    assert len(before) == 8
    lost = inventory["gpus"][3]
    inventory["gpus"] = [g for g in inventory["gpus"] if g["uuid"] != lost["uuid"]]
    for position, gpu in enumerate(inventory["gpus"]):
        gpu["index"] = position  # GPU4..7 enumerate as 3..6 now

    do_register_host(cluster=cluster, name=host.name, inventory=inventory, actor="agent:t")

    rows = {g.uuid: g for g in Gpu.objects.filter(host=host)}
    assert len(rows) == 8
    gone = rows[lost["uuid"]]
    assert gone.pk == before[lost["uuid"]][0]
    assert gone.health == "failed" and gone.pci_address == lost["pci_address"].lower()
    assert gone.index not in range(7)  # out of the way of GPU4, now index 3
    for gpu in inventory["gpus"]:
        row = rows[gpu["uuid"]]
        assert row.pk == before[gpu["uuid"]][0]  # the same row: allocations still point at it
        assert row.index == gpu["index"] and row.pci_address == gpu["pci_address"].lower()
        assert row.health != "failed"
    # Each allocation still names the physical GPU (by UUID) it held.
    assert {a.gpu.uuid: a.gpu_id for a in
            Allocation.objects.filter(job=job, gpu__isnull=False)} == held
    assert Event.objects.filter(host=host, kind="gpu_missing").count() == 1

    # The agent's own re-registration (the API path) succeeds the same way, repeatedly.
    do_agent_register(host, inventory=inventory, agent_version="t")
    do_agent_register(host, inventory=inventory, agent_version="t")
    assert Gpu.objects.filter(host=host).count() == 8
    assert Event.objects.filter(host=host, kind="gpu_missing").count() == 1

    # The GPU comes back (reseated): its row, its index again; nothing new.
    do_register_host(cluster=cluster, name=host.name, inventory=_dgx_inventory(host.name))
    rows = {g.uuid: g for g in Gpu.objects.filter(host=host)}
    assert {u: (r.pk, r.index, r.pci_address) for u, r in rows.items()} == before


def test_a_board_swapped_in_the_same_slot_takes_over_the_row(cluster):
    from console.core.actions.inventory import do_register_host
    from console.core.models import Gpu

    inventory = _dgx_inventory("dgx-2")
    old = Gpu.objects.get(host__name="dgx-2", index=5)
    inventory["gpus"][5]["uuid"] = "GPU-replacement-0005"
    do_register_host(cluster=cluster, name="dgx-2", inventory=inventory)
    row = Gpu.objects.get(host__name="dgx-2", index=5)
    assert row.pk == old.pk and row.uuid == "GPU-replacement-0005"
    assert Gpu.objects.filter(host__name="dgx-2").count() == 8
