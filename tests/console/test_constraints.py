import pytest
from django.db import IntegrityError, transaction

from console.core.models import Allocation, CoreClaim, Gpu, Job, Quota


def make_job(tenant, name="j"):
    return Job.objects.create(tenant=tenant, name=name, gpus_per_host=1, vcpus_per_host=1,
                              memory_gib_per_host=1)


@pytest.mark.django_db
def test_quota_guaranteed_cannot_exceed_limit(tenant_a):
    with pytest.raises(IntegrityError):
        Quota.objects.create(tenant=tenant_a, resource="gpus", guaranteed=9, limit=8)


@pytest.mark.django_db
def test_quota_model_only_on_whole_gpu_quotas(tenant_a):
    with pytest.raises(IntegrityError):
        Quota.objects.create(tenant=tenant_a, resource="vcpus", gpu_model="A100", limit=8)


@pytest.mark.django_db
def test_database_refuses_to_overcommit_a_gpu(cluster, tenant_a):
    gpu = Gpu.objects.filter(host__name="dgx-1").first()
    Gpu.objects.filter(pk=gpu.pk).update(allocated_milli=700)
    with pytest.raises(IntegrityError), transaction.atomic():
        from django.db.models import F

        Gpu.objects.filter(pk=gpu.pk).update(allocated_milli=F("allocated_milli") + 400)
    gpu.refresh_from_db()
    assert gpu.allocated_milli == 700


@pytest.mark.django_db
def test_database_refuses_two_exclusive_allocations_of_one_gpu(cluster, tenant_a):
    gpu = Gpu.objects.filter(host__name="dgx-1").first()
    Allocation.objects.create(job=make_job(tenant_a, "one"), host=gpu.host, gpu=gpu, milli=1000)
    with pytest.raises(IntegrityError):
        Allocation.objects.create(job=make_job(tenant_a, "two"), host=gpu.host, gpu=gpu,
                                  milli=1000)


@pytest.mark.django_db
def test_database_refuses_to_pin_two_jobs_to_one_core(cluster, tenant_a):
    gpu = Gpu.objects.filter(host__name="dgx-1").first()
    first = Allocation.objects.create(job=make_job(tenant_a, "one"), host=gpu.host)
    second = Allocation.objects.create(job=make_job(tenant_a, "two"), host=gpu.host)
    CoreClaim.objects.create(allocation=first, host=gpu.host, core=48)
    with pytest.raises(IntegrityError):
        CoreClaim.objects.create(allocation=second, host=gpu.host, core=48)
