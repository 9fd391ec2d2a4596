"""Reclaiming borrowed capacity for a tenant below its guarantee.

Victims are running, preemptible jobs of *other* tenants whose loss keeps their tenant at
or above its own guarantee on the *contested* resources, those the preemptor is short of
(`shortfall`): only work borrowed on them goes. A tenant below its memory guarantee still
lends the GPUs it borrows to a tenant short of GPUs. They are tried lowest priority
first, newest first within a priority; per host the shortest prefix of that order that
makes room is taken and then pruned of any victim not actually needed; the host (or, for
a gang, the hosts) needing the fewest victims wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scheduler.cluster import Cluster, Fit, Host
from scheduler.model import (
    GPU_MILLI,
    GPUS,
    MEMORY_GIB,
    VCPUS,
    WHOLE_GPU_MILLI,
    JobRequest,
    RunningJob,
    TenantState,
)
from scheduler.placement import Placer
from scheduler.quotas import Usage, add, job_request, may_lose, placement_usage


@dataclass(slots=True)
class VictimChoice:
    victims: list[RunningJob]
    hosts: list[str]
    resources: frozenset[str] = frozenset()


def shortfall(job: JobRequest, models: frozenset[str] | None, cluster: Cluster) -> frozenset[str]:
    """The resources ``job`` is short of on ``cluster`` (its free capacity), in quota keys.

    GPUs (``gpus`` or ``gpu_milli``) when fewer than ``job.hosts`` open hosts have the
    GPUs free; ``vcpus`` / ``memory_gib`` when fewer have the cores / the memory free.
    When no single resource is short (the job fails on how they combine: NUMA, links),
    everything the job asks for is contested. O(H * G)."""
    n = job.hosts
    hosts = [h for h in cluster.hosts if not h.cordoned]
    out: set[str] = set()
    if job.gpus_per_host:
        share, milli, k = job.is_share, job.milli_per_gpu, job.gpus_per_host
        with_gpus = sum(
            1
            for h in hosts
            if sum(
                1
                for i, f in enumerate(h.free)
                if (models is None or h.models[i] in models)
                and (f >= milli if share else (f == WHOLE_GPU_MILLI and not h.shared[i]))
            ) >= k
        )
        if with_gpus < n:
            out.add(GPU_MILLI if share else GPUS)
    if job.vcpus_per_host and sum(1 for h in hosts if h.free_cores() >= job.vcpus_per_host) < n:
        out.add(VCPUS)
    if job.memory_gib_per_host and sum(
        1 for h in hosts if h.free_mem() >= job.memory_gib_per_host
    ) < n:
        out.add(MEMORY_GIB)
    if not out:
        out = {k for k, v in job_request(job).items() if v > 0}
    return frozenset(out)


def _victim_order(v: RunningJob) -> tuple:
    return (v.priority, -v.submit_time, v.id)


def _fits_after(h: Host, victims: Sequence[RunningJob], job: JobRequest,
                models: frozenset[str] | None) -> Fit | None:
    c = h.copy()
    for v in victims:
        for hp in v.placement:
            if hp.host == h.name:
                c.release(hp)
    return c.fit(job, models)


def choose_victims(
    placer: Placer,
    job: JobRequest,
    models: frozenset[str] | None,
    tenants: Mapping[str, TenantState],
    usage: Mapping[str, Usage],
    running: Sequence[RunningJob],
    model_of: Mapping[tuple[str, int], str],
) -> VictimChoice | None:
    """The least set of borrowed, preemptible jobs whose removal lets ``job`` fit, or None.
    "Borrowed" is judged on the resources ``job`` is short of (`shortfall`).

    O(H_v * V^2 * fit) for H_v hosts holding candidate victims and V victims per host.
    """
    contested = shortfall(job, models, placer.cluster)
    lost_of = {v.id: placement_usage(v.placement, model_of) for v in running}

    def allowed(vs: Sequence[RunningJob]) -> bool:
        taken: dict[str, Usage] = {}
        for v in vs:
            add(taken.setdefault(v.tenant, {}), lost_of[v.id])
        return all(
            t in tenants and may_lose(tenants[t], usage.get(t, {}), lost, contested)
            for t, lost in taken.items()
        )

    cands = sorted(
        (
            v
            for v in running
            if v.preemptible and v.tenant != job.tenant and allowed([v])
        ),
        key=_victim_order,
    )
    if not cands:
        return None
    by_host: dict[str, list[RunningJob]] = {}
    for v in cands:
        for hp in v.placement:
            lst = by_host.setdefault(hp.host, [])
            if not lst or lst[-1] is not v:
                lst.append(v)
    cluster = placer.cluster
    options: list[tuple[tuple, str, list[RunningJob]]] = []
    for name, vs in by_host.items():
        h = cluster.by_name.get(name)
        if h is None or h.cordoned:
            continue
        chosen: list[RunningJob] = []
        ok = False
        for v in vs:
            if not allowed([*chosen, v]):
                continue
            chosen.append(v)
            if _fits_after(h, chosen, job, models) is not None:
                ok = True
                break
        if not ok:
            continue
        for v in reversed(list(chosen)):  # drop victims the job does not need
            rest = [x for x in chosen if x is not v]
            if _fits_after(h, rest, job, models) is not None:
                chosen = rest
        cost = (len(chosen), sorted((x.priority, -x.submit_time) for x in chosen), h.idx)
        options.append((cost, name, chosen))
    need = job.hosts
    free_hosts: list[str] = []
    if need > 1:
        taken_names = {name for _, name, _ in options}
        for c in placer.candidates(job, models):
            for i in cluster.classes[c.cid]:
                if cluster.hosts[i].name not in taken_names:
                    free_hosts.append(cluster.hosts[i].name)
    options.sort(key=lambda o: o[0])
    if len(free_hosts) >= need or len(free_hosts) + len(options) < need:
        return None
    picked = options[: need - len(free_hosts)]
    victims: list[RunningJob] = []
    for _, _, vs in picked:
        for v in vs:
            if v not in victims:
                victims.append(v)
    if not victims or not allowed(victims):
        return None
    return VictimChoice(victims, free_hosts + [name for _, name, _ in picked], contested)
