"""GPU-local NIC virtual functions for multi-host (RDMA) jobs, IOMMU groups as the unit of
passthrough, and leaf switches for gangs, on the real DGX A100 capture (8 GPUs, 10 NICs)."""

from dataclasses import replace

from scheduler import Snapshot, plan
from tests.scheduler.helpers import apply, host, host_from_sim, job, tenant


def _plan(hosts, *jobs, policy="fgd-strand"):
    return plan(Snapshot(tuple(hosts), (tenant("t"),), tuple(jobs), policy=policy))


def _close(h):
    """GPU index -> NIC names at PIX/PXB distance, from the capture."""
    out = {}
    for gi, nic, kind in h.nic_links:
        if kind in ("PIX", "PXB"):
            out.setdefault(gi, set()).add(nic)
    return out


def test_a_dgx_gang_member_gets_one_close_vf_per_gpu_on_distinct_rails():
    hosts = [host_from_sim("dgx_a100", f"dgx-{i}") for i in range(2)]
    (p,) = _plan(hosts, job("g", gpus=8, hosts=2, vcpus_per_host=64,
                            memory_gib_per_host=256)).placements
    for hp in p.hosts:
        close = _close(hosts[0])
        vfs = dict(hp.nic_vfs)
        assert sum(vfs.values()) == 8
        # each NIC used sits at PXB of the job's GPUs; 8 GPUs spread over 8 compute NICs
        assert set(vfs) <= set().union(*(close[g] for g in hp.gpu_indices))
        assert len(vfs) == 8 and "mlx5_8" not in vfs and "mlx5_9" not in vfs


def test_an_rdma_job_on_two_gpus_gets_vfs_behind_their_switch():
    h = host_from_sim("dgx_a100", "dgx")
    (p,) = _plan([h], job("r", gpus=2, rdma=True, vcpus_per_host=8,
                          memory_gib_per_host=32)).placements
    hp = p.hosts[0]
    close = _close(h)
    assert set(dict(hp.nic_vfs)) <= close[hp.gpu_indices[0]] | close[hp.gpu_indices[1]]
    assert sum(dict(hp.nic_vfs).values()) == 2


def test_no_vf_is_handed_out_twice_and_a_host_without_close_vfs_is_skipped():
    # one VF per NIC: the first 8-GPU RDMA job takes all 8 compute NICs' only VF
    h = host_from_sim("dgx_a100", "dgx-a", vfs_per_nic=1)
    other = host_from_sim("dgx_a100", "dgx-b", vfs_per_nic=1)
    first = _plan([h], job("one", gpus=4, rdma=True, vcpus_per_host=8, memory_gib_per_host=32))
    (p1,) = first.placements
    busy = apply((h,), list(p1.hosts))[0]
    # on the same host the next RDMA job must use the other GPUs' NICs
    (p2,) = _plan([busy], job("two", gpus=4, rdma=True, vcpus_per_host=8,
                              memory_gib_per_host=32)).placements
    assert not set(dict(p1.hosts[0].nic_vfs)) & set(dict(p2.hosts[0].nic_vfs))
    full = apply((busy,), list(p2.hosts))[0]
    # GPUs free, but their NICs' VFs are all taken: a plain job fits, an RDMA job does not
    freed = replace(full, gpus=tuple(replace(g, free_milli=1000) for g in full.gpus))
    out = _plan([freed], job("three", gpus=2, rdma=True, vcpus_per_host=8,
                             memory_gib_per_host=32))
    assert out.placements == ()
    assert out.pending_reason("three").code == "no_host_with_free_nic_vf"
    (p4,) = _plan([freed, other], job("three", gpus=2, rdma=True, vcpus_per_host=8,
                                      memory_gib_per_host=32)).placements
    assert p4.hosts[0].host == "dgx-b"


def test_a_gang_of_pcie_boxes_without_a_close_nic_waits_and_says_why():
    hosts = [host_from_sim("pcie_rtx6000ada", f"ada-{i}") for i in range(2)]
    out = _plan(hosts, job("g", gpus=2, hosts=2, vcpus_per_host=8, memory_gib_per_host=32))
    assert out.placements == ()
    assert out.pending_reason("g").code == "no_host_with_free_nic_vf"


def test_h100_gpus_without_their_own_nic_still_go_and_the_ones_with_get_vfs():
    hosts = [host_from_sim("hgx_h100", f"hgx-{i}") for i in range(2)]
    (p,) = _plan(hosts, job("g", gpus=8, hosts=2, vcpus_per_host=64,
                            memory_gib_per_host=256)).placements
    for hp in p.hosts:
        # GPU0, 3, 4 and 6 have a PIX NIC in the capture: one VF each
        assert sum(dict(hp.nic_vfs).values()) == 4


def test_gpus_of_one_iommu_group_are_passed_together_and_a_foreign_device_excludes():
    h = host("h", gpus=4, numa_nodes=1)
    gpus = list(h.gpus)
    gpus[0] = replace(gpus[0], iommu_group=1)
    gpus[1] = replace(gpus[1], iommu_group=1)  # GPU0 and GPU1 behind one switch, no ACS
    gpus[2] = replace(gpus[2], iommu_group=2, iommu_foreign=True)  # shares with a NIC
    gpus[3] = replace(gpus[3], iommu_group=3)
    h = replace(h, gpus=tuple(gpus))
    (one,) = _plan([h], job("one", gpus=1)).placements
    assert one.hosts[0].gpu_indices == (3,)  # the only GPU passable alone
    (two,) = _plan([h], job("two", gpus=2)).placements
    assert set(two.hosts[0].gpu_indices) == {0, 1}
    out = _plan([h], job("three", gpus=3))  # 0+1+3 would do, but never GPU2
    assert set(out.placements[0].hosts[0].gpu_indices) == {0, 1, 3}
    out = _plan([h], job("four", gpus=4))
    assert out.placements == ()
    # a share is a mediated device, not a VFIO group: GPU2 still takes shares
    (s,) = _plan([replace(h, gpus=tuple(replace(g, free_milli=0) if g.index != 2 else g
                                         for g in h.gpus))],
                 job("s", gpus=1, gpu_milli=500)).placements
    assert s.hosts[0].gpu_indices == (2,)


def test_a_gang_prefers_one_leaf_then_the_fewest_and_records_how_many():
    hosts = [host("a0", group="leaf-a"), host("b0", group="leaf-b"), host("a1", group="leaf-a"),
             host("c0", group="leaf-c"), host("b1", group="leaf-b"), host("b2", group="leaf-b")]
    (p,) = _plan(hosts, job("g3", gpus=8, hosts=3)).placements
    assert {hp.host for hp in p.hosts} == {"b0", "b1", "b2"} and p.leaves == 1
    (p,) = _plan(hosts, job("g5", gpus=8, hosts=5)).placements
    assert p.leaves == 2 and "c0" not in {hp.host for hp in p.hosts}
    (p,) = _plan(hosts, job("g1", gpus=8)).placements
    assert p.leaves == 1


def test_a_single_leaf_gang_waits_with_a_reason_when_no_leaf_is_big_enough():
    hosts = [host("a0", group="leaf-a"), host("b0", group="leaf-b"), host("a1", group="leaf-a")]
    out = _plan(hosts, job("g", gpus=8, hosts=3, single_leaf=True))
    assert out.placements == ()
    r = out.pending_reason("g")
    assert r.code == "no_single_leaf" and r.data["max_hosts_on_one_leaf"] == 2
    (p,) = _plan(hosts, job("g", gpus=8, hosts=2, single_leaf=True)).placements
    assert p.leaves == 1 and {hp.host for hp in p.hosts} == {"a0", "a1"}
