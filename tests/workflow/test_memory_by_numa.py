"""A placement's memory split over NUMA nodes is stored at commit exactly as planned
and read back exactly by the next snapshot (issue 10: an uneven {0: 100, 1: 28} GiB
split used to come back as 64/64)."""

import pytest

import scheduler
from console.core.models import Allocation, Job
from console.core.planning import commit_plan
from console.core.snapshot import build_snapshot, build_snapshot_context

SPLIT = ((0, 100), (1, 28))


def _free(snapshot, host):
    (state,) = [h for h in snapshot.hosts if h.name == host]
    return {n.node: (n.free_memory_gib, set(n.free_cores)) for n in state.numa}


def _placement(job, host, free):
    cores = (min(free[0][1]), min(free[1][1]))
    return scheduler.Placement(job_id=str(job.pk), hosts=(scheduler.HostPlacement(
        host=host, cores=cores, numa_nodes=(0, 1), memory_gib=128, memory_by_numa=SPLIT),))


@pytest.mark.parametrize("jobs", [1, 2], ids=["one-by-one", "bulk"])
def test_an_uneven_split_is_stored_and_read_back_exactly(cluster, tenant_a, jobs):
    hosts = ["ada-1", "hgx-1"][:jobs]  # nodes of 192 and 768 GiB
    before = {h: _free(build_snapshot(), h) for h in hosts}
    assert all(before[h][0][0] >= 100 and before[h][1][0] >= 28 for h in hosts)
    placed = []
    for host in hosts:
        job = Job.objects.create(tenant=tenant_a, name=f"uneven-{host}", gpus_per_host=0,
                                 vcpus_per_host=2, memory_gib_per_host=128)
        placed.append((job, host))
    context = build_snapshot_context()
    plan = scheduler.Plan(placements=tuple(_placement(j, h, before[h]) for j, h in placed))
    report = commit_plan(plan, context)
    assert sorted(report.placed) == sorted(j.pk for j, _ in placed)

    after = build_snapshot()
    for job, host in placed:
        row = Allocation.objects.get(job=job, gpu=None)
        assert [tuple(pair) for pair in row.memory_by_numa] == list(SPLIT)
        (running,) = [r for r in after.running if r.id == str(job.pk)]
        assert running.placement[0].memory_by_numa == SPLIT
        free = _free(after, host)
        assert free[0][0] == before[host][0][0] - 100
        assert free[1][0] == before[host][1][0] - 28
