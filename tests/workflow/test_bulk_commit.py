"""The cycle's bulk commit: the rows it writes without model instances read back as the
plan said, and the database still refuses a GPU over-commit from a stale snapshot."""

import pytest
from django.db import transaction

import scheduler
from console.core.choices import JobState, PendingCode
from console.core.models import Allocation, CoreClaim, Gpu, Job, JobMember
from console.core.planning import commit_plan
from console.core.snapshot import build_snapshot_context

pytestmark = pytest.mark.django_db


def _queue(tenant, n, **spec):
    shape = {"gpus_per_host": 1, "vcpus_per_host": 2, "memory_gib_per_host": 4, **spec}
    return [Job.objects.create(tenant=tenant, name=f"b{i}", state=JobState.QUEUED, **shape).pk
            for i in range(n)]


def test_the_bulk_commit_writes_what_the_plan_placed(cluster, tenant_a):
    ids = _queue(tenant_a, 4) + _queue(tenant_a, 2, gpus_per_host=0)
    context = build_snapshot_context()
    plan = scheduler.plan(context.snapshot)
    with transaction.atomic():
        report = commit_plan(plan, context)
    assert sorted(report.placed) == sorted(ids) and not report.conflicts
    for placement in plan.placements:
        job_id = int(placement.job_id)
        assert Job.objects.get(pk=job_id).state == JobState.SCHEDULED
        for hp in placement.hosts:
            base = Allocation.objects.get(job_id=job_id, host__name=hp.host, gpu__isnull=True)
            assert base.cpus == list(hp.cores) and base.numa_nodes == list(hp.numa_nodes)
            assert base.memory_gib == hp.memory_gib
            assert base.memory_by_numa == [[n, g] for n, g in hp.memory_by_numa]
            assert base.created_at is not None
            assert sorted(CoreClaim.objects.filter(allocation=base).values_list(
                "core", flat=True)) == sorted(hp.cores)
            assert sorted(Allocation.objects.filter(job_id=job_id, host__name=hp.host,
                                                    gpu__isnull=False)
                          .values_list("gpu__index", flat=True)) == sorted(hp.gpu_indices)
            member = JobMember.objects.get(job_id=job_id, host__name=hp.host)
            assert member.status and member.updated_at is not None
    for gpu in Gpu.objects.all():
        held = sum(Allocation.objects.filter(gpu=gpu).values_list("milli", flat=True))
        assert gpu.allocated_milli == held


def test_a_gpu_taken_since_the_snapshot_is_refused_and_only_its_job_waits(cluster, tenant_a):
    ids = _queue(tenant_a, 3)
    context = build_snapshot_context()
    plan = scheduler.plan(context.snapshot)
    assert len(plan.placements) == 3
    # A racing cycle committed first and took the whole GPU of one placement.
    taken = plan.placements[0]
    hp = taken.hosts[0]
    Gpu.objects.filter(host__name=hp.host, index=hp.gpu_indices[0]).update(allocated_milli=1000)
    with transaction.atomic():
        report = commit_plan(plan, context)
    assert report.conflicts == [int(taken.job_id)]
    assert sorted(report.placed) == sorted(i for i in ids if i != int(taken.job_id))
    job = Job.objects.get(pk=int(taken.job_id))
    assert job.state == JobState.QUEUED and job.pending_code == PendingCode.PLACEMENT_CONFLICT
    assert not Allocation.objects.filter(job=job).exists()
    assert Gpu.objects.filter(allocated_milli__gt=1000).count() == 0
