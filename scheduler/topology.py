"""GPU interconnect scoring inside one host.

Link kinds rank NV# > PIX > PXB > PHB > NODE > SYS; among NVLink pairs more links rank
higher (NV18 > NV12). A GPU set is scored by its worst pair first (a ring all-reduce runs at
the speed of its slowest hop), then by the sum over its pairs, then by how many NUMA nodes
it spans, then by how many CPU sockets.
"""

from __future__ import annotations

import itertools
import math
import re
from functools import lru_cache

from scheduler.model import HostState

_PCIE_RANK = {"PIX": 5, "PXB": 4, "PHB": 3, "NODE": 2, "SYS": 1}
NVLINK_TIER = 10
_NV_RE = re.compile(r"^NV(\d+)$")
# Above this many combinations a greedy search replaces full enumeration.
_MAX_COMBINATIONS = 4000


def link_rank(kind: str) -> int:
    """Numeric quality of a link kind; higher is better. NV# ranks 10 + #. O(1)."""
    kind = kind.strip().upper()
    m = _NV_RE.match(kind)
    if m:
        return NVLINK_TIER + int(m.group(1))
    return _PCIE_RANK.get(kind, 0)


def link_tier(rank: int) -> int:
    """Coarse class of a rank: every NVLink pair is one tier, PCIe kinds keep their rank."""
    return min(rank, NVLINK_TIER)


def rank_name(rank: int) -> str:
    if rank >= NVLINK_TIER:
        return f"NV{rank - NVLINK_TIER}"
    for name, r in _PCIE_RANK.items():
        if r == rank:
            return name
    return ""


class Topology:
    """Pairwise link ranks and NUMA placement of a host's GPUs (interned, immutable)."""

    __slots__ = ("id", "numa_of", "ranks", "slots", "socket_of")

    def __init__(
        self,
        tid: int,
        numa_of: tuple[int, ...],
        ranks: tuple[tuple[int, ...], ...],
        socket_of: tuple[int, ...] = (),
    ) -> None:
        self.id = tid
        self.numa_of = numa_of
        self.ranks = ranks
        self.slots = len(numa_of)
        self.socket_of = socket_of or tuple(0 for _ in numa_of)


_TOPOLOGIES: dict[tuple[object, ...], Topology] = {}
_BY_INPUT: dict[tuple[object, ...], Topology] = {}


def topology_of(host: HostState) -> Topology:
    """The interned `Topology` of a host; hosts with equal matrices share one object, so the
    set rankings below are computed once per distinct topology. O(g^2) for g GPUs."""
    numa_of = tuple(g.numa_node for g in host.gpus)
    socket_by_node = {n.node: n.socket for n in host.numa}
    socket_of = tuple(socket_by_node.get(n, 0) for n in numa_of)
    raw = (tuple(g.index for g in host.gpus), numa_of, socket_of, host.links)
    hit = _BY_INPUT.get(raw)
    if hit is not None:
        return hit
    pos = {g.index: i for i, g in enumerate(host.gpus)}
    n = len(numa_of)
    ranks = [
        [
            0 if i == j else (_PCIE_RANK["NODE"] if numa_of[i] == numa_of[j] else 1)
            for j in range(n)
        ]
        for i in range(n)
    ]
    for a, b, kind in host.links:
        if a in pos and b in pos and a != b:
            r = link_rank(kind)
            ranks[pos[a]][pos[b]] = r
            ranks[pos[b]][pos[a]] = r
    frozen = tuple(tuple(row) for row in ranks)
    key = (numa_of, socket_of, frozen)
    topo = _TOPOLOGIES.get(key)
    if topo is None:
        topo = Topology(len(_TOPOLOGIES), numa_of, frozen, socket_of)
        _TOPOLOGIES[key] = topo
    if len(_BY_INPUT) < 100_000:
        _BY_INPUT[raw] = topo
    return topo


SetScore = tuple[int, int, int]  # (worst pair rank, sum of pair ranks, NUMA nodes spanned)


def score_set(topo: Topology, slots: tuple[int, ...]) -> SetScore:
    """Score of a GPU set (positions in the host's GPU tuple). O(k^2)."""
    if len(slots) < 2:
        return (10**6, 0, 1)
    worst = 10**6
    total = 0
    ranks = topo.ranks
    for i, a in enumerate(slots):
        row = ranks[a]
        for b in slots[i + 1 :]:
            r = row[b]
            total += r
            if r < worst:
                worst = r
    return (worst, total, len({topo.numa_of[s] for s in slots}))


def _sort_key(topo: Topology, eligible: tuple[int, ...], slots: tuple[int, ...]) -> tuple:
    worst, total, spans = score_set(topo, slots)
    sockets = len({topo.socket_of[s] for s in slots})
    # Tie-break: take GPUs from NUMA nodes with fewer free GPUs, keeping well-connected
    # groups whole for later jobs.
    crowd = sum(sum(1 for e in eligible if topo.numa_of[e] == topo.numa_of[s]) for s in slots)
    return (-worst, -total, spans, sockets, crowd, slots)


def _greedy_sets(topo: Topology, eligible: tuple[int, ...], k: int) -> list[tuple[int, ...]]:
    out = []
    for seed in eligible:
        chosen = [seed]
        rest = [e for e in eligible if e != seed]
        while len(chosen) < k:
            best = max(
                rest,
                key=lambda e: (min(topo.ranks[e][c] for c in chosen), sum(topo.ranks[e][c] for c in chosen)),
            )
            chosen.append(best)
            rest.remove(best)
        out.append(tuple(sorted(chosen)))
    return list(dict.fromkeys(out))


@lru_cache(maxsize=65536)
def _ranked(topo: Topology, eligible: tuple[int, ...], k: int) -> tuple[tuple[int, ...], ...]:
    if math.comb(len(eligible), k) <= _MAX_COMBINATIONS:
        sets = list(itertools.combinations(eligible, k))
    else:
        sets = _greedy_sets(topo, eligible, k)
    sets.sort(key=lambda s: _sort_key(topo, eligible, s))
    return tuple(sets)


def ranked_sets(topo: Topology, eligible: tuple[int, ...], k: int) -> tuple[tuple[int, ...], ...]:
    """All k-subsets of the eligible GPU positions, best interconnect first.

    Memoised per (topology, eligible set, k): hosts of one type in one state cost one
    enumeration of C(g, k) sets, O(C(g, k) * k^2 log) the first time, O(1) afterwards.
    Above 4,000 combinations a greedy search gives one candidate per seed GPU instead.
    """
    if k <= 0 or k > len(eligible):
        return ()
    return _ranked(topo, eligible, k)
