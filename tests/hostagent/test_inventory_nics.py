"""NICs and their SR-IOV virtual functions from sysfs, laid out as the kernel does
(``/sys/bus/pci/devices/<bdf>/{class,numa_node,sriov_totalvfs,sriov_numvfs,virtfn<i>}``)."""

import os

from hostagent.inventory import sysfs_inventory, sysfs_nics


def _dev(root, bdf, cls, numa="3", **files):
    d = root / "sys/bus/pci/devices" / bdf
    d.mkdir(parents=True)
    (d / "class").write_text(cls + "\n")
    (d / "numa_node").write_text(numa + "\n")
    for name, text in files.items():
        (d / name).write_text(text + "\n")
    return d


def test_a_connectx_pf_with_vfs_is_read_with_its_vfs_in_virtfn_order(tmp_path):
    pf = _dev(tmp_path, "0000:0c:00.0", "0x020700", sriov_totalvfs="16", sriov_numvfs="3")
    (pf / "infiniband" / "mlx5_0").mkdir(parents=True)
    for i, bdf in enumerate(["0000:0c:00.1", "0000:0c:00.2", "0000:0c:01.2"]):
        vf = _dev(tmp_path, bdf, "0x020700")
        os.symlink(f"../{pf.name}", vf / "physfn")
        os.symlink(f"../{bdf}", pf / f"virtfn{i if i < 2 else 10}")
    _dev(tmp_path, "0000:07:00.0", "0x030200")  # a GPU
    eth = _dev(tmp_path, "0000:e1:00.0", "0x020000", numa="-1")
    (eth / "net" / "enp225s0f0").mkdir(parents=True)
    nics = sysfs_nics(tmp_path)
    assert [n["name"] for n in nics] == ["mlx5_0", "enp225s0f0"]
    ib, en = nics
    assert ib == {"name": "mlx5_0", "pci_address": "0000:0c:00.0", "numa_node": 3,
                  "link_type": "infiniband", "sriov_totalvfs": 16, "sriov_numvfs": 3,
                  "vfs": ["0000:0c:00.1", "0000:0c:00.2", "0000:0c:01.2"]}
    assert en["link_type"] == "ethernet" and en["numa_node"] is None and en["vfs"] == []
    assert sysfs_inventory(tmp_path)["nics"] == nics


def test_each_gpu_gets_its_iommu_group_and_the_foreign_devices_in_it(tmp_path):
    from hostagent.inventory import _attach_iommu

    _dev(tmp_path, "0000:06:00.0", "0x060400")  # the switch port above GPU0
    _dev(tmp_path, "0000:07:00.0", "0x030200")
    _dev(tmp_path, "0000:07:00.1", "0x040300")  # GPU0's own audio function
    _dev(tmp_path, "0000:0f:00.0", "0x030200")
    _dev(tmp_path, "0000:0c:00.0", "0x020700")  # a NIC behind the same switch, no ACS
    for group, devs in {"16": ["0000:06:00.0", "0000:07:00.0", "0000:07:00.1"],
                        "17": ["0000:0c:00.0", "0000:0f:00.0"]}.items():
        d = tmp_path / "sys/kernel/iommu_groups" / group / "devices"
        d.mkdir(parents=True)
        for dev in devs:
            (d / dev).mkdir()
    doc = {"gpus": [{"pci_bus_id": "00000000:07:00.0"}, {"pci_bus_id": "00000000:0F:00.0"}],
           "host": sysfs_inventory(tmp_path)}
    _attach_iommu(doc, tmp_path)
    assert doc["gpus"][0] | {} == {"pci_bus_id": "00000000:07:00.0", "iommu_group": 16,
                                    "iommu_foreign": []}
    assert doc["gpus"][1]["iommu_group"] == 17
    assert doc["gpus"][1]["iommu_foreign"] == ["0000:0c:00.0"]
