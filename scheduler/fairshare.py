"""Weighted Dominant Resource Fairness (Ghodsi et al., NSDI 2011) by progressive filling.

A tenant's dominant share is max over resources of used / capacity-it-can-use, divided by
its weight; the next offer goes to the tenant with the lowest. Resources are GPU (in milli:
whole GPUs count 1000 each, shares their milli), vCPUs and memory. "Capacity it can use" is
the cluster's capacity capped by the tenant's own limits, so a tenant limited to 8 GPUs
that holds 8 has a GPU share of 1.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence

from scheduler.model import (
    GPU_MILLI,
    GPUS,
    MEMORY_GIB,
    VCPUS,
    WHOLE_GPU_MILLI,
    JobRequest,
    TenantState,
)

Vector = tuple[float, float, float]  # (gpu milli, vcpus, memory GiB)
RESOURCE_NAMES = ("gpu_milli", "vcpus", "memory_gib")


def demand(job: JobRequest) -> Vector:
    """A job's demand vector over all its hosts. O(1)."""
    n = job.hosts
    return (
        float(job.gpus_per_host * job.milli_per_gpu * n),
        float(job.vcpus_per_host * n),
        float(job.memory_gib_per_host * n),
    )


def usage_vector(usage: Mapping[str, float]) -> Vector:
    return (
        usage.get(GPUS, 0.0) * WHOLE_GPU_MILLI + usage.get(GPU_MILLI, 0.0),
        usage.get(VCPUS, 0.0),
        usage.get(MEMORY_GIB, 0.0),
    )


def tenant_capacity(tenant: TenantState, cluster: Vector) -> Vector:
    """The cluster capacity capped by the tenant's limits. O(q)."""
    gq, mq = tenant.quota(GPUS), tenant.quota(GPU_MILLI)
    # A ``gpus`` row caps the GPU dimension (plus the share limit when there is one); a
    # tenant with only a share limit may still take any number of whole GPUs.
    gpu_lim = math.inf
    if gq is not None:
        gpu_lim = gq.limit * WHOLE_GPU_MILLI + (mq.limit if mq is not None else 0.0)
    cq, memq = tenant.quota(VCPUS), tenant.quota(MEMORY_GIB)
    return (
        min(cluster[0], gpu_lim),
        min(cluster[1], cq.limit if cq else math.inf),
        min(cluster[2], memq.limit if memq else math.inf),
    )


def dominant_share(used: Vector, capacity: Vector, weight: float = 1.0) -> float:
    """max_r used_r / capacity_r, divided by the weight. O(1)."""
    s = 0.0
    for u, c in zip(used, capacity, strict=True):
        if u > 0:
            s = max(s, u / c) if c > 0 else math.inf
    return s / weight if weight > 0 else math.inf


def _inverse(capacity: Vector, weight: float) -> Vector:
    """1 / (capacity * weight) per resource (inf where the tenant can use none of it)."""
    return tuple(  # type: ignore[return-value]
        1.0 / (c * weight) if c > 0 and weight > 0 else math.inf for c in capacity
    )


def _share(u: Sequence[float], inv: Vector) -> float:
    s = 0.0
    for x, i in zip(u, inv, strict=True):
        if x > 0:
            v = x * i
            if v > s:
                s = v
    return s


class FairShare:
    """Progressive-filling state: per tenant used vector and (cached) weighted dominant
    share, and a heap of tenants that still have work to offer. `charge` is O(1), `share`
    O(1), pop/push O(log T)."""

    def __init__(self, tenants: Iterable[TenantState], cluster: Vector,
                 usage: Mapping[str, Mapping[str, float]]) -> None:
        self.tenants = {t.name: t for t in tenants}
        self.capacity = {n: tenant_capacity(t, cluster) for n, t in self.tenants.items()}
        self._inv = {n: _inverse(self.capacity[n], t.weight) for n, t in self.tenants.items()}
        self.used: dict[str, list[float]] = {
            n: list(usage_vector(usage.get(n, {}))) for n in self.tenants
        }
        self._share = {n: _share(self.used[n], self._inv[n]) for n in self.tenants}
        self._heap: list[tuple[float, str]] = []

    def share(self, name: str) -> float:
        return self._share[name]

    def charge(self, name: str, vec: Sequence[float], sign: float = 1.0) -> None:
        u = self.used[name]
        for i in range(3):
            u[i] += sign * vec[i]
        self._share[name] = _share(u, self._inv[name])

    def push(self, name: str) -> None:
        heapq.heappush(self._heap, (self._share[name], name))

    def pop(self) -> str | None:
        """The tenant with the lowest current share. An entry whose share changed while it
        waited (its work was preempted) is re-filed first; each tenant is in the heap at
        most once, so this stays O(log T) amortised."""
        while self._heap:
            share, name = heapq.heappop(self._heap)
            if share == self._share[name]:
                return name
            heapq.heappush(self._heap, (self._share[name], name))
        return None

    def shares(self) -> dict[str, float]:
        return dict(self._share)


def drf_order(
    tenants: Sequence[TenantState],
    jobs: Sequence[JobRequest],
    capacity: Vector,
    usage: Mapping[str, Mapping[str, float]] | None = None,
) -> list[str]:
    """The order in which progressive filling offers jobs, against the aggregate capacity
    only (no host packing): repeatedly the lowest weighted dominant share's next job, by
    priority then submit time; a job that no longer fits in what is left is skipped and its
    tenant keeps its turn for the next one. O(J log J + J log T) for J jobs, T tenants."""
    usage = usage or {}
    by_name = {t.name: t for t in tenants}
    queues: dict[str, list[JobRequest]] = {}
    for j in jobs:
        if j.tenant in by_name:
            queues.setdefault(j.tenant, []).append(j)
    for q in queues.values():
        q.sort(key=lambda j: (-j.priority, j.submit_time, j.id))
    free0, free1, free2 = (
        capacity[i] - sum(usage_vector(u)[i] for u in usage.values()) for i in range(3)
    )
    inv = {n: _inverse(tenant_capacity(by_name[n], capacity), by_name[n].weight) for n in queues}
    used = {n: list(usage_vector(usage.get(n, {}))) for n in queues}
    demands = {n: [demand(j) for j in q] for n, q in queues.items()}
    pos = dict.fromkeys(queues, 0)
    heap = [(_share(used[n], inv[n]), n) for n in queues]
    heapq.heapify(heap)
    order: list[str] = []
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, name = pop(heap)
        i = pos[name]
        d0, d1, d2 = demands[name][i]
        pos[name] = i + 1
        u = used[name]
        if d0 <= free0 and d1 <= free1 and d2 <= free2:
            order.append(queues[name][i].id)
            free0 -= d0
            free1 -= d1
            free2 -= d2
            u[0] += d0
            u[1] += d1
            u[2] += d2
        if i + 1 < len(demands[name]):
            i0, i1, i2 = inv[name]
            push(heap, (max(u[0] * i0 if u[0] > 0 else 0.0, u[1] * i1 if u[1] > 0 else 0.0,
                            u[2] * i2 if u[2] > 0 else 0.0), name))
    return order
