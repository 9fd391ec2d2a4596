"""A fleet-sized cluster for the scheduling-cycle benchmark (``manage.py bench_cycle``).

Hosts are registered through the agent's own path (``do_register_host`` with the
inventory a simulated host of the demo's kinds reports), so the snapshot reads exactly
what a real fleet would give it; tenants and the queue are written in bulk with the
history seeder's shapes (the Alibaba trace's job mix).
"""

from __future__ import annotations

import random
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

import scheduler
from console.core.actions.inventory import do_register_host
from console.core.choices import JobState
from console.core.history import seed as history
from console.core.models import Cluster, Gpu, Host, Job, Tenant
from console.core.planning import acquire_leader_lock, commit_plan
from console.core.snapshot import build_snapshot_context
from coupler_demo.profiles import inventory_for

FLEET_CLUSTER = "bench-fleet"
# 8-GPU kinds of the demo (DGX A100, HGX H100), alternated.
FLEET_KINDS = ("dgx_a100", "hgx_h100")


def register_fleet(hosts: int) -> int:
    """Register hosts ``fleet-0001`` … up to ``hosts``; returns how many were added."""
    cluster, _ = Cluster.objects.get_or_create(
        slug=FLEET_CLUSTER, defaults={"name": "Benchmark fleet"})
    have = Host.objects.filter(cluster=cluster).count()
    for i in range(have, hosts):
        name = f"fleet-{i + 1:04d}"
        kind = FLEET_KINDS[i % len(FLEET_KINDS)]
        do_register_host(cluster=cluster, name=name, actor="bench_cycle", simulated=True,
                         inventory=inventory_for(kind, name, group=f"leaf-{i // 32:03d}",
                                                 index=i))
    return max(hosts - have, 0)


def queue_jobs(jobs: int, tenants: int, seed: int = 1) -> int:
    """Top the queue up to ``jobs`` QUEUED jobs spread over at least ``tenants`` tenants
    (Zipf-like shares, shapes from the trace's mix); returns how many were added."""
    missing = max(tenants - Tenant.objects.count(), 0)
    if missing:
        history.create_tenants(missing)
    queued = Job.objects.filter(state=JobState.QUEUED).count()
    count = max(jobs - queued, 0)
    if not count:
        return 0
    now = datetime.now(UTC)
    rng = random.Random(seed)
    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    gpu_models = sorted(set(Gpu.objects.values_list("model", flat=True)))
    seeder = history._History(rng=rng, tenant_ids=tenant_ids, heavy=None,
                              gpu_models=gpu_models, now=now)
    with transaction.atomic():
        first = history.reserve_ids(Job, count)
        history._write_jobs(seeder, first, count, start=now - timedelta(minutes=10), end=now,
                            state_of=lambda _rng: JobState.QUEUED)
    return count


@dataclass
class CycleFigures:
    hosts: int
    gpus: int
    queued: int
    finished: int
    snapshot_s: float = 0.0
    plan_s: float = 0.0
    commit_s: float = 0.0
    placed: int = 0
    queries: int = 0
    peak_mib: float = 0.0
    runs: list[dict] = field(default_factory=list)

    @property
    def cycle_s(self) -> float:
        return self.snapshot_s + self.plan_s + self.commit_s


def measure_cycle(repeat: int = 3) -> CycleFigures:
    """Run the leader's whole cycle (snapshot → plan → commit) ``repeat`` times, each
    rolled back so every run starts from the same queue; report the fastest run (the
    machine is shared) with its peak Python memory (tracemalloc) and query count."""
    figures = CycleFigures(
        hosts=Host.objects.count(),
        gpus=Gpu.objects.count(),
        queued=Job.objects.filter(state=JobState.QUEUED).count(),
        finished=Job.objects.filter(state__in=(JobState.SUCCEEDED, JobState.FAILED,
                                               JobState.CANCELLED)).count(),
    )
    best: dict | None = None
    for _ in range(repeat):
        run = one_cycle()
        figures.runs.append(run)
        if best is None or run["cycle_s"] < best["cycle_s"]:
            best = run
    assert best is not None
    figures.snapshot_s, figures.plan_s, figures.commit_s = (
        best["snapshot_s"], best["plan_s"], best["commit_s"])
    figures.placed, figures.queries = best["placed"], best["queries"]
    figures.peak_mib = one_cycle(trace_memory=True)["peak_mib"]
    return figures


class _Rollback(Exception):
    pass


def one_cycle(*, trace_memory: bool = False, clock=time.perf_counter) -> dict:
    """One rolled-back cycle, each phase timed by ``clock`` (wall seconds by default;
    ``time.process_time`` for this process's CPU). Timed without tracemalloc (which
    slows Python several times); ``trace_memory`` runs it under tracemalloc for the peak."""
    run: dict = {}
    counter = _QueryCounter()
    if trace_memory:
        tracemalloc.start()
    try:
        with connection.execute_wrapper(counter), transaction.atomic():
            acquire_leader_lock(wait=True)
            t0 = clock()
            context = build_snapshot_context()
            t1 = clock()
            plan = scheduler.plan(context.snapshot)
            t2 = clock()
            report = commit_plan(plan, context)
            t3 = clock()
            run.update(snapshot_s=t1 - t0, plan_s=t2 - t1, commit_s=t3 - t2,
                       cycle_s=t3 - t0, placed=len(report.placed))
            raise _Rollback  # leave the queue as it was for the next run
    except _Rollback:
        pass
    finally:
        if trace_memory:
            run["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    run["queries"] = counter.count
    return run


class _QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)
