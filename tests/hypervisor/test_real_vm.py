"""Jobs boot real VMs on this machine through the agent, on qemu:///system.

One VM at a time (2 cores, TCG): the first is reused for the placement,
isolation, libvirtd-restart and cancel assertions; the others end in the ways a
workload ends (exit 0, exit 3, QEMU killed).  Proven from the other side: the
kernel's view of QEMU (/proc, cgroupfs), libvirt's domain list, the files on
disk — not the agent's word for it.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from console.core.actions.agents import do_agent_heartbeat
from console.core.actions.inventory import do_register_host
from console.core.actions.jobs import do_cancel_job, do_submit_job
from console.core.choices import JobState
from console.core.models import Cluster, Event, Image, Job

pytestmark = [pytest.mark.hypervisor, pytest.mark.django_db(transaction=True)]

HOST = "coupler-hv-test"


@pytest.fixture
def local_host(real_host, tenant_a):
    from hostagent import runtime
    from hostagent.agentconfig import AgentConfig
    from hostagent.realhost import console_inventory

    runtime.reset()
    config = AgentConfig.from_dict({"hosts": [{
        "name": HOST, "libvirt_uri": "qemu:///system", "images_dir": real_host["images_dir"],
        "state_dir": real_host["state_dir"], "boot_timeout_s": 240, "network": "",
        "kernel_loader": local_host_loader()}]})
    runtime.configure(config)
    runtime.prepare_host(config.hosts[0])
    cluster = Cluster.objects.create(name="This machine", slug="local")
    host = do_register_host(cluster=cluster, name=HOST, inventory=console_inventory(),
                            libvirt_uri="qemu:///system")
    image = real_host["image"]
    for name, cmdline in [("sleep", "quiet no_timer_check coupler.sleep=600")]:
        Image.objects.create(cluster=cluster, name=name, format="raw", disk=image.disk,
                             sha256=image.sha256(), kernel=image.kernel, initrd=image.initrd,
                             cmdline=cmdline, os="busybox")
    yield host
    for d in runtime.list_domains(HOST):  # nothing of ours outlives a failed test
        if d["name"].startswith("coupler-job-"):
            runtime.teardown(HOST, d["name"])
    runtime.reset()


def _submit(tenant, image):
    job = do_submit_job(tenant=tenant, name=f"vm-{image}", gpus_per_host=0, vcpus_per_host=1,
                        memory_gib_per_host=1, image=image)
    return Job.objects.get(pk=job.pk)


def _qemu_pid(name):
    from hostagent.isolation import qemu_pid

    return qemu_pid(name)


def _cgroup_dirs(name):
    """Every cgroup directory (any hierarchy) whose name holds the domain's name."""
    return [p for p in Path("/sys/fs/cgroup").glob("*/coupler.partition/*")
            if name in p.name] + [p for p in Path("/sys/fs/cgroup").glob("coupler.partition/*")
                                  if name in p.name]


def test_a_job_boots_a_real_vm_isolated_as_planned_survives_libvirtd_and_cancels_clean(
        local_host, tenant_a, real_host):
    from hostagent import runtime

    started = time.monotonic()
    job = _submit(tenant_a, "sleep")
    job.refresh_from_db()
    boot_s = time.monotonic() - started
    assert job.state == JobState.RUNNING, job.failure_reason or job.pending_reason
    name = job.domain_name
    files = Path(real_host["state_dir"]) / "jobs" / name
    # RUNNING means the guest said so on its channel, not that QEMU started.
    assert "COUPLER up" in (files / "status.log").read_text()
    print(f"\nsubmit -> RUNNING (guest up) in {boot_s:.1f} s under "
          f"{runtime.hypervisor_facts(HOST)['hypervisor']}")

    # The plan, from the console: core 1 (core 0 reserved), NUMA node 0.
    planned = job.allocations.get(gpu__isnull=True)
    pid = _qemu_pid(name)
    assert pid is not None
    # QEMU in Coupler's partition, in every hierarchy that limits it (kernel's view).
    cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    for line in cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if set(controllers.split(",")) & {"cpuset", "cpu", "memory", "blkio"}:
            assert path.startswith("/coupler.partition/"), line
    # vCPU thread pinned as planned and SCHED_BATCH (TCG or KVM thread names).
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        comm = (task / "comm").read_text().strip()
        if comm.startswith("CPU ") and comm.endswith(("/TCG", "/KVM")):
            threads[comm] = int(task.name)
    assert len(threads) == 1
    tid = next(iter(threads.values()))
    assert os.sched_getaffinity(tid) == set(planned.cpus)
    assert os.sched_getscheduler(tid) == os.SCHED_BATCH
    # The memory limit is in force in QEMU's memory cgroup.
    mem_path = next(p for _, c, p in (ln.split(":", 2) for ln in cgroup.splitlines())
                    if "memory" in c.split(","))
    mem_dir = Path("/sys/fs/cgroup/memory" + mem_path)
    limit_file = mem_dir / "memory.limit_in_bytes"
    if not limit_file.exists():
        limit_file = mem_dir.parent / "memory.limit_in_bytes"
    assert int(limit_file.read_text()) == (1 + 2) * 1024**3
    # ... and the agent's own read-back, kept for the job page, agrees.
    up = Event.objects.filter(job=job, kind="member_up").latest("created_at")
    assert up.data["evidence"]["verified"] is True, up.data["evidence"]["mismatches"]

    # libvirtd restarts mid-run: the agent reconnects, the job is still watched.
    libvirtd_pid = int(Path("/run/libvirtd.pid").read_text())
    os.kill(libvirtd_pid, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{libvirtd_pid}").exists():
            break
        time.sleep(0.1)
    subprocess.run(["libvirtd", "-d"], check=True)
    time.sleep(1)
    from hostagent.realhost import ensure_daemons

    ensure_daemons()
    # The agent's next heartbeats reconnect: a beat while libvirtd is still starting
    # reports the error instead of dying (a loaded machine takes seconds to start it).
    deadline = time.monotonic() + 30
    body = runtime.heartbeat_body(HOST)
    # (the typed heartbeat always carries the field: "" when libvirt answered)
    while body.get("libvirt_error") and time.monotonic() < deadline:
        time.sleep(1)
        body = runtime.heartbeat_body(HOST)
    assert not body.get("libvirt_error"), body["libvirt_error"]
    assert body["domain_states"][name] == "running"
    assert body["console_tail"][name]
    do_agent_heartbeat(local_host, body)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING

    # Cancel: no domain, no overlay, no cgroup left.
    do_cancel_job(job, actor="test", reason="done")
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    listed = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert name not in listed
    assert not files.exists()
    assert not Path(f"/proc/{pid}").exists()
    assert _cgroup_dirs(name) == []


def _until_ended(name, timeout_s=90):
    """The agent's heartbeat once it reports how the domain ended."""
    from hostagent import runtime

    deadline = time.monotonic() + timeout_s
    while True:
        body = runtime.heartbeat_body(HOST)
        if (body.get("domain_ends") or {}).get(name) or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def test_how_a_workload_ends_is_how_the_job_ends(local_host, tenant_a, real_host):
    """Three jobs through the console, one VM at a time (the host keeps core 0, a job
    takes core 1): the guest powers off with exit status 0, with exit status 3, and
    QEMU is SIGKILLed once the guest is up. The agent's verdict (libvirt state +
    reason + the guest's exit status) reaches the console in a heartbeat, which ends
    the job accordingly and tears its VM down."""
    image = real_host["image"]
    for name, cmdline in [("exit0", "coupler.sleep=1"), ("exit3", "coupler.sleep=1 coupler.exit=3")]:
        Image.objects.create(cluster=local_host.cluster, name=name, format="raw", disk=image.disk,
                             sha256=image.sha256(), kernel=image.kernel, initrd=image.initrd,
                             cmdline=f"quiet no_timer_check {cmdline}", os="busybox")
    outcomes = {}
    started = time.monotonic()
    for case, kill in [("exit0", False), ("exit3", False), ("sleep", True)]:
        job = _submit(tenant_a, case)
        assert job.state == JobState.RUNNING, (case, job.failure_reason or job.pending_reason)
        name = job.domain_name
        if kill:
            os.kill(_qemu_pid(name), signal.SIGKILL)
        body = _until_ended(name)
        do_agent_heartbeat(local_host, body)
        job.refresh_from_db()
        outcomes[case] = (job.state, job.failure_reason,
                          (body.get("domain_ends") or {}).get(name))
        listed = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                                capture_output=True, text=True, check=True).stdout.split()
        assert name not in listed, case  # torn down before the next job takes the core
    print(f"\nthree jobs booted and ended one after the other in "
          f"{time.monotonic() - started:.1f} s")
    assert outcomes["exit0"][2] == {"succeeded": True, "reason": "exit status 0",
                                    "exit_status": 0}
    assert outcomes["exit0"][0] == JobState.SUCCEEDED
    assert outcomes["exit3"][2] == {"succeeded": False, "reason": "exit status 3",
                                    "exit_status": 3}
    assert outcomes["exit3"][0] == JobState.FAILED and "exit status 3" in outcomes["exit3"][1]
    assert outcomes["sleep"][2]["succeeded"] is False
    assert outcomes["sleep"][2]["reason"] == "crashed"
    assert outcomes["sleep"][0] == JobState.FAILED and "crashed" in outcomes["sleep"][1]


def local_host_loader():
    return ""  # SeaBIOS: qboot saved little here and is less proven


def test_a_spec_needing_hugepages_the_host_lacks_fails_pre_flight(local_host, real_host):
    from hostagent import runtime

    spec = {"job_id": "77", "name": "coupler-job-hp-77", "vcpus": 1, "memory_mib": 1024,
            "cpus": [1], "numa_nodes": [0], "gpus": [], "hugepages": True,
            "image": {"name": "x", "disk": real_host["image"].disk, "format": "raw"}}
    result = runtime.provision(HOST, spec)
    assert result["ok"] is False
    assert result["error"].startswith("pre-flight:") and "1G" in result["error"]
    assert "coupler-job-hp-77" not in [d["name"] for d in runtime.list_domains(HOST)]
    # A NUMA node the host lacks, likewise, before anything is defined.
    result = runtime.provision(HOST, {**spec, "hugepages": False, "numa_nodes": [7]})
    assert "NUMA node(s) [7] do not exist" in result["error"]
