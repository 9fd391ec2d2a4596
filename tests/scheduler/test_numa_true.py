"""NUMA-true placement on every real capture: cores and memory on exactly the GPUs' NUMA
nodes, split in proportion to the GPUs on each; GPU sets on the fewest NUMA nodes, then
sockets, among equally connected sets; a host that cannot do that is not used."""

import itertools
from collections import Counter

import pytest

from scheduler import Snapshot, plan
from scheduler.cluster import split_proportionally
from scheduler.topology import score_set, topology_of
from tests.scheduler.helpers import apply, host_from_sim, job, tenant

KINDS = ("dgx_a100", "hgx_h100", "pcie_rtx6000ada", "consumer_2x_rtx5090")
GPUS = {"dgx_a100": 8, "hgx_h100": 8, "pcie_rtx6000ada": 4, "consumer_2x_rtx5090": 2}
# gangs need NIC virtual functions next to their GPUs: the two PCIe boxes have none at
# PIX/PXB distance (test_nic_vfs covers that they wait)
GANG_KINDS = ("dgx_a100", "hgx_h100")
CASES = [(kind, k, n) for kind in KINDS for k in (1, 2, 4, 8) if k <= GPUS[kind]
         for n in (1, 2) if n == 1 or kind in GANG_KINDS]


def _plan(hosts, *jobs):
    return plan(Snapshot(tuple(hosts), (tenant("t"),), tuple(jobs)))


def _node_of_core(h):
    return {c: n.node for n in h.numa for c in n.free_cores}


def _check_numa_true(h, hp, vcpus, memory):
    """The placement ``hp`` on host ``h`` is NUMA-true for a job of vcpus / memory."""
    gpu_node = {g.index: g.numa_node for g in h.gpus}
    per_node = Counter(gpu_node[i] for i in hp.gpu_indices)
    k = len(hp.gpu_indices)
    cores = Counter(_node_of_core(h)[c] for c in hp.cores)
    # cores and memory on exactly the GPUs' nodes, in proportion to the GPUs on each
    assert dict(cores) == {n: vcpus * g // k for n, g in per_node.items()}
    assert dict(hp.memory_by_numa) == {n: memory * g // k for n, g in per_node.items()}
    assert set(hp.numa_nodes) == set(per_node)
    # fewest NUMA nodes, then sockets, among the sets as well connected as the chosen one
    topo = topology_of(h)
    pos = {g.index: i for i, g in enumerate(h.gpus)}
    chosen = tuple(sorted(pos[i] for i in hp.gpu_indices))
    worst, total, spans = score_set(topo, chosen)
    socket_of = {n.node: n.socket for n in h.numa}
    peers = [s for s in itertools.combinations(range(len(h.gpus)), k)
             if score_set(topo, s)[:2] == (worst, total)]
    assert spans == min(score_set(topo, s)[2] for s in peers)
    sockets = len({socket_of[topo.numa_of[s]] for s in chosen})
    assert sockets == min(len({socket_of[topo.numa_of[p]] for p in s}) for s in peers
                          if score_set(topo, s)[2] == spans)


@pytest.mark.parametrize(("kind", "k", "hosts"), CASES)
def test_every_shape_on_every_capture_is_numa_true(kind, k, hosts):
    cluster = [host_from_sim(kind, f"{kind}-{i}") for i in range(hosts)]
    vcpus, memory = 4 * k, 16 * k
    out = _plan(cluster, job("j", gpus=k, hosts=hosts, vcpus_per_host=vcpus,
                             memory_gib_per_host=memory))
    (p,) = out.placements
    assert p.local and len(p.hosts) == hosts
    by_name = {h.name: h for h in cluster}
    for hp in p.hosts:
        _check_numa_true(by_name[hp.host], hp, vcpus, memory)


def test_the_four_gpu_a100_job_of_the_issue_gets_half_its_cores_on_each_node():
    # the defect: GPUs on nodes 3 and 1, all 32 cores on node 1
    h = host_from_sim("dgx_a100", "dgx")
    (p,) = _plan([h], job("j", gpus=4, vcpus_per_host=32, memory_gib_per_host=128)).placements
    hp = p.hosts[0]
    cores = Counter(_node_of_core(h)[c] for c in hp.cores)
    assert dict(cores) == {1: 16, 3: 16}
    assert dict(hp.memory_by_numa) == {1: 64, 3: 64}
    # one socket (nodes 0-3), not one node on each package
    assert {n.socket for n in h.numa if n.node in hp.numa_nodes} == {0}


def test_an_uneven_gpu_split_gives_an_uneven_core_and_memory_split():
    h = host_from_sim("dgx_a100", "dgx")
    (p,) = _plan([h], job("j", gpus=3, vcpus_per_host=12, memory_gib_per_host=30)).placements
    hp = p.hosts[0]
    per_node = Counter(g.numa_node for g in h.gpus if g.index in hp.gpu_indices)
    two, one = (n for n, _ in per_node.most_common())
    assert per_node[two] == 2 and per_node[one] == 1
    cores = Counter(_node_of_core(h)[c] for c in hp.cores)
    assert dict(cores) == {two: 8, one: 4}
    assert dict(hp.memory_by_numa) == {two: 20, one: 10}


def test_the_h100_gang_members_each_get_cores_on_both_gpu_nodes():
    hosts = [host_from_sim("hgx_h100", f"hgx-{i}") for i in range(2)]
    (p,) = _plan(hosts, job("g", gpus=8, hosts=2, vcpus_per_host=64,
                            memory_gib_per_host=256)).placements
    for hp in p.hosts:
        h = next(x for x in hosts if x.name == hp.host)
        assert dict(Counter(_node_of_core(h)[c] for c in hp.cores)) == {0: 32, 1: 32}
        assert dict(hp.memory_by_numa) == {0: 128, 1: 128}


def test_a_host_whose_gpu_node_lacks_the_cores_is_skipped_not_spilled():
    a, b = host_from_sim("pcie_rtx6000ada", "ada-a"), host_from_sim("pcie_rtx6000ada", "ada-b")
    # a CPU-only job takes 30 of node 0's 32 cores on ada-a
    (cpu,) = _plan([a], job("cpu", gpus=0, vcpus_per_host=30)).placements
    busy_a = apply((a,), list(cpu.hosts))[0]
    # a 2-GPU job on node 0's GPUs of ada-a would find 2 cores there: it goes to ada-b
    # or to node 1's pair, never with cores from the other node
    out = _plan([busy_a, b], job("j", gpus=4, vcpus_per_host=16, memory_gib_per_host=32))
    (p,) = out.placements
    assert p.hosts[0].host == "ada-b"
    _check_numa_true(b, p.hosts[0], 16, 32)
    # with ada-b gone the job waits and says why
    out = _plan([busy_a], job("j", gpus=4, vcpus_per_host=16, memory_gib_per_host=32))
    assert out.placements == ()
    assert out.pending_reason("j").code == "no_host_with_free_cpu_memory"


def test_a_cpu_only_job_keeps_its_memory_with_its_cores():
    h = host_from_sim("pcie_rtx6000ada", "ada")
    (p,) = _plan([h], job("cpu", gpus=0, vcpus_per_host=48, memory_gib_per_host=96)).placements
    hp = p.hosts[0]
    cores = Counter(_node_of_core(h)[c] for c in hp.cores)
    mem = dict(hp.memory_by_numa)
    assert set(mem) == set(cores) and sum(mem.values()) == 96
    for node, n in cores.items():
        assert mem[node] == 96 * n // 48


def test_split_proportionally_uses_largest_remainders_and_respects_room():
    assert split_proportionally({0: 2, 1: 1}, 10, [32, 32]) == ((0, 7), (1, 3))
    assert split_proportionally({0: 1, 1: 1}, 7, [32, 3]) == ((0, 4), (1, 3))
    assert split_proportionally({0: 1, 1: 1}, 8, [32, 3]) is None
    assert split_proportionally({0: 1}, 0, [0]) == ()
