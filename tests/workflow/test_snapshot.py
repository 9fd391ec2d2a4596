"""The scheduler's view of the database."""

import pytest

from console.core.choices import CheckStatus, HostState, Risk
from console.core.models import CheckResult, Gpu, Host, Job
from console.core.snapshot import build_snapshot, build_snapshot_context, memory_by_numa

pytestmark = pytest.mark.django_db


def _host(snapshot, name):
    return next(h for h in snapshot.hosts if h.name == name)


def test_it_describes_every_host_with_numa_nodes_gpus_and_links(cluster):
    snapshot = build_snapshot()
    assert {h.name for h in snapshot.hosts} == {"dgx-1", "dgx-2", "hgx-1", "ada-1"}
    dgx = _host(snapshot, "dgx-1")
    assert len(dgx.gpus) == 8 and len(dgx.numa) == 8
    assert all(g.free_milli == 1000 and g.healthy for g in dgx.gpus)
    assert any(kind.startswith("NV") for _, _, kind in dgx.links)
    # Two reserved cores of the first node are never offered.
    reserved = Host.objects.get(name="dgx-1").reserved_cores
    assert not set(reserved) & set(dgx.numa[0].free_cores)
    assert not dgx.cordoned


def test_it_marks_hosts_that_are_not_ready_as_cordoned(cluster):
    Host.objects.filter(name="dgx-1").update(state=HostState.DRAINING)
    host = Host.objects.get(name="dgx-2")
    CheckResult.objects.create(host=host, check_id="kvm.available", status=CheckStatus.FAIL,
                               risk=Risk.CRITICAL, measured_at="2025-01-01T00:00Z")
    context = build_snapshot_context()
    assert _host(context.snapshot, "dgx-1").cordoned
    assert _host(context.snapshot, "dgx-2").cordoned
    assert "kvm.available" in context.unschedulable["dgx-2"]
    Host.objects.filter(name="dgx-2").update(checks_override_reason="lab host")
    assert not _host(build_snapshot(), "dgx-2").cordoned


def test_it_marks_cordoned_and_failed_gpus_unhealthy(cluster):
    Gpu.objects.filter(host__name="hgx-1", index=3).update(cordoned=True)
    Gpu.objects.filter(host__name="hgx-1", index=4).update(health="failed")
    hgx = _host(build_snapshot(), "hgx-1")
    assert [g.index for g in hgx.gpus if not g.healthy] == [3, 4]


def test_it_applies_quota_overrides_for_what_if(cluster, tenant_a):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=2, limit=4)
    snapshot = build_snapshot(quota_overrides={"tenant-a": {"gpus": (8, 16), "vcpus": (0, 64)}})
    tenant = next(t for t in snapshot.tenants if t.name == "tenant-a")
    assert tenant.quota("gpus").limit == 16
    assert tenant.quota("vcpus").limit == 64
    # The database is untouched.
    assert build_snapshot().tenants[0].quota("gpus").limit == 4


def test_it_lists_queued_jobs_except_those_in_backoff(cluster, tenant_a):
    from datetime import timedelta

    from django.utils import timezone

    a = Job.objects.create(tenant=tenant_a, name="a", gpus_per_host=2, vcpus_per_host=8,
                           memory_gib_per_host=32, gpu_model="A100-SXM4-40GB")
    b = Job.objects.create(tenant=tenant_a, name="b", gpus_per_host=1, vcpus_per_host=4,
                           memory_gib_per_host=16,
                           not_before=timezone.now() + timedelta(minutes=5))
    context = build_snapshot_context()
    assert [j.id for j in context.snapshot.queued] == [str(a.pk)]
    assert context.snapshot.queued[0].gpu_models == ("A100-SXM4-40GB",)
    assert b.pk in context.backoff


def test_an_allocations_memory_is_read_as_stored_never_split_by_guess():
    assert memory_by_numa(128, [0, 1], [[0, 100], [1, 28]]) == {0: 100, 1: 28}
    assert memory_by_numa(32, [3], []) == {3: 32}
    assert memory_by_numa(0, [0, 1], []) == {}
    with pytest.raises(ValueError, match="without the split"):
        memory_by_numa(128, [0, 1], [])


def test_the_planner_accepts_the_snapshot(cluster, tenant_a):
    import scheduler

    job = Job.objects.create(tenant=tenant_a, name="a", gpus_per_host=2, vcpus_per_host=8,
                             memory_gib_per_host=32, gpu_model="A100-SXM4-40GB")
    plan = scheduler.plan(build_snapshot())
    placement = plan.placement_of(str(job.pk))
    assert placement is not None and placement.local
    assert placement.hosts[0].host.startswith("dgx")
