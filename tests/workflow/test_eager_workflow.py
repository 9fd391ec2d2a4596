"""The whole chain in one process (eager Celery): submit → cycle → provision on
libvirt's test driver → RUNNING → cancel → domain gone, allocation released."""

import pytest

from console.core.actions.jobs import do_cancel_job
from console.core.choices import JobState
from console.core.models import Allocation, CoreClaim, Event, Gpu, Job

pytestmark = pytest.mark.django_db(transaction=True)


def _job(job):
    return Job.objects.get(pk=job.pk)


def test_a_submitted_job_runs_numa_local_and_cancel_releases_everything(cluster, submit, domains):
    job = submit(gpus_per_host=2, gpu_model="A100-SXM4-40GB")
    job = _job(job)
    assert job.state == JobState.RUNNING, job.pending_reason
    allocs = list(Allocation.objects.filter(job=job).select_related("gpu", "host"))
    host = allocs[0].host.name
    gpu_nodes = {a.gpu.numa_node for a in allocs if a.gpu}
    base = next(a for a in allocs if a.gpu is None)
    assert set(base.numa_nodes) <= gpu_nodes
    assert domains(host) == {job.domain_name: "running"}
    assert sum(Gpu.objects.filter(host__name=host).values_list("allocated_milli", flat=True)) == 2000
    running = Event.objects.get(job=job, to_state=JobState.RUNNING)
    assert "submit_to_running_s" in running.data

    do_cancel_job(job, actor="test")
    job = _job(job)
    assert job.state == JobState.CANCELLED
    assert domains(host) == {}
    assert not Allocation.objects.filter(job=job).exists()
    assert not CoreClaim.objects.exists()
    assert not Gpu.objects.exclude(allocated_milli=0).exists()


def test_a_two_host_gang_runs_on_two_distinct_hosts(cluster, submit, domains):
    job = _job(submit(gpus_per_host=8, host_count=2, gpu_model="A100-SXM4-40GB"))
    assert job.state == JobState.RUNNING, job.pending_reason
    hosts = set(Allocation.objects.filter(job=job).values_list("host__name", flat=True))
    assert hosts == {"dgx-1", "dgx-2"}
    for host in hosts:
        assert domains(host) == {job.domain_name: "running"}


def test_a_member_failing_mid_gang_tears_every_member_down_and_retries(cluster, submit, domains):
    from hostagent import runtime

    runtime.inject_failure("dgx-2", "provision", "hostdev 0000:07:00.0 busy")
    job = _job(submit(gpus_per_host=8, host_count=2, gpu_model="A100-SXM4-40GB"))
    assert job.state == JobState.QUEUED
    assert job.pending_code == "retry_backoff"
    assert job.attempts == 1 and job.not_before is not None
    assert "hostdev 0000:07:00.0 busy" in job.failure_reason
    assert domains("dgx-1") == {} and domains("dgx-2") == {}
    assert not Allocation.objects.exists()
    assert not Gpu.objects.exclude(allocated_milli=0).exists()
    kinds = list(Event.objects.filter(job=job).values_list("kind", flat=True))
    assert "member_failed" in kinds and kinds.count("member_down") == 2


def test_attempts_spent_fail_the_job(cluster, submit, settings):
    from hostagent import runtime

    settings.COUPLER_PROVISION_MAX_ATTEMPTS = 1
    runtime.inject_failure("hgx-1", "provision", "no such device")
    job = _job(submit(gpus_per_host=4, gpu_model="H100-SXM5-80GB"))
    assert job.state == JobState.FAILED
    assert "no such device" in job.failure_reason
    assert not Allocation.objects.exists()


def test_an_over_limit_job_waits_with_a_reason(cluster, submit, tenant_a):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=2, limit=4)
    first = _job(submit(gpus_per_host=4))
    second = _job(submit(gpus_per_host=2))
    assert first.state == JobState.RUNNING
    assert second.state == JobState.QUEUED
    assert second.pending_code and "limit" in second.pending_reason.lower()
    assert second.pending_reason


def test_cancel_works_in_every_state(cluster, submit, tenant_a):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=0, limit=2)
    running = _job(submit(gpus_per_host=2))
    queued = _job(submit(gpus_per_host=2))
    assert (running.state, queued.state) == (JobState.RUNNING, JobState.QUEUED)
    do_cancel_job(queued, actor="test")
    assert _job(queued).state == JobState.CANCELLED
    do_cancel_job(running, actor="test")
    assert _job(running).state == JobState.CANCELLED


def test_teardown_repeated_has_no_second_effect(cluster, submit, domains):
    from console.core.tasks.workflow import host_result, teardown_job

    job = _job(submit(gpus_per_host=1))
    generation = job.generation
    do_cancel_job(job, actor="test")
    teardown_job(job.pk)
    host_result({"host": "dgx-1", "ok": True}, {"op": "teardown", "job_id": job.pk,
                                                 "generation": generation})
    assert _job(job).state == JobState.CANCELLED
    assert not Gpu.objects.exclude(allocated_milli=0).exists()


def test_a_late_answer_from_before_a_requeue_is_stale_even_with_the_same_attempts_count(
        cluster, submit):
    from console.core.actions.hosts import do_drain_host
    from console.core.actions.workflow import do_record_member_failed
    from console.core.models import Host

    job = _job(submit(gpus_per_host=1))
    first_host = Allocation.objects.filter(job=job).first().host
    assert (job.attempts, job.generation) == (1, 1)
    # Drained: torn down, requeued, placed elsewhere: attempts restart, generations don't.
    do_drain_host(Host.objects.get(pk=first_host.pk), actor="admin", reason="maintenance")
    job = _job(job)
    assert job.state == JobState.RUNNING
    assert (job.attempts, job.generation) == (1, 2)
    new_host = Allocation.objects.filter(job=job).first().host.name
    # While generation 2 provisions, an answer of generation 1 arrives.
    Job.objects.filter(pk=job.pk).update(state=JobState.PROVISIONING)
    assert do_record_member_failed(job.pk, new_host, 1, error="late answer") is False
    assert _job(job).state == JobState.PROVISIONING
    assert do_record_member_failed(job.pk, new_host, 2, error="real failure") is True
