"""A plan is decided on a snapshot; the commit re-checks what may have changed since."""

import pytest

import scheduler
from console.core.actions.hosts import do_cordon_gpu, do_cordon_host
from console.core.actions.jobs import do_submit_job
from console.core.choices import JobState
from console.core.models import Allocation, Gpu, Job
from console.core.planning import commit_plan
from console.core.snapshot import build_snapshot_context


def submit(tenant, **spec):
    body = {"name": "j", "gpus_per_host": 8, "vcpus_per_host": 8, "memory_gib_per_host": 32,
            "gpu_model": "A100-SXM4-40GB"}
    body.update(spec)
    return do_submit_job(tenant=tenant, actor="test", **body)


@pytest.mark.django_db
def test_a_host_cordoned_after_the_snapshot_gets_no_new_job(cluster, tenant_a):
    job = submit(tenant_a)
    context = build_snapshot_context()
    plan = scheduler.plan(context.snapshot)
    (placement,) = plan.placements
    host = placement.hosts[0].host
    from console.core.models import Host

    do_cordon_host(Host.objects.get(name=host), actor="admin", reason="maintenance")
    report = commit_plan(plan, context)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert report.conflicts == [job.pk]
    assert not Allocation.objects.filter(job=job).exists()
    assert Gpu.objects.filter(host__name=host, allocated_milli__gt=0).count() == 0


@pytest.mark.django_db
def test_a_gpu_cordoned_after_the_snapshot_is_not_allocated(cluster, tenant_a):
    job = submit(tenant_a, gpus_per_host=1)
    context = build_snapshot_context()
    plan = scheduler.plan(context.snapshot)
    (placement,) = plan.placements
    hp = placement.hosts[0]
    gpu = Gpu.objects.get(host__name=hp.host, index=hp.gpu_indices[0])
    do_cordon_gpu(gpu, actor="admin", reason="Xid 79")
    commit_plan(plan, context)
    job.refresh_from_db()
    gpu.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert gpu.allocated_milli == 0
    assert not Allocation.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_an_unchanged_snapshot_commits(cluster, tenant_a):
    job = submit(tenant_a)
    context = build_snapshot_context()
    report = commit_plan(scheduler.plan(context.snapshot), context)
    assert report.placed == [job.pk]
    assert Job.objects.get(pk=job.pk).state in (JobState.SCHEDULED, JobState.PROVISIONING,
                                                JobState.RUNNING)
