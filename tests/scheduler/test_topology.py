"""Choosing GPUs, cores and memory inside a host, on real `nvidia-smi topo -m` captures."""

from scheduler import Snapshot, plan
from scheduler.topology import link_rank
from tests.scheduler.helpers import TOPO, apply, host_from_topo, job, tenant

RTX = TOPO / "pcie_4x_rtx6000ada_asus_esc8000a_e12.txt"
DGX = TOPO / "dgx_a100_8x_a100_sxm4_40g.txt"


def _dgx(name="dgx"):
    # EPYC 7742 in NPS4: NUMA node k holds cores 16k..16k+15 and 128+16k..128+16k+15
    numa = {
        k: tuple(range(16 * k, 16 * k + 16)) + tuple(range(128 + 16 * k, 128 + 16 * k + 16))
        for k in range(8)
    }
    return host_from_topo(DGX, name, "A100", numa_cores=numa, mem_per_numa=128)


def _plan(hosts, *jobs, policy="fgd"):
    return plan(Snapshot(tuple(hosts), (tenant("t"),), tuple(jobs), policy=policy))


def test_link_kinds_rank_nvlink_over_pcie_and_more_links_over_fewer():
    kinds = ["NV18", "NV12", "NV2", "PIX", "PXB", "PHB", "NODE", "SYS"]
    ranks = [link_rank(k) for k in kinds]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == len(ranks)


def test_the_capture_reads_as_two_numa_pairs():
    h = host_from_topo(RTX, "esc", "RTX6000Ada")
    assert [g.numa_node for g in h.gpus] == [0, 0, 1, 1]
    assert (0, 1, "NODE") in h.links and (0, 2, "SYS") in h.links


def test_two_gpus_on_the_rtx_6000_server_get_a_node_pair_not_sys():
    h = host_from_topo(RTX, "esc", "RTX6000Ada")
    p = _plan([h], job("j", gpus=2, vcpus_per_host=8, memory_gib_per_host=32)).placements[0]
    hp = p.hosts[0]
    assert p.link_kind == "NODE"
    assert set(hp.gpu_indices) in ({0, 1}, {2, 3})
    numa = {g.numa_node for g in h.gpus if g.index in hp.gpu_indices}
    assert hp.numa_nodes == tuple(numa) and p.local


def test_with_one_gpu_of_a_pair_busy_the_other_pair_is_chosen():
    h = host_from_topo(RTX, "esc", "RTX6000Ada")
    first = _plan([h], job("one", gpus=1)).placements[0]
    busy = apply((h,), list(first.hosts))
    p = _plan(busy, job("two", gpus=2)).placements[0]
    assert p.link_kind == "NODE"
    assert first.hosts[0].gpu_indices[0] not in p.hosts[0].gpu_indices


def test_single_gpus_fill_a_numa_pair_before_breaking_the_other():
    h = host_from_topo(RTX, "esc", "RTX6000Ada")
    p1 = _plan([h], job("a", gpus=1)).placements[0]
    h1 = apply((h,), list(p1.hosts))
    p2 = _plan(h1, job("b", gpus=1)).placements[0]
    a, b = p1.hosts[0].gpu_indices[0], p2.hosts[0].gpu_indices[0]
    assert {a, b} in ({0, 1}, {2, 3})  # a NODE pair stays free for a 2-GPU job


def test_the_host_with_the_better_set_wins_even_for_first_fit():
    h = host_from_topo(RTX, "esc-a", "RTX6000Ada")
    # host a has GPU0 and GPU2 free (only a SYS pair), host b has GPU2 and GPU3 (a NODE pair)
    a = apply((h,), [])[0]
    a = type(a)(a.name, tuple(g if g.index in (0, 2) else type(g)(g.index, g.model, g.numa_node, 0)
                              for g in a.gpus), a.numa, a.links)
    b = host_from_topo(RTX, "esc-b", "RTX6000Ada")
    b = type(b)(b.name, tuple(g if g.index in (2, 3) else type(g)(g.index, g.model, g.numa_node, 0)
                              for g in b.gpus), b.numa, b.links)
    for policy in ("first-fit", "best-fit", "fgd"):
        p = _plan([a, b], job("j", gpus=2), policy=policy).placements[0]
        assert p.hosts[0].host == "esc-b" and p.link_kind == "NODE", policy


def test_a_spread_set_is_used_when_nothing_better_exists():
    h = host_from_topo(RTX, "esc", "RTX6000Ada")
    p = _plan([h], job("four", gpus=4)).placements[0]
    assert p.link_kind == "SYS" and sorted(p.hosts[0].gpu_indices) == [0, 1, 2, 3]
    assert p.hosts[0].numa_nodes == (0, 1)


def test_on_the_dgx_a100_cores_come_from_the_gpus_numa_node():
    h = _dgx()
    p = _plan([h], job("j", gpus=2, vcpus_per_host=16, memory_gib_per_host=64)).placements[0]
    hp = p.hosts[0]
    assert p.link_kind == "NV12"
    gpu_numa = {g.numa_node for g in h.gpus if g.index in hp.gpu_indices}
    assert len(gpu_numa) == 1  # a pair behind one PCIe switch / NUMA node
    local_cores = {c for n in h.numa if n.node in gpu_numa for c in n.free_cores}
    assert len(hp.cores) == 16 and set(hp.cores) <= local_cores
    assert hp.numa_nodes == tuple(sorted(gpu_numa))
    assert dict(hp.memory_by_numa) == {next(iter(gpu_numa)): 64}
    assert p.local


def test_on_the_dgx_a100_a_job_too_big_for_its_gpus_numa_node_waits_instead_of_spilling():
    # one A100 sits on a node of 32 cores: 40 vCPUs next to it do not exist, and cores
    # from another node would be a wrong placement, so the job gets a reason instead.
    h = _dgx()
    out = _plan([h], job("j", gpus=1, vcpus_per_host=40))
    assert out.placements == ()
    reason = out.pending_reason("j")
    assert reason.code == "no_host_with_free_cpu_memory"
    assert "NUMA nodes" in reason.message
