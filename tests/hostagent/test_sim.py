import filecmp
import re
from pathlib import Path

import pytest

from hostagent.sim import (
    KINDS,
    ROOT_VARIANTS,
    ROOTS_DIR,
    demo_hosts,
    root_for,
    simulated_host,
    topo_file_for,
)
from hostagent.sim.roots import VARIANTS, write_variants


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_gives_a_plausible_host(kind):
    host = simulated_host(kind, 0)
    assert topo_file_for(kind).exists() and Path(host["root"]).is_dir()
    cpus = host["cpu"]["cpus"]
    for gpu in host["gpus"]:
        assert gpu["cpu_affinity"] and max(gpu["cpu_affinity"]) < cpus
        assert gpu["numa_node"] < len(host["numa_nodes"])
    assert host["libvirt_uri"].startswith("test:///")


def test_twelve_hosts_have_unique_names_uuids_and_plausible_gpu_addresses():
    hosts = [simulated_host(kind, i) for i, kind in
             enumerate(sorted(KINDS) * 3)]
    assert len({h["name"] for h in hosts}) == 12
    for h in hosts:  # the real board's layout: PCI domain 0000, unique within the host
        pcis = [g["pci"] for g in h["gpus"]]
        assert len(set(pcis)) == len(pcis)
        assert all(re.fullmatch(r"0000:[0-9a-f]{2}:00\.0", p) for p in pcis)
    uuids = [g["uuid"] for h in hosts for g in h["gpus"]]
    assert len(set(uuids)) == len(uuids)
    assert {h["root_kind"] for h in hosts} >= {"good", "misconfigured/smt_on"}


def test_same_index_is_deterministic_and_numa_follows_the_capture():
    assert simulated_host("dgx_a100", 4) == simulated_host("dgx_a100", 4)
    host = simulated_host("dgx_a100", 4)
    assert [g["numa_node"] for g in host["gpus"]] == [3, 3, 1, 1, 7, 7, 5, 5]
    assert host["gpus"][0]["pci"] == "0000:07:00.0"
    assert host["gpus"][0]["cpu_affinity"][:2] == [48, 49]
    named = simulated_host("dgx_a100", 4, name="dgx-a100-05")
    assert named["name"] == "dgx-a100-05" and named["gpus"][0]["uuid"] != host["gpus"][0]["uuid"]


def test_the_demo_fleet_names_and_misconfigured_hosts():
    hosts = demo_hosts()
    assert [h[0] for h in hosts][:2] == ["dgx-a100-01", "dgx-a100-02"]
    assert {h[0] for h in hosts} >= {"hgx-h100-04", "ada-pcie-03", "ws-5090-02"}
    assert [h[2] for h in hosts] == list(range(len(hosts)))
    assert {root_for(h[2]) for h in hosts} == set(ROOT_VARIANTS)


def test_bad_kind_or_index():
    with pytest.raises(ValueError, match="unknown simulated host kind"):
        simulated_host("dgx_z900", 0)
    with pytest.raises(ValueError, match="index"):
        simulated_host("dgx_a100", -1)


def test_shipped_roots_match_the_builder(tmp_path):
    write_variants(tmp_path)
    for variant in VARIANTS:
        cmp = filecmp.dircmp(ROOTS_DIR / variant, tmp_path / variant)
        stack = [cmp]
        while stack:
            c = stack.pop()
            assert not (c.left_only or c.right_only or c.diff_files), variant
            stack.extend(c.subdirs.values())
