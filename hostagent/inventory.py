"""Host inventory: GPUs and their links (NVML or a ``nvidia-smi topo -m`` capture)
plus CPUs, NUMA, hugepages, IOMMU groups and PCI drivers from sysfs.

Whatever the source, the GPU part has one schema::

    {"source": "nvml" | "topo", "driver_version": str | None,
     "gpus": [{"index", "numa_node", "cpu_affinity", "uuid", "name", "pci_bus_id",
               "memory_mib", "vbios_version", "ecc_mode", "persistence_mode",
               "retired_pages_pending", "remapped_rows_pending", "remapped_rows_failure"}],
     "nics": [{"name", "label", "index", "numa_node"}],
     "links": [{"a", "b", "kind", "nvlinks"}]}

Fields a source cannot know are ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from hostagent import nvml as nvml_module
from hostagent.nvml import LEVEL_NAMES, NvmlUnavailable
from hostagent.topo import TopoInventory, parse_cpulist, parse_topo

__all__ = ["GPU_FIELDS", "collect_inventory", "nvml_inventory", "sysfs_inventory",
           "topo_inventory"]

GPU_FIELDS = ("index", "numa_node", "cpu_affinity", "uuid", "name", "pci_bus_id", "memory_mib",
              "vbios_version", "ecc_mode", "persistence_mode", "retired_pages_pending",
              "remapped_rows_pending", "remapped_rows_failure")


def _gpu(values: dict[str, Any]) -> dict[str, Any]:
    return {k: values.get(k) for k in GPU_FIELDS}


def nvml_inventory(nvml: ModuleType | Any = nvml_module) -> dict[str, Any]:
    """GPUs and pairwise links through the NVML seam; raises ``NvmlUnavailable``."""
    nvml.init()
    try:
        count = nvml.device_count()
        gpus = [_gpu(nvml.gpu_info(i)) for i in range(count)]
        links = []
        for a in range(count):
            for b in range(a + 1, count):
                nv = nvml.nvlink_count(a, b)
                kind = f"NV{nv}" if nv else LEVEL_NAMES.get(nvml.topology_level(a, b), "SYS")
                links.append({"a": f"GPU{a}", "b": f"GPU{b}", "kind": kind, "nvlinks": nv})
        return {"source": "nvml", "driver_version": nvml.driver_version(), "gpus": gpus,
                "nics": [], "links": links}
    finally:
        nvml.shutdown()


def topo_inventory(text: str | TopoInventory) -> dict[str, Any]:
    """The same schema from a ``nvidia-smi topo -m`` capture (raises ``TopoParseError``)."""
    inv = parse_topo(text) if isinstance(text, str) else text
    doc = inv.to_json()
    return {"source": "topo", "driver_version": None,
            "gpus": [_gpu(g) for g in doc["gpus"]], "nics": doc["nics"], "links": doc["links"]}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def sysfs_inventory(root: Path | str = "/") -> dict[str, Any]:
    """CPUs, SMT, NUMA nodes (CPUs, memory, hugepages), IOMMU groups and PCI drivers."""
    root = Path(root)
    sysd = root / "sys/devices/system"
    online = _read(sysd / "cpu/online")
    nodes = []
    for n in sorted((sysd / "node").glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
        meminfo = _read(n / "meminfo") or ""
        total_kb = next((int(ln.split()[-2]) for ln in meminfo.splitlines()
                         if "MemTotal:" in ln), None)
        pages = {p.name.removeprefix("hugepages-"): int(_read(p / "nr_hugepages") or 0)
                 for p in sorted((n / "hugepages").glob("hugepages-*"))}
        cpus = list(parse_cpulist(_read(n / "cpulist") or ""))
        package = _read(sysd / f"cpu/cpu{cpus[0]}/topology/physical_package_id") if cpus else None
        nodes.append({"node": int(n.name[4:]),
                      "cpus": cpus,
                      "socket": int(package) if package and package.isdigit() else 0,
                      "memory_mib": None if total_kb is None else total_kb // 1024,
                      "hugepages": pages})
    groups: dict[str, list[str]] = {}
    gdir = root / "sys/kernel/iommu_groups"
    if gdir.is_dir():
        for g in sorted(gdir.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0):
            devs = g / "devices"
            groups[g.name] = sorted(p.name for p in devs.iterdir()) if devs.is_dir() else []
    drivers: dict[str, str | None] = {}
    pdir = root / "sys/bus/pci/devices"
    if pdir.is_dir():
        for dev in sorted(pdir.iterdir()):
            try:
                drivers[dev.name] = os.path.basename(os.readlink(dev / "driver"))
            except OSError:
                drivers[dev.name] = _read(dev / "driver")
    hp = {p.name.removeprefix("hugepages-"): int(_read(p / "nr_hugepages") or 0)
          for p in sorted((root / "sys/kernel/mm/hugepages").glob("hugepages-*"))}
    return {
        "cpus": list(parse_cpulist(online)) if online else None,
        "smt_active": None if (v := _read(sysd / "cpu/smt/active")) is None else v == "1",
        "numa_nodes": nodes,
        "hugepages": hp,
        "iommu_groups": groups,
        "pci_drivers": drivers,
    }


def collect_inventory(*, topo_text: str | None = None, root: Path | str = "/",
                      nvml: ModuleType | Any = nvml_module) -> dict[str, Any]:
    """GPU inventory (the capture if given, else NVML) plus the sysfs host view."""
    if topo_text is not None:
        doc = topo_inventory(topo_text)
    else:
        try:
            doc = nvml_inventory(nvml)
        except NvmlUnavailable as exc:
            doc = {"source": "none", "driver_version": None, "gpus": [], "nics": [],
                   "links": [], "error": str(exc)}
    doc["host"] = sysfs_inventory(root)
    return doc
