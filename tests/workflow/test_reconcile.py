"""The reconciler repairs drift from database state, and records each repair."""

from datetime import timedelta

import pytest
from django.utils import timezone

from console.core.actions.agents import do_agent_heartbeat
from console.core.choices import JobState
from console.core.models import Allocation, Event, Gpu, Host, Job
from console.core.tasks.reconcile import reconcile
from hostagent import runtime

pytestmark = pytest.mark.django_db(transaction=True)


def _report(host_name):
    body = runtime.heartbeat_body(host_name)
    do_agent_heartbeat(Host.objects.get(name=host_name), body)


def test_an_orphan_domain_is_destroyed(cluster, domains):
    runtime.provision("dgx-1", {"job_id": "999", "name": "coupler-job-999", "vcpus": 1,
                                "memory_mib": 1024, "cpus": [5], "numa_nodes": [0],
                                "gpus": [], "hugepages": True})
    _report("dgx-1")
    repairs = reconcile()
    assert repairs == ["orphan coupler-job-999@dgx-1"]
    assert domains("dgx-1") == {}
    assert Event.objects.filter(kind="reconcile", host__name="dgx-1").exists()


def test_a_stuck_step_is_sent_again(cluster, submit, domains):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    # Lose the provisioning: back to SCHEDULED with the VM gone, as if the message vanished.
    host = Allocation.objects.filter(job=job).first().host.name
    runtime.teardown(host, job.domain_name)
    Job.objects.filter(pk=job.pk).update(state=JobState.SCHEDULED,
                                         updated_at=timezone.now() - timedelta(minutes=5))
    repairs = reconcile(stuck_s=60)
    assert repairs == [f"redrive scheduled {job.pk}"]
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    assert domains(host) == {job.domain_name: "running"}


def test_a_report_taken_around_the_start_does_not_requeue_a_running_job(cluster, submit):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    host = Allocation.objects.filter(job=job).first().host.name
    # The agent listed its domains before this one started; the report lands just after.
    runtime.teardown(host, job.domain_name)
    _report(host)
    repairs = reconcile()
    assert f"vanished job {job.pk}" not in repairs
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING


def test_a_running_job_whose_domain_vanished_is_requeued(cluster, submit):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    host = Allocation.objects.filter(job=job).first().host.name
    runtime.teardown(host, job.domain_name)
    # Running for a while, then a report without its domain.
    Job.objects.filter(pk=job.pk).update(running_at=timezone.now() - timedelta(minutes=2))
    _report(host)
    repairs = reconcile()
    assert f"vanished job {job.pk}" in repairs
    job = Job.objects.get(pk=job.pk)
    # Requeued and placed again at once (eager).
    assert job.state == JobState.RUNNING
    assert Event.objects.filter(job=job, to_state=JobState.PREEMPTED).exists()


def test_leaked_allocations_and_drifted_counters_are_corrected(cluster, submit):
    job = Job.objects.get(pk=submit(gpus_per_host=2).pk)
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED)
    Gpu.objects.filter(host__name="ada-1", index=3).update(allocated_milli=500)
    repairs = reconcile()
    assert f"leak {job.pk}" in repairs
    assert not Allocation.objects.exists()
    assert not Gpu.objects.exclude(allocated_milli=0).exists()
