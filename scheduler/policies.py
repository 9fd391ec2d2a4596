"""Host choice: first-fit, best-fit and fragmentation gradient descent (FGD).

FGD (Weng et al., "Beware of Fragmentation", USENIX ATC 2023) measures, for a node n and
a task m of the typical mix M, the free GPU capacity of n that m cannot use:

* m cannot run on n at all (too few vCPUs, memory, or suitable GPUs), or m asks for no GPU:
  every free GPU milli on n is a fragment for m;
* otherwise the free milli of each GPU whose free part is smaller than m's per-GPU demand
  (``min(d_m, 1)``) -- e.g. a half-used GPU for a whole-GPU task, or a GPU of a model m
  does not accept.

F_n(M) = sum_m p_m F_n(m). FGD places a task where F grows least (the "gradient"); the
cluster's fragmentation rate is sum_n F_n(M) / sum_n free GPU milli.

``fgd-strand`` (the default) changes two things, both measured on the Alibaba trace
(docs/scheduler.md, "Policy comparison"):

* whole sets: a k-GPU task can use only whole sets of k free GPUs, so of n free whole
  GPUs k * floor(n / k) are usable to it and the rest are fragments (FGD counts all n
  as usable once n >= k); the same for k = 1, so it only changes multi-GPU classes;
* stranding tie-breaks among equal gradients: a GPU task goes to the host left with the
  fewest free vCPUs, then the least free memory (best-fit on the resources beside the
  GPUs, so CPU-rich hosts stay whole for CPU-heavy tasks); CPU-only work goes first to
  hosts with no free GPU, then to the fullest CPU.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence

from scheduler.cluster import Fit, Host
from scheduler.model import (
    WHOLE_GPU_MILLI,
    HostState,
    JobRequest,
    WorkloadClass,
)

FIRST_FIT = "first-fit"
BEST_FIT = "best-fit"
FGD = "fgd"
FGD_STRAND = "fgd-strand"
POLICIES = (FIRST_FIT, BEST_FIT, FGD, FGD_STRAND)
_FGD_FAMILY = (FGD, FGD_STRAND)


def workload_from_jobs(
    jobs: Iterable[JobRequest], top: int | None = None
) -> tuple[WorkloadClass, ...]:
    """The job mix: every per-host job shape with its share of the jobs as weight (or only
    the ``top`` most common), weights summing to 1. O(J + S log S) for J jobs and S
    distinct shapes."""
    counts: Counter[tuple[int, int, int, int, tuple[str, ...]]] = Counter()
    for j in jobs:
        milli = j.milli_per_gpu if j.gpus_per_host else 0
        counts[(j.gpus_per_host, milli, j.vcpus_per_host, j.memory_gib_per_host, j.gpu_models)] += (
            j.hosts
        )
    common = counts.most_common(top)
    total = sum(n for _, n in common) or 1
    return tuple(
        WorkloadClass(gpus=k, gpu_milli=m, vcpus=v, memory_gib=g, gpu_models=mods, weight=n / total)
        for (k, m, v, g, mods), n in common
    )


GpuKey = tuple[tuple[str, bool, int], ...]  # sorted (model, shared mode, free milli) per GPU


class Fragmentation:
    """F_n(M) for node states, memoised. A node state is reduced to its GPU free vector and
    the *level* of its free vCPUs and memory among the thresholds the mix cares about, so
    nodes that differ only in unused CPU headroom share one entry.

    F_n(M) = W * free - sum over tasks m that fit n's vCPUs and memory of
    p_m * usable_n(m), where usable_n(m) is the free milli m can use on n (0 when n lacks
    the GPUs m needs). Tasks with equal GPU demand share one usable_n, memoised per GPU
    vector, so an entry costs O(D * g + |M|) for D distinct GPU demands; lookups O(g).

    ``whole_sets``: a k-GPU whole-GPU task can use k * floor(n / k) of n free whole GPUs
    (``fgd-strand``); off, all n once n >= k (FGD as published)."""

    def __init__(self, workload: Sequence[WorkloadClass], whole_sets: bool = False) -> None:
        self.whole_sets = whole_sets
        self.workload = tuple(w for w in workload if w.weight > 0)
        self.weight = sum(w.weight for w in self.workload)
        self.cpu_levels = sorted({w.vcpus for w in self.workload})
        self.mem_levels = sorted({w.memory_gib for w in self.workload})
        groups: dict[tuple[int, int, tuple[str, ...]], list[tuple[int, int, float]]] = {}
        for w in self.workload:
            if w.gpus == 0:
                continue  # a CPU-only task uses no GPU: all free GPU is a fragment to it
            key = (w.gpus, min(w.gpu_milli, WHOLE_GPU_MILLI), w.gpu_models)
            groups.setdefault(key, []).append((w.vcpus, w.memory_gib, w.weight))
        self.groups = tuple(groups.items())
        self._memo: dict[tuple[GpuKey, int, int], float] = {}
        self._usable: dict[tuple[GpuKey, int], int] = {}

    def of_vector(self, gpus: GpuKey, cpu: int, mem: int) -> float:
        key = (
            gpus,
            bisect.bisect_right(self.cpu_levels, cpu),
            bisect.bisect_right(self.mem_levels, mem),
        )
        v = self._memo.get(key)
        if v is None:
            v = self._compute(gpus, cpu, mem)
            self._memo[key] = v
        return v

    def usable(self, gpus: GpuKey, g: int) -> int:
        """Free milli of the GPU vector that tasks of demand group ``g`` can use."""
        key = (gpus, g)
        u = self._usable.get(key)
        if u is None:
            (count, need, models), _ = self.groups[g]
            whole = need >= WHOLE_GPU_MILLI
            n = 0
            usable = 0
            for model, shared, f in gpus:
                if f <= 0:
                    continue
                if (not models or model in models) and (
                    f == WHOLE_GPU_MILLI and not shared if whole else f >= need
                ):
                    n += 1
                    usable += f
            if whole and self.whole_sets:
                u = n // count * count * WHOLE_GPU_MILLI
            else:
                u = usable if n >= count else 0
            self._usable[key] = u
        return u

    def _compute(self, gpus: GpuKey, cpu: int, mem: int) -> float:
        total = sum(f for _, _, f in gpus if f > 0)
        if total == 0:
            return 0.0
        frag = self.weight * total
        for g, (_, members) in enumerate(self.groups):
            fits = 0.0
            for vcpus, gib, weight in members:
                if cpu >= vcpus and mem >= gib:
                    fits += weight
            if fits:
                u = self.usable(gpus, g)
                if u:
                    frag -= fits * u
        return frag

    def of_host(self, h: Host) -> float:
        return self.of_vector(_gpu_key(h.models, h.shared, h.free), h.free_cores(), h.free_mem())

    def after(self, h: Host, fit: Fit) -> float:
        free = list(h.free)
        shared = list(h.shared)
        for s in fit.slots:
            free[s] -= fit.milli
            if fit.milli < WHOLE_GPU_MILLI:
                shared[s] = True
        cpu = h.free_cores() - sum(n for _, n in fit.cores_from)
        mem = h.free_mem() - sum(n for _, n in fit.memory_from)
        return self.of_vector(_gpu_key(h.models, shared, free), cpu, mem)


def _gpu_key(models: Sequence[str], shared: Sequence[bool], free: Sequence[int]) -> GpuKey:
    return tuple(sorted(zip(models, shared, free, strict=True)))


class Scorer:
    """Scores a (host, fit) pair for a policy; lower is better. O(1) for first-/best-fit,
    O(g log g) (memo hit) for FGD."""

    def __init__(self, policy: str, workload: Sequence[WorkloadClass]) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.policy = policy
        self.frag = (
            Fragmentation(workload, whole_sets=policy == FGD_STRAND)
            if policy in _FGD_FAMILY
            else None
        )

    @property
    def picks_share_gpu(self) -> bool:
        """FGD chooses the GPU a share goes on by the same gradient as the node."""
        return self.frag is not None

    def score(self, h: Host, fit: Fit) -> tuple[float, ...]:
        if self.policy == FIRST_FIT:
            return (float(h.idx),)
        if self.policy == BEST_FIT:
            # the textbook measure: least GPU left on the node, then least CPU
            gpu_left = h.free_gpu_milli() - fit.milli * len(fit.slots)
            cpu_left = h.free_cores() - sum(n for _, n in fit.cores_from)
            return (float(gpu_left), float(cpu_left))
        assert self.frag is not None
        # Rounded so that equal gradients tie exactly.
        delta = round(self.frag.after(h, fit) - self.frag.of_host(h), 6)
        if self.policy == FGD:
            return (delta,)  # as published: ties go by host order
        return (delta, *_stranding(h, fit))


def _stranding(h: Host, fit: Fit) -> tuple[float, ...]:
    """Tie-breaks of ``fgd-strand`` among equal gradients. O(n) for n NUMA nodes."""
    if fit.slots:
        # GPU work: the fewest free vCPUs left, then the least free memory
        return (
            float(h.free_cores() - sum(n for _, n in fit.cores_from)),
            float(h.free_mem() - sum(n for _, n in fit.memory_from)),
        )
    # CPU-only work: hosts without free GPU first, then the fullest CPU
    return (float(h.free_gpu_milli()), float(h.free_cores()))


def fragmentation_rate(
    hosts: Iterable[HostState], workload: Sequence[WorkloadClass] | Sequence[JobRequest]
) -> float:
    """Share of the free GPU capacity of uncordoned hosts that the typical mix cannot use
    (FGD definition), in [0, 1]. ``workload`` is either `WorkloadClass` rows or jobs whose
    shapes make the mix. O(H * g) with a memo over identical host states."""
    classes: Sequence[WorkloadClass]
    if workload and isinstance(workload[0], JobRequest):
        classes = workload_from_jobs(workload)  # type: ignore[arg-type]
    else:
        classes = workload  # type: ignore[assignment]
    frag = Fragmentation(classes)
    total_frag = 0.0
    total_free = 0
    for hs in hosts:
        if hs.cordoned:
            continue
        h = Host(hs, 0)
        total_free += h.free_gpu_milli()
        total_frag += frag.of_host(h)
    return total_frag / total_free if total_free else 0.0


def fragmentation_of_cluster(hosts: Iterable[Host], frag: Fragmentation) -> float:
    """`fragmentation_rate` over working hosts (used by the simulator)."""
    total_frag = 0.0
    total_free = 0
    for h in hosts:
        if h.cordoned:
            continue
        total_free += h.free_gpu_milli()
        total_frag += frag.of_host(h)
    return total_frag / total_free if total_free else 0.0
