import pytest

from hostagent import nvml as real_nvml
from hostagent.inventory import GPU_FIELDS, collect_inventory, nvml_inventory, topo_inventory
from hostagent.nvml import NvmlUnavailable, _cpus_from_masks
from hostagent.sim.roots import build_root
from hostagent.topo import parse_topo

from .conftest import FIXTURES

DGX = (FIXTURES / "topo" / "dgx_a100_8x_a100_sxm4_40g.txt").read_text()
LEVELS = {"PIX": 10, "PXB": 20, "PHB": 30, "NODE": 40, "SYS": 50}


class FakeNvml:
    """The seam's functions, fed from the DGX A100 capture (a host with 8 A100 + NVLink)."""

    def __init__(self, text=DGX):
        self.inv = parse_topo(text)
        self.calls = []

    def init(self):
        self.calls.append("init")

    def shutdown(self):
        self.calls.append("shutdown")

    def driver_version(self):
        return "535.129.03"

    def device_count(self):
        return len(self.inv.gpus)

    def gpu_info(self, i):
        g = self.inv.gpus[i]
        return {"index": i, "uuid": f"GPU-{i:08d}", "name": "NVIDIA A100-SXM4-40GB",
                "pci_bus_id": f"00000000:{[7, 15, 71, 78, 135, 144, 183, 189][i]:02X}:00.0",
                "memory_mib": 40960, "numa_node": g.numa_node,
                "cpu_affinity": list(g.cpu_affinity), "vbios_version": "92.00.45.00.05",
                "ecc_mode": True, "persistence_mode": True, "retired_pages_pending": False,
                "remapped_rows_pending": False, "remapped_rows_failure": False}

    def nvlink_count(self, a, b):
        return self.inv.link(f"GPU{a}", f"GPU{b}").nvlinks

    def topology_level(self, a, b):
        return LEVELS.get(self.inv.link(f"GPU{a}", f"GPU{b}").kind, 50)


def test_nvml_inventory_reports_nvlinks_and_numa_through_the_seam():
    fake = FakeNvml()
    doc = nvml_inventory(fake)
    assert fake.calls == ["init", "shutdown"]
    assert doc["source"] == "nvml" and doc["driver_version"] == "535.129.03"
    assert [g["numa_node"] for g in doc["gpus"]] == [3, 3, 1, 1, 7, 7, 5, 5]
    assert len(doc["links"]) == 28
    assert all(lk["kind"] == "NV12" and lk["nvlinks"] == 12 for lk in doc["links"])


def test_without_nvlink_the_common_ancestor_names_the_link():
    text = (FIXTURES / "topo" / "pcie_4x_rtx6000ada_asus_esc8000a_e12.txt").read_text()
    doc = nvml_inventory(FakeNvml(text))
    kinds = {(lk["a"], lk["b"]): lk["kind"] for lk in doc["links"]}
    assert kinds[("GPU0", "GPU1")] == "NODE" and kinds[("GPU0", "GPU2")] == "SYS"


def test_nvml_and_topo_sources_share_one_schema():
    from_nvml = nvml_inventory(FakeNvml())
    from_topo = topo_inventory(DGX)
    assert set(from_nvml) == set(from_topo)
    assert set(from_nvml["gpus"][0]) == set(from_topo["gpus"][0]) == set(GPU_FIELDS)
    gpu_links = [lk for lk in from_topo["links"] if lk["a"].startswith("GPU")
                 and lk["b"].startswith("GPU")]
    assert gpu_links == from_nvml["links"]
    assert from_topo["gpus"][0]["uuid"] is None


def test_nvml_unavailable_is_reported_cleanly(tmp_path):
    class Broken(FakeNvml):
        def init(self):
            raise NvmlUnavailable("NVML unavailable: NVML Shared Library Not Found")

    doc = collect_inventory(root=build_root(tmp_path), nvml=Broken())
    assert doc["source"] == "none" and "NVML unavailable" in doc["error"]
    assert doc["gpus"] == [] and doc["host"]["smt_active"] is False


def test_real_nvml_seam_on_this_machine():
    try:
        real_nvml.init()
    except NvmlUnavailable as exc:
        assert "NVML unavailable" in str(exc)
    else:  # pragma: no cover - only on a GPU host
        assert real_nvml.device_count() >= 0
        real_nvml.shutdown()


def test_sysfs_inventory_of_a_tree(tmp_path):
    root = build_root(tmp_path)
    (root / "sys/devices/system/cpu/online").write_text("0-7\n")
    (root / "sys/devices/system/node/node0/cpulist").write_text("0-3\n")
    (root / "sys/devices/system/node/node0/meminfo").write_text(
        "Node 0 MemTotal:       16384000 kB\n")
    host = collect_inventory(topo_text=DGX, root=root)["host"]
    assert host["cpus"] == list(range(8))
    node0 = host["numa_nodes"][0]
    assert node0["cpus"] == [0, 1, 2, 3] and node0["memory_mib"] == 16000
    assert node0["hugepages"]["1048576kB"] == 32
    assert host["iommu_groups"]["16"] == ["0000:07:00.0"]
    assert host["pci_drivers"]["0000:07:00.0"] == "vfio-pci"


def test_cpu_affinity_masks():
    assert _cpus_from_masks([0b1011, 1]) == [0, 1, 3, 64]


def test_real_root_inventory_does_not_crash():
    doc = collect_inventory(root="/")
    assert doc["host"]["cpus"]


@pytest.mark.parametrize("path", sorted((FIXTURES / "topo").glob("*.txt")))
def test_topo_inventory_of_every_capture(path):
    doc = topo_inventory(path.read_text())
    assert doc["gpus"] and doc["source"] == "topo"
