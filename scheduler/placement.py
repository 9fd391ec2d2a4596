"""Choosing hosts (and GPUs, cores, memory inside them) for one job, gangs included.

Order of preference for a host: the interconnect tier of the best GPU set the job can get
there (a spread-out set only when no host offers better), then whether its cores and
memory can all come from the GPUs' NUMA nodes, then the policy's score (first-fit,
best-fit or FGD), then the finer link score, then host order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.cluster import Cluster, Fit, Host
from scheduler.model import (
    WHOLE_GPU_MILLI,
    HostState,
    JobRequest,
    Placement,
    WorkloadClass,
)
from scheduler.policies import Scorer
from scheduler.topology import link_tier

Shape = tuple[int, int, int, int, frozenset[str] | None, bool, bool, str]
_MISSING = object()


def shape_of(job: JobRequest, models: frozenset[str] | None) -> Shape:
    milli = job.milli_per_gpu if job.gpus_per_host else 0
    return (job.gpus_per_host, milli, job.vcpus_per_host, job.memory_gib_per_host, models,
            job.needs_nic_vfs, job.require_kvm, job.image)


@dataclass(slots=True)
class _Cand:
    rank: tuple
    cid: int
    fit: Fit


class Placer:
    """Finds and commits placements on a `Cluster`.

    Per job: O(C) class look-ups for C distinct host states (each class is fitted and scored
    once per job shape and cached, since a class's state never changes), plus
    O(n log C) to pick n hosts of a gang. A shape that failed is not retried until some
    capacity is given back.
    """

    def __init__(
        self, hosts: Sequence[HostState], policy: str, workload: Sequence[WorkloadClass]
    ) -> None:
        self.cluster = Cluster(tuple(hosts))
        self.scorer = Scorer(policy, workload)
        self.policy = policy
        # job shape -> class id -> (fit, rank) or None; a class's state never changes
        self._cache: dict[Shape, dict[int, tuple[Fit, tuple] | None]] = {}
        self._failed: dict[tuple[Shape, int, str], int] = {}

    def class_candidate(self, cid: int, job: JobRequest, shape: Shape) -> tuple[Fit, tuple] | None:
        per_shape = self._cache.setdefault(shape, {})
        if cid in per_shape:
            return per_shape[cid]
        rep = self.cluster.hosts[self.cluster.classes[cid][0]]
        fit = rep.fit(job, shape[4])
        out = None
        if fit is not None:
            tier = link_tier(fit.worst_rank) if len(fit.slots) >= 2 else 0
            if self.policy == "first-fit":
                score: tuple[float, ...] = (0.0,)
            elif job.is_share and job.gpus_per_host == 1 and self.scorer.picks_share_gpu:
                fit, score = self._best_share_gpu(rep, job, shape[4], fit)
            else:
                score = self.scorer.score(rep, fit)
            out = (fit, (-tier, not fit.local, score, -fit.total_rank))
        per_shape[cid] = out
        return out

    def _best_share_gpu(
        self, h: Host, job: JobRequest, models: frozenset[str] | None, fit: Fit
    ) -> tuple[Fit, tuple[float, ...]]:
        """The GPU of ``h`` a 1-GPU share goes on: the one whose use raises the node's
        fragmentation least (FGD's own GPU choice), one try per distinct GPU state."""
        milli = job.milli_per_gpu
        best, best_score = fit, self.scorer.score(h, fit)
        seen = {(h.models[fit.slots[0]], h.shared[fit.slots[0]], h.free[fit.slots[0]])}
        for i, f in enumerate(h.free):
            key = (h.models[i], h.shared[i], f)
            if f < milli or key in seen or (models is not None and h.models[i] not in models):
                continue
            seen.add(key)
            other = h._with_cpu((i,), milli, job.vcpus_per_host, job.memory_gib_per_host)
            if other is None:
                continue
            score = self.scorer.score(h, other)
            if score < best_score:
                best, best_score = other, score
        return best, best_score

    def candidates(self, job: JobRequest, models: frozenset[str] | None) -> list[_Cand]:
        """Feasible classes, best first."""
        shape = shape_of(job, models)
        out = []
        classes = self.cluster.classes
        for cid, members in classes.items():
            c = self.class_candidate(cid, job, shape)
            if c is not None:
                fit, rank = c
                out.append(_Cand((*rank, members[0]), cid, fit))
        return out

    def find(
        self, job: JobRequest, models: frozenset[str] | None
    ) -> list[tuple[Host, Fit]] | None:
        """Hosts and fits for the whole job (all ``job.hosts`` of them), or None."""
        shape = shape_of(job, models)
        fkey = (shape, job.hosts, "one leaf" if job.single_leaf else "")
        if self._failed.get(fkey) == self.cluster.epoch:
            return None
        result: list[tuple[Host, Fit]] | None = None
        if job.hosts <= 1:
            # inlined arg-min over classes: this loop is the planner's hot path
            best: tuple | None = None
            best_fit: Fit | None = None
            best_host = -1
            cache = self._cache.setdefault(shape, {})
            for cid, members in self.cluster.classes.items():
                c = cache.get(cid, _MISSING)
                if c is _MISSING:
                    c = self.class_candidate(cid, job, shape)
                if c is None:
                    continue
                rank = c[1]  # type: ignore[index]
                first = members[0]
                if best is None or rank < best or (rank == best and first < best_host):
                    best, best_fit, best_host = rank, c[0], first  # type: ignore[index]
            if best_fit is not None:
                result = [(self.cluster.hosts[best_host], best_fit)]
        else:
            result = self._gang(job.hosts, self.candidates(job, models), job.single_leaf)
        if result is None:
            self._failed[fkey] = self.cluster.epoch
        return result

    def _gang(
        self, n: int, cands: list[_Cand], single_leaf: bool = False
    ) -> list[tuple[Host, Fit]] | None:
        """n distinct hosts: all under one leaf switch (``Host.group``) when one leaf has
        n that fit (the leaf whose n-th best host is best), else the fewest leaves (the
        leaves with the most fitting hosts first, each host once), unless ``single_leaf``.
        O(F log F) for F fitting hosts."""
        cands.sort(key=lambda c: c.rank)
        hosts = self.cluster.hosts
        if sum(len(self.cluster.classes[c.cid]) for c in cands) < n:
            return None
        expanded: list[tuple[tuple, Host, Fit]] = []
        if not self.cluster.has_groups and not single_leaf:
            for c in cands:
                for i in self.cluster.classes[c.cid]:
                    expanded.append(((*c.rank[:-1], i), hosts[i], c.fit))
                    if len(expanded) == n:
                        return [(h, f) for _, h, f in expanded]
            return None
        for c in cands:
            for i in self.cluster.classes[c.cid]:
                expanded.append(((*c.rank[:-1], i), hosts[i], c.fit))
        expanded.sort(key=lambda e: e[0])
        by_group: dict[str, list[tuple[tuple, Host, Fit]]] = {}
        for e in expanded:
            by_group.setdefault(e[1].group, []).append(e)
        whole = [(g, m[:n]) for g, m in by_group.items() if g and len(m) >= n]
        if whole:
            # the group whose n-th best host is best, then the group name
            _, chosen = min(whole, key=lambda gm: (gm[1][-1][0], gm[0]))
            return [(h, f) for _, h, f in chosen]
        if single_leaf:
            return None
        # fewest leaves: largest leaves first (a host without a group is a leaf of its
        # own), then the leaf with the better best host
        leaves: list[list[tuple[tuple, Host, Fit]]] = []
        for g, members in by_group.items():
            leaves.extend([members] if g else [[e] for e in members])
        leaves.sort(key=lambda m: (-len(m), m[0][0]))
        picked: list[tuple[tuple, Host, Fit]] = []
        for members in leaves:
            picked.extend(members[: n - len(picked)])
            if len(picked) == n:
                break
        return [(h, f) for _, h, f in picked]

    def commit(self, job: JobRequest, chosen: list[tuple[Host, Fit]]) -> Placement:
        hps = tuple(self.cluster.commit(h, f) for h, f in chosen)
        worst = min((f.worst_rank for _, f in chosen), default=10**6)
        multi = any(len(f.slots) >= 2 for _, f in chosen)
        link = next((f.link_kind for _, f in chosen if f.worst_rank == worst), "") if multi else ""
        groups = [h.group for h, _ in chosen]
        return Placement(
            job_id=job.id,
            hosts=hps,
            link_kind=link,
            local=all(f.local for _, f in chosen),
            score=float(sum(f.total_rank for _, f in chosen)),
            leaves=len({g for g in groups if g}) + sum(1 for g in groups if not g),
        )

    def place(self, job: JobRequest, models: frozenset[str] | None = None) -> Placement | None:
        chosen = self.find(job, models)
        if chosen is None:
            return None
        return self.commit(job, chosen)


def models_of(job: JobRequest) -> frozenset[str] | None:
    return frozenset(job.gpu_models) if job.gpu_models else None


def whole_gpu_capacity(hosts: Sequence[HostState]) -> int:
    return sum(WHOLE_GPU_MILLI for h in hosts for g in h.gpus if g.healthy)
