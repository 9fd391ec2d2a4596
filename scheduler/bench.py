"""Planner benchmark: ``python -m scheduler.bench [--json]``.

Cluster: 1,000 hosts x 8 GPUs laid out like a DGX A100 (all pairs NV12; two GPUs on each of
four of its eight NUMA nodes, 32 CPUs and 128 GiB per NUMA node), in 10 racks. Queue:
10,000 jobs from 100 tenants -- 1, 2, 4 and 8 whole GPUs, GPU shares, and 2-4-host gangs
of 8 GPUs -- about 2.7x what the cluster holds, so the plan also exercises the "no room"
paths. Figures:

* ``placements_per_s``: placements in one full `plan()` (DRF, limits, topology scoring,
  the default policy) divided by its wall time, snapshot ingestion included;
* ``drf_order_ms``: `fairshare.drf_order` alone, 1,000 tenants x 10,000 jobs;
* ``gang64_ms``: finding and committing hosts for one 64-host x 8-GPU gang on the empty
  cluster (``gang64_plan_ms``: the same through `plan()`, building the snapshot's working
  state included).

Each timing is the best of ``--repeat`` runs (default 3; 15 for the two short ones).
Timings are printed, never asserted. Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Sequence

from scheduler.fairshare import drf_order
from scheduler.model import (
    DEFAULT_POLICY,
    GpuState,
    HostState,
    JobRequest,
    NicState,
    NumaState,
    Snapshot,
    TenantState,
)
from scheduler.placement import Placer
from scheduler.planner import cluster_capacity, plan
from scheduler.policies import POLICIES, workload_from_jobs

GPU_NUMA = (3, 3, 1, 1, 7, 7, 5, 5)  # as in the DGX A100 capture


def dgx_host(name: str, group: str) -> HostState:
    # every GPU in its own IOMMU group; 8 compute NICs, two behind each GPU pair's PCIe
    # switch (PXB), 8 SR-IOV virtual functions each: the NIC and IOMMU constraints are on
    gpus = tuple(GpuState(i, "A100", GPU_NUMA[i], iommu_group=16 + i) for i in range(8))
    nics = tuple(NicState(f"mlx5_{j}", GPU_NUMA[j], free_vfs=8) for j in range(8))
    nic_links = tuple((i, f"mlx5_{j}", "PXB" if i // 2 == j // 2 else "SYS")
                      for i in range(8) for j in range(8))
    numa = tuple(
        NumaState(k, tuple(range(16 * k, 16 * k + 16)) + tuple(range(128 + 16 * k, 144 + 16 * k)), 128)
        for k in range(8)
    )
    links = tuple((a, b, "NV12") for a in range(8) for b in range(a + 1, 8))
    return HostState(name, gpus, numa, links, group=group, nics=nics, nic_links=nic_links)


def cluster(n_hosts: int = 1000) -> tuple[HostState, ...]:
    return tuple(dgx_host(f"dgx-{i:04d}", f"rack-{i // 100:02d}") for i in range(n_hosts))


def queue(n_jobs: int, n_tenants: int, seed: int = 7) -> tuple[JobRequest, ...]:
    rnd = random.Random(seed)
    jobs = []
    for i in range(n_jobs):
        t = f"tenant-{rnd.randrange(n_tenants):04d}"
        r = rnd.random()
        hosts, milli = 1, None
        if r < 0.45:
            k = 1
        elif r < 0.65:
            k = 2
        elif r < 0.75:
            k = 4
        elif r < 0.80:
            k = 8
        elif r < 0.98:
            k, milli = 1, rnd.choice((250, 500))
        else:
            k, hosts = 8, rnd.choice((2, 3, 4))
        per_gpu_cpu = 4 if milli else rnd.choice((8, 16))
        jobs.append(
            JobRequest(
                id=f"job-{i:05d}",
                tenant=t,
                gpus_per_host=k,
                hosts=hosts,
                gpu_milli=milli,
                vcpus_per_host=k * per_gpu_cpu,
                memory_gib_per_host=k * (16 if milli else 64),
                priority=rnd.choice((0, 0, 0, 1, 2)),
                submit_time=float(i),
                rdma=k >= 2 and milli is None and rnd.random() < 0.1,
            )
        )
    return tuple(jobs)


def tenants(n: int) -> tuple[TenantState, ...]:
    return tuple(TenantState(f"tenant-{i:04d}", weight=1.0 + (i % 3)) for i in range(n))


def run(hosts_n: int = 1000, jobs_n: int = 10_000, tenants_n: int = 100,
        policy: str = DEFAULT_POLICY, repeat: int = 3) -> dict[str, float | int | str]:
    """All figures; each timing is the best of ``repeat`` runs (5x that for the short ones),
    so that other load on the machine inflates them as little as possible."""
    hosts = cluster(hosts_n)
    jobs = queue(jobs_n, tenants_n)
    snap = Snapshot(hosts, tenants(tenants_n), jobs, policy=policy)

    plan_s = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = plan(snap)
        plan_s = min(plan_s, time.perf_counter() - t0)

    many = tenants(1000)
    order_jobs = queue(10_000, 1000, seed=11)
    cap = cluster_capacity(Placer(hosts, "first-fit", ()), ())
    drf_s = math.inf
    for _ in range(5 * repeat):
        t0 = time.perf_counter()
        order = drf_order(many, order_jobs, cap)
        drf_s = min(drf_s, time.perf_counter() - t0)

    gang = JobRequest("gang-64", "tenant-0000", gpus_per_host=8, hosts=64,
                      vcpus_per_host=64, memory_gib_per_host=512)
    gang_s = gang_plan_s = math.inf
    for _ in range(5 * repeat):
        placer = Placer(hosts, policy, workload_from_jobs(jobs))
        t0 = time.perf_counter()
        chosen = placer.find(gang, None)
        if chosen is None:
            raise RuntimeError("the 64-host gang did not fit the empty cluster")
        placer.commit(gang, chosen)
        gang_s = min(gang_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        gp = plan(Snapshot(hosts, tenants(1), (gang,), policy=policy))
        gang_plan_s = min(gang_plan_s, time.perf_counter() - t0)
        if len(gp.placements) != 1:
            raise RuntimeError("the 64-host gang was not placed")

    placed_gpus = sum(len(hp.gpu_indices) * hp.gpu_milli for x in p.placements for hp in x.hosts)
    return {
        "policy": policy,
        "hosts": hosts_n,
        "jobs": jobs_n,
        "tenants": tenants_n,
        "placed": len(p.placements),
        "pending": len(p.pending),
        "gpu_alloc_ratio": round(placed_gpus / (hosts_n * 8000), 4),
        "plan_s": round(plan_s, 3),
        "placements_per_s": round(len(p.placements) / plan_s, 1),
        "jobs_decided_per_s": round(jobs_n / plan_s, 1),
        "drf_order_ms": round(drf_s * 1000, 2),
        "drf_order_jobs": len(order),
        "gang64_ms": round(gang_s * 1000, 2),
        "gang64_plan_ms": round(gang_plan_s * 1000, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scheduler.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--policy", default=DEFAULT_POLICY)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per timing (3)")
    args = ap.parse_args(argv)
    if args.policy not in POLICIES:
        ap.error(f"--policy must be one of {', '.join(POLICIES)}")
    r = run(args.hosts, args.jobs, args.tenants, args.policy, max(1, args.repeat))
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        for k, v in r.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
