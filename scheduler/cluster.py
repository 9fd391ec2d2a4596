"""Mutable working copy of the cluster used while one plan (or one simulation) is computed.

The planner's inputs and outputs are frozen; this module is its scratch space. Hosts whose
free capacity is identical fall into one *class* (same topology, same GPU free vector, same
per-NUMA core and memory counts); a job is fitted once per class rather than once per host,
so a placement costs O(C) for C distinct host states instead of O(H) hosts.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from scheduler.model import WHOLE_GPU_MILLI, HostPlacement, HostState, JobRequest
from scheduler.topology import Topology, rank_name, ranked_sets, score_set, topology_of

UNHEALTHY = -1
# NIC-to-GPU distances close enough for GPUDirect RDMA, best first.
CLOSE_NIC_KINDS = ("PIX", "PXB")


@dataclass(slots=True)
class Fit:
    """How a job lands on one host (positions, not ids; turned into ids by `commit`)."""

    slots: tuple[int, ...]
    milli: int
    cores_from: tuple[tuple[int, int], ...]  # (numa position, core count)
    memory_from: tuple[tuple[int, int], ...]  # (numa position, GiB)
    local: bool
    worst_rank: int  # worst GPU-pair rank in the set (10**6 for < 2 GPUs)
    total_rank: int
    vfs_from: tuple[tuple[int, int], ...] = ()  # (NIC position, virtual functions)

    @property
    def link_kind(self) -> str:
        return "" if len(self.slots) < 2 else rank_name(self.worst_rank)


class Host:
    """Free capacity of one host, mutable."""

    __slots__ = (
        "close_nics",
        "cordoned",
        "cores",
        "cpu_total",
        "free",
        "free_vfs",
        "gpu_cap",
        "gpu_index",
        "group",
        "group_of",
        "idx",
        "images",
        "kvm",
        "mem",
        "mem_total",
        "models",
        "name",
        "nic_names",
        "no_passthrough",
        "numa_ids",
        "numa_pos",
        "shared",
        "shared_pinned",
        "slot_of",
        "topo",
    )

    def __init__(self, state: HostState, idx: int) -> None:
        self.name = state.name
        self.idx = idx
        self.group = state.group
        self.cordoned = state.cordoned
        self.kvm = state.kvm
        self.images = state.images
        self.topo: Topology = topology_of(state)
        self.gpu_index = tuple(g.index for g in state.gpus)
        self.slot_of = {g.index: i for i, g in enumerate(state.gpus)}
        self.models = tuple(g.model for g in state.gpus)
        self.free = [
            max(0, min(WHOLE_GPU_MILLI, g.free_milli)) if g.healthy else UNHEALTHY
            for g in state.gpus
        ]
        self.shared_pinned = tuple(g.shared for g in state.gpus)
        self.shared = [g.in_shared_mode for g in state.gpus]
        self.numa_ids = [n.node for n in state.numa]
        self.numa_pos = {n.node: i for i, n in enumerate(state.numa)}
        for g in state.gpus:  # a GPU on a NUMA node with no row still needs a position
            if g.numa_node not in self.numa_pos:
                self.numa_pos[g.numa_node] = len(self.numa_ids)
                self.numa_ids.append(g.numa_node)
        self.cores: list[list[int]] = [sorted(n.free_cores) for n in state.numa]
        self.mem: list[int] = [n.free_memory_gib for n in state.numa]
        while len(self.cores) < len(self.numa_ids):
            self.cores.append([])
            self.mem.append(0)
        self.gpu_cap = sum(WHOLE_GPU_MILLI for g in state.gpus if g.healthy)
        # IOMMU groups: a GPU sharing its group with other GPUs goes with all of them;
        # one whose group holds another kind of device is never passed through.
        self.no_passthrough = tuple(g.iommu_foreign for g in state.gpus)
        members: dict[int, list[int]] = {}
        for i, g in enumerate(state.gpus):
            if g.iommu_group >= 0:
                members.setdefault(g.iommu_group, []).append(i)
        self.group_of = tuple(
            tuple(members[g.iommu_group]) if g.iommu_group >= 0 else (i,)
            for i, g in enumerate(state.gpus)
        )
        # NICs: free virtual functions, and per GPU slot the NICs at PIX/PXB distance
        # (PIX first): GPUDirect RDMA needs the NIC behind the same PCIe switch.
        self.nic_names = tuple(n.name for n in state.nics)
        self.free_vfs = [n.free_vfs for n in state.nics]
        nic_pos = {n.name: i for i, n in enumerate(state.nics)}
        close: list[list[tuple[int, int]]] = [[] for _ in state.gpus]
        for gi, nic, kind in state.nic_links:
            s, p = self.slot_of.get(gi), nic_pos.get(nic)
            if s is not None and p is not None and kind.upper() in CLOSE_NIC_KINDS:
                close[s].append((CLOSE_NIC_KINDS.index(kind.upper()), p))
        self.close_nics = tuple(tuple(sorted(c)) for c in close)  # (kind rank, NIC position)
        self.cpu_total = sum(len(c) for c in self.cores)
        self.mem_total = sum(self.mem)

    # -- state -------------------------------------------------------------------------
    def key(self) -> tuple:
        return (
            self.topo.id,
            self.models,
            self.gpu_cap,
            self.cpu_total,
            self.mem_total,
            tuple(self.free),
            tuple(self.shared),
            tuple(len(c) for c in self.cores),
            tuple(self.mem),
            tuple(self.free_vfs),
            self.kvm,
            self.images,
        )

    def free_cores(self) -> int:
        return sum(len(c) for c in self.cores)

    def free_mem(self) -> int:
        return sum(self.mem)

    def free_gpu_milli(self) -> int:
        return sum(f for f in self.free if f > 0)

    def gpu_numa(self, slot: int) -> int:
        return self.numa_pos[self.topo.numa_of[slot]]

    # -- fitting -----------------------------------------------------------------------
    def fit(self, job: JobRequest, models: frozenset[str] | None) -> Fit | None:
        """Best way to put one host's share of ``job`` here, or None. O(C(g,k)) worst case,
        usually O(g) thanks to the memoised set ranking."""
        k = job.gpus_per_host
        vc = job.vcpus_per_host
        mem = job.memory_gib_per_host
        if (job.require_kvm and not self.kvm) or (job.image and job.image not in self.images):
            return None
        if vc > self.cpu_total or mem > self.mem_total:
            return None
        if vc and self.free_cores() < vc:
            return None
        if mem and self.free_mem() < mem:
            return None
        if k == 0:
            return self._fit_cpu_only(vc, mem)
        milli = job.milli_per_gpu
        free = self.free
        mdl = self.models
        if milli >= WHOLE_GPU_MILLI:
            eligible = tuple(
                i
                for i, f in enumerate(free)
                if f == WHOLE_GPU_MILLI
                and not self.shared[i]
                and not self.no_passthrough[i]
                and (models is None or mdl[i] in models)
            )
            if len(eligible) < k:
                return None
            groups = self.group_of
            vfs = job.needs_nic_vfs
            for slots in ranked_sets(self.topo, eligible, k):
                # VFIO passes whole IOMMU groups: the set holds every GPU of its groups
                if any(len(groups[s]) > 1 and not set(groups[s]) <= set(slots) for s in slots):
                    continue
                fit = self._with_cpu(slots, WHOLE_GPU_MILLI, vc, mem)
                if fit is None:
                    continue
                if vfs:
                    taken = self._vfs_for(slots)
                    if taken is None:
                        continue
                    fit.vfs_from = taken
                return fit
            return None
        # GPU share: best fit among GPUs already in shared mode, then idle GPUs.
        cands = [
            i
            for i, f in enumerate(free)
            if f >= milli and f > 0 and (models is None or mdl[i] in models)
        ]
        if len(cands) < k:
            return None
        cands.sort(key=lambda i: (free[i] == WHOLE_GPU_MILLI and not self.shared[i], free[i], i))
        return self._with_cpu(tuple(sorted(cands[:k])), milli, vc, mem)

    def _fit_cpu_only(self, vc: int, mem: int) -> Fit | None:
        # One NUMA node if any can hold it (the fullest that can); else the fewest nodes,
        # most free cores first, with memory on those same nodes in proportion to their
        # cores, so the guest's NUMA cells each hold both (never memory away from its vCPUs).
        best = None
        for p in range(len(self.cores)):
            nc = len(self.cores[p])
            if nc >= vc and self.mem[p] >= mem and (best is None or nc < len(self.cores[best])):
                best = p
        if best is not None:
            return Fit(
                (), 0, ((best, vc),) if vc else (), ((best, mem),) if mem else (), True, 10**6, 0
            )
        if vc <= 0:
            order = sorted(range(len(self.mem)), key=lambda p: -self.mem[p])
            mf = _take(order, self.mem, mem)
            return None if mf is None else Fit((), 0, (), mf, True, 10**6, 0)
        order = sorted(range(len(self.cores)), key=lambda p: -len(self.cores[p]))
        cf = _take(order, [len(c) for c in self.cores], vc)
        if cf is None:
            return None
        weights = {p: n for p, n in cf}
        mf = split_proportionally(weights, mem, self.mem)
        if mf is None:
            return None
        return Fit((), 0, cf, mf, True, 10**6, 0)

    def _with_cpu(self, slots: tuple[int, ...], milli: int, vc: int, mem: int) -> Fit | None:
        """Cores and memory on exactly the GPUs' NUMA nodes, in proportion to the GPUs on
        each (a 4-GPU job with GPUs on two nodes gets half its cores and half its memory on
        each). None when a node cannot give its part: a NUMA-true placement or none."""
        per_node: dict[int, int] = {}
        for s in slots:
            p = self.gpu_numa(s)
            per_node[p] = per_node.get(p, 0) + 1
        cf = split_proportionally(per_node, vc, [len(c) for c in self.cores])
        if cf is None:
            return None
        mf = split_proportionally(per_node, mem, self.mem)
        if mf is None:
            return None
        worst, total, _ = score_set(self.topo, slots)
        return Fit(slots, milli, cf, mf, True, worst, total)

    def _vfs_for(self, slots: tuple[int, ...]) -> tuple[tuple[int, int], ...] | None:
        """One free NIC virtual function at PIX/PXB distance for each GPU of the set that
        has such a NIC (the closest kind first, then a NIC this job has not used yet,
        then the NIC with most free). None when one of those GPUs finds its NICs' VFs all
        taken, or when no GPU of the set has a close NIC at all (no GPUDirect path)."""
        left = list(self.free_vfs)
        used: dict[int, int] = {}
        for s in slots:
            if not self.close_nics[s]:
                continue  # this GPU has no NIC behind its PCIe switch (e.g. HGX GPU1)
            best = None
            for kind, p in self.close_nics[s]:
                if left[p] <= 0:
                    continue
                key = (kind, p in used, -left[p], p)
                if best is None or key < best[0]:
                    best = (key, p)
            if best is None:
                return None
            p = best[1]
            left[p] -= 1
            used[p] = used.get(p, 0) + 1
        return tuple(sorted(used.items())) if used else None

    # -- mutation ----------------------------------------------------------------------
    def commit(self, fit: Fit) -> HostPlacement:
        for s in fit.slots:
            self.free[s] -= fit.milli
            if fit.milli < WHOLE_GPU_MILLI:
                self.shared[s] = True
        cores: list[int] = []
        numa_used: set[int] = set()
        for p, n in fit.cores_from:
            taken = self.cores[p][:n]
            del self.cores[p][:n]
            cores.extend(taken)
            numa_used.add(p)
        mem_by: list[tuple[int, int]] = []
        for p, n in fit.memory_from:
            self.mem[p] -= n
            mem_by.append((self.numa_ids[p], n))
            numa_used.add(p)
        for s in fit.slots:
            numa_used.add(self.gpu_numa(s))
        for p, n in fit.vfs_from:
            self.free_vfs[p] -= n
        return HostPlacement(
            host=self.name,
            gpu_indices=tuple(self.gpu_index[s] for s in fit.slots),
            gpu_milli=fit.milli if fit.slots else WHOLE_GPU_MILLI,
            cores=tuple(sorted(cores)),
            numa_nodes=tuple(sorted(self.numa_ids[p] for p in numa_used)),
            memory_gib=sum(n for _, n in fit.memory_from),
            memory_by_numa=tuple(sorted(mem_by)),
            nic_vfs=tuple((self.nic_names[p], n) for p, n in fit.vfs_from),
        )

    def release(self, hp: HostPlacement) -> None:
        """Give back what a placement holds (used for preemption and departures)."""
        for gi in hp.gpu_indices:
            s = self.slot_of.get(gi)
            if s is None or self.free[s] == UNHEALTHY:
                continue
            self.free[s] = min(WHOLE_GPU_MILLI, self.free[s] + hp.gpu_milli)
            if self.free[s] == WHOLE_GPU_MILLI and not self.shared_pinned[s]:
                self.shared[s] = False
        listed = [self.numa_pos[n] for n in hp.numa_nodes if n in self.numa_pos]
        for c in hp.cores:
            p = self._numa_of_core(c, listed)
            bisect.insort(self.cores[p], c)
        if hp.memory_by_numa:
            for n, gib in hp.memory_by_numa:
                if n in self.numa_pos:
                    self.mem[self.numa_pos[n]] += gib
        elif hp.memory_gib and self.mem:
            self.mem[listed[0] if listed else 0] += hp.memory_gib
        for name, n in hp.nic_vfs:
            if name in self.nic_names:
                self.free_vfs[self.nic_names.index(name)] += n
        self.cpu_total = max(self.cpu_total, self.free_cores())
        self.mem_total = max(self.mem_total, self.free_mem())

    def _numa_of_core(self, core: int, listed: list[int]) -> int:
        if len(listed) == 1:
            return listed[0]
        cands = listed or list(range(len(self.cores)))
        best, dist = cands[0], None
        for p in cands:
            for c in self.cores[p]:
                d = abs(c - core)
                if dist is None or d < dist:
                    best, dist = p, d
        return best

    def copy(self) -> Host:
        h = object.__new__(Host)
        for name in Host.__slots__:
            setattr(h, name, getattr(self, name))
        h.free = list(self.free)
        h.shared = list(self.shared)
        h.cores = [list(c) for c in self.cores]
        h.mem = list(self.mem)
        h.free_vfs = list(self.free_vfs)
        return h


def split_proportionally(
    weights: dict[int, int], need: int, avail: list[int]
) -> tuple[tuple[int, int], ...] | None:
    """Split ``need`` units over the positions in ``weights`` in proportion to the weights
    (largest remainder; a leftover unit goes to the position with the larger fraction, then
    the one with more room, then the lower position), or None when a position lacks the
    room for its part. O(n log n) for n positions."""
    if need <= 0:
        return ()
    total = sum(weights.values())
    parts = {p: need * w // total for p, w in weights.items()}
    if any(parts[p] > avail[p] for p in parts):
        return None
    left = need - sum(parts.values())
    order = sorted(weights, key=lambda p: (-(need * weights[p] % total), -avail[p], p))
    for p in order:
        if left == 0:
            break
        if parts[p] < avail[p]:
            parts[p] += 1
            left -= 1
    if left:
        return None
    return tuple((p, n) for p, n in sorted(parts.items()) if n > 0)


def _take(order: list[int], avail: list[int], need: int) -> tuple[tuple[int, int], ...] | None:
    """Take ``need`` units from positions in ``order``; None when they do not add up."""
    if need <= 0:
        return ()
    out = []
    for p in order:
        if need <= 0:
            break
        n = min(avail[p], need)
        if n > 0:
            out.append((p, n))
            need -= n
    return tuple(out) if need <= 0 else None


class Cluster:
    """All hosts plus an index from host-state class to the (sorted) hosts in it."""

    def __init__(self, hosts: tuple[HostState, ...] | list[HostState]) -> None:
        self.hosts = [Host(h, i) for i, h in enumerate(hosts)]
        self.by_name = {h.name: h for h in self.hosts}
        # class id -> sorted member host indices (only classes with members)
        self.classes: dict[int, list[int]] = {}
        self._cid_of_key: dict[tuple, int] = {}
        self._cid_of: list[int | None] = [None] * len(self.hosts)
        self.epoch = 0  # bumped whenever capacity is given back
        for h in self.hosts:
            self._index(h)
        self.has_groups = any(h.group for h in self.hosts)

    def _index(self, h: Host) -> None:
        if h.cordoned:
            return
        k = h.key()
        cid = self._cid_of_key.get(k)
        if cid is None:
            cid = len(self._cid_of_key)
            self._cid_of_key[k] = cid
        self._cid_of[h.idx] = cid
        lst = self.classes.get(cid)
        if lst is None:
            self.classes[cid] = [h.idx]
        else:
            bisect.insort(lst, h.idx)

    def _unindex(self, h: Host) -> None:
        cid = self._cid_of[h.idx]
        if cid is None:
            return
        lst = self.classes[cid]
        i = bisect.bisect_left(lst, h.idx)
        del lst[i]
        if not lst:
            del self.classes[cid]
        self._cid_of[h.idx] = None

    def commit(self, h: Host, fit: Fit) -> HostPlacement:
        self._unindex(h)
        hp = h.commit(fit)
        self._index(h)
        return hp

    def release(self, hp: HostPlacement) -> None:
        h = self.by_name.get(hp.host)
        if h is None:
            return
        self._unindex(h)
        h.release(hp)
        self._index(h)
        self.epoch += 1
