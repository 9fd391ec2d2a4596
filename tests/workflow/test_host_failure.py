"""Missed heartbeats, fatal and application Xids: only the fault domain is touched."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from console.core.actions.agents import do_agent_heartbeat
from console.core.choices import HostState, JobState
from console.core.models import Allocation, Gpu, Host, Incident, Job
from console.core.tasks.hosts import offline_hosts

pytestmark = pytest.mark.django_db(transaction=True)

XID79 = ("[ 1234.5] NVRM: Xid (PCI:0000:07:00): 79, pid=0, name=, "
         "GPU has fallen off the bus.")


def _running_on(submit, **spec):
    job = Job.objects.get(pk=submit(**spec).pk)
    assert job.state == JobState.RUNNING, job.pending_reason
    hosts = set(Allocation.objects.filter(job=job).values_list("host__name", flat=True))
    return job, hosts


def test_missed_heartbeats_take_a_host_offline_and_requeue_only_its_jobs(cluster, submit,
                                                                        domains):
    a, a_hosts = _running_on(submit, gpus_per_host=8, gpu_model="A100-SXM4-40GB")
    b, b_hosts = _running_on(submit, gpus_per_host=4, gpu_model="H100-SXM5-80GB")
    assert a_hosts != b_hosts
    (a_host,) = a_hosts
    old = timezone.now() - timedelta(minutes=10)
    Host.objects.update(last_heartbeat=timezone.now())
    Host.objects.filter(name=a_host).update(last_heartbeat=old)
    moved = offline_hosts(timeout_s=60)
    assert moved == {a_host: [a.pk]}
    assert Host.objects.get(name=a_host).state == HostState.OFFLINE
    a = Job.objects.get(pk=a.pk)
    # Requeued, and placed again on the other A100 host by the next cycle.
    assert a.state in (JobState.QUEUED, JobState.RUNNING)
    assert not Allocation.objects.filter(job=a, host__name=a_host).exists()
    assert Job.objects.get(pk=b.pk).state == JobState.RUNNING
    assert domains(next(iter(b_hosts))) == {b.domain_name: "running"}


def test_a_fatal_xid_cordons_the_gpu_opens_an_incident_and_requeues_its_job(cluster,
                                                                           submit):
    job, hosts = _running_on(submit, gpus_per_host=8, gpu_model="A100-SXM4-40GB")
    (host_name,) = hosts
    host = Host.objects.get(name=host_name)
    event = {"kind": "xid", "line": XID79, "xid": 79, "pci": "0000:07:00.0",
             "fault": "hardware", "name": "GPU has fallen off the bus",
             "action": "Drain and reseat the GPU", "cordon": True}
    summary = do_agent_heartbeat(host, {"host": host_name, "sent_at": time.time(),
                                        "xid_events": [event]})
    assert summary["incidents"] == 1
    gpu = Gpu.objects.get(host=host, pci_address="0000:07:00.0")
    assert gpu.cordoned
    incident = Incident.objects.get()
    assert incident.gpu == gpu and incident.xid == 79 and XID79 in incident.raw_lines
    assert list(incident.jobs.all()) == [job]
    assert [t.slug for t in incident.tenants.all()] == ["tenant-a"]
    assert incident.runbook == "cuda_launch_failed"
    assert incident.recommended_action
    job = Job.objects.get(pk=job.pk)
    assert job.state in (JobState.QUEUED, JobState.RUNNING)
    assert not Allocation.objects.filter(job=job, gpu=gpu).exists()
    # The same line reported again opens nothing new.
    do_agent_heartbeat(host, {"host": host_name, "sent_at": time.time(), "xid_events": [event]})
    assert Incident.objects.count() == 1


def test_an_application_xid_fails_only_that_job(cluster, submit):
    one, hosts_one = _running_on(submit, gpus_per_host=1, gpu_model="RTX-6000-Ada")
    two, _ = _running_on(submit, gpus_per_host=1, gpu_model="RTX-6000-Ada")
    (host_name,) = hosts_one
    gpu = Allocation.objects.get(job=one, gpu__isnull=False).gpu
    event = {"kind": "xid", "line": f"NVRM: Xid (PCI:{gpu.pci_address}): 13, Graphics Exception",
             "xid": 13, "pci": gpu.pci_address, "fault": "application",
             "name": "Graphics Engine Exception"}
    do_agent_heartbeat(Host.objects.get(name=host_name),
                       {"host": host_name, "sent_at": time.time(), "xid_events": [event]})
    one = Job.objects.get(pk=one.pk)
    assert one.state == JobState.FAILED and "Xid 13" in one.failure_reason
    assert Job.objects.get(pk=two.pk).state == JobState.RUNNING
    assert not Gpu.objects.get(pk=gpu.pk).cordoned
    assert Incident.objects.get().fault == "application"
