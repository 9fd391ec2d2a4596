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

from coupler_common.cpulist import parse_cpulist
from hostagent import nvml as nvml_module
from hostagent.nvml import LEVEL_NAMES, NvmlUnavailable
from hostagent.topo import TopoInventory, parse_topo

__all__ = ["GPU_FIELDS", "collect_inventory", "nvml_inventory", "sysfs_inventory", "sysfs_nics",
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


def sysfs_nics(root: Path | str = "/") -> list[dict[str, Any]]:
    """Network PCI functions (class 0x02xxxx) that are not themselves virtual functions:
    name (its ``infiniband/`` or ``net/`` entry), PCI address, NUMA node, link type
    (class 0x0207 is InfiniBand), SR-IOV ``sriov_totalvfs`` / ``sriov_numvfs`` and its
    virtual functions' addresses from the ``virtfn<i>`` links, in index order."""
    pdir = Path(root) / "sys/bus/pci/devices"
    nics: list[dict[str, Any]] = []
    if not pdir.is_dir():
        return nics
    for dev in sorted(pdir.iterdir()):
        cls = (_read(dev / "class") or "").lower()
        if not cls.startswith("0x02") or (dev / "physfn").exists():
            continue
        names = [p.name for sub in ("infiniband", "net") if (dev / sub).is_dir()
                 for p in sorted((dev / sub).iterdir())]
        vfs: list[tuple[int, str]] = []
        for link in dev.glob("virtfn*"):
            suffix = link.name.removeprefix("virtfn")
            if suffix.isdigit():
                try:
                    vfs.append((int(suffix), os.path.basename(os.readlink(link))))
                except OSError:
                    continue
        numa = _read(dev / "numa_node")
        nics.append({
            "name": names[0] if names else dev.name,
            "pci_address": dev.name,
            "numa_node": int(numa) if numa and numa.lstrip("-").isdigit() and int(numa) >= 0
            else None,
            "link_type": "infiniband" if cls.startswith("0x0207") else "ethernet",
            "sriov_totalvfs": int(_read(dev / "sriov_totalvfs") or 0),
            "sriov_numvfs": int(_read(dev / "sriov_numvfs") or 0),
            "vfs": [addr for _, addr in sorted(vfs)],
        })
    return nics


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
        cpus = sorted(parse_cpulist(_read(n / "cpulist")))
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
        "cpus": sorted(parse_cpulist(online)) if online else None,
        "smt_active": None if (v := _read(sysd / "cpu/smt/active")) is None else v == "1",
        "numa_nodes": nodes,
        "hugepages": hp,
        "iommu_groups": groups,
        "pci_drivers": drivers,
        "nics": sysfs_nics(root),
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
    _attach_iommu(doc, Path(root))
    return doc


def iommu_foreign(bdf: str, group_devices: list[str], class_of: Any) -> list[str]:
    """The devices of a GPU's IOMMU group that VFIO would have to pass with it and that
    are not the GPU's own functions (same slot) nor PCI bridges (class 0x0604). One rule
    for the ``iommu.gpu_isolated`` check and the inventory the planner reads."""
    slot = bdf.rsplit(".", 1)[0]
    return [dev for dev in group_devices
            if dev.rsplit(".", 1)[0] != slot and not (class_of(dev) or "").startswith("0x0604")]


def _attach_iommu(doc: dict[str, Any], root: Path) -> None:
    """Each GPU's ``iommu_group`` and ``iommu_foreign`` devices, from the sysfs groups."""
    groups = doc["host"].get("iommu_groups") or {}
    group_of = {dev: name for name, devs in groups.items() for dev in devs}
    for gpu in doc.get("gpus") or []:
        bdf = (gpu.get("pci_bus_id") or "").lower()[-12:]  # NVML pads the domain to 8
        name = group_of.get(bdf)
        if name is None:
            continue
        gpu["iommu_group"] = int(name) if name.isdigit() else None
        gpu["iommu_foreign"] = iommu_foreign(
            bdf, groups[name],
            lambda dev: _read(root / f"sys/bus/pci/devices/{dev}/class"))
