"""Simulated GPU hosts for the demo and the tests.

A simulated host is a real host agent whose hypervisor is libvirt's
``test:///`` driver (a node file generated here), whose GPU inventory comes
from a real ``nvidia-smi topo -m`` capture (``hostagent/sim/topo/``), and whose
checks read a small root tree (``hostagent/sim/roots/``).  Nothing else is
simulated.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostagent.domain_xml import format_cpulist
from hostagent.topo import parse_topo

__all__ = [
    "KINDS",
    "ROOT_VARIANTS",
    "SIM_DIR",
    "node_file_for",
    "node_xml",
    "root_for",
    "root_path",
    "simulated_host",
    "topo_file_for",
]

SIM_DIR = Path(__file__).resolve().parent
ROOTS_DIR = SIM_DIR / "roots"
ROOT_VARIANTS = ("good", "misconfigured/smt_on", "misconfigured/no_hugepages",
                 "misconfigured/thp_always")


@dataclass(frozen=True)
class _Kind:
    capture: str
    model: str
    gpu_memory_mib: int
    pci_device_id: str
    buses: tuple[int, ...]
    cpu_model: str
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    numa_cpus: tuple[str, ...]  # kernel cpulist per NUMA node
    memory_gib: int
    hugepages_1g: int
    short: str


KINDS: dict[str, _Kind] = {
    "dgx_a100": _Kind(
        capture="dgx_a100_8x_a100_sxm4_40g.txt", model="NVIDIA A100-SXM4-40GB",
        gpu_memory_mib=40960, pci_device_id="0x20b0",
        buses=(0x07, 0x0F, 0x47, 0x4E, 0x87, 0x90, 0xB7, 0xBD),
        cpu_model="AMD EPYC 7742 64-Core Processor", sockets=2, cores_per_socket=64,
        threads_per_core=2,
        numa_cpus=tuple(f"{16 * n}-{16 * n + 15},{128 + 16 * n}-{128 + 16 * n + 15}"
                        for n in range(8)),
        memory_gib=1024, hugepages_1g=896, short="a100"),
    "hgx_h100": _Kind(
        capture="hgx_h100_8x_sxm5_princeton_pli.txt", model="NVIDIA H100 80GB HBM3",
        gpu_memory_mib=81559, pci_device_id="0x2330",
        buses=(0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB),
        cpu_model="Intel(R) Xeon(R) Platinum 8468", sockets=2, cores_per_socket=48,
        threads_per_core=2,
        # NUMA0 = even CPUs, NUMA1 = odd CPUs on this machine (see the capture).
        numa_cpus=(",".join(str(c) for c in range(0, 192, 2)),
                   ",".join(str(c) for c in range(1, 192, 2))),
        memory_gib=2048, hugepages_1g=1792, short="h100"),
    "pcie_rtx6000ada": _Kind(
        capture="pcie_4x_rtx6000ada_asus_esc8000a_e12.txt", model="NVIDIA RTX 6000 Ada Generation",
        gpu_memory_mib=49140, pci_device_id="0x26b1", buses=(0x01, 0x21, 0x81, 0xA1),
        cpu_model="AMD EPYC 9124 16-Core Processor", sockets=2, cores_per_socket=16,
        threads_per_core=2, numa_cpus=("0-31", "32-63"),
        memory_gib=768, hugepages_1g=640, short="rtx6k"),
    "consumer_2x_rtx5090": _Kind(
        capture="consumer_2x_rtx5090_phb.txt", model="NVIDIA GeForce RTX 5090",
        gpu_memory_mib=32607, pci_device_id="0x2b85", buses=(0x21, 0x4B),
        cpu_model="AMD Ryzen Threadripper PRO 3975WX 32-Cores", sockets=1, cores_per_socket=32,
        threads_per_core=2, numa_cpus=("0-63",), memory_gib=256, hugepages_1g=192,
        short="rtx5090"),
}


def _cpus(cpulist: str) -> list[int]:
    out: list[int] = []
    for part in cpulist.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return sorted(out)


def _kind(kind: str) -> _Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown simulated host kind {kind!r}; one of {sorted(KINDS)}")
    return KINDS[kind]


def topo_file_for(kind: str) -> Path:
    """The real ``nvidia-smi topo -m`` capture a simulated host of ``kind`` reports."""
    return SIM_DIR / "topo" / _kind(kind).capture


def node_file_for(kind: str) -> Path:
    """The libvirt ``test:///`` node file shipped for ``kind`` (host index 0)."""
    return SIM_DIR / f"node_{kind}.xml"


def root_for(index: int) -> str:
    """Which sim root a host index gets: every fourth host is misconfigured."""
    if index % 4 != 3:
        return "good"
    return ROOT_VARIANTS[1 + (index // 4) % 3]


def root_path(variant: str = "good") -> Path:
    """The shipped check root tree of a variant (``good``, ``misconfigured/…``)."""
    if variant not in ROOT_VARIANTS:
        raise ValueError(f"unknown sim root {variant!r}; one of {list(ROOT_VARIANTS)}")
    return ROOTS_DIR / variant


def simulated_host(kind: str, index: int) -> dict[str, Any]:
    """A plausible host of ``kind``; ``index`` makes the name, UUIDs and PCI addresses unique.

    Each host gets its own PCI segment (domain ``index``), so GPU addresses are
    unique cluster-wide while the bus layout stays that of the real machine.
    GPU NUMA nodes and links come from the capture; ``cpu_affinity`` is the
    GPU's NUMA node's CPUs (the capture's own column is empty on some hosts).
    """
    k = _kind(kind)
    if not isinstance(index, int) or index < 0 or index > 0xFFFF:
        raise ValueError(f"host index must be an integer in 0..65535, got {index!r}")
    inv = parse_topo(topo_file_for(kind).read_text())
    name = f"sim-{k.short}-{index:02d}"
    numa = [{"node": n, "cpus": _cpus(cl), "memory_mib": k.memory_gib * 1024 // len(k.numa_cpus),
             "hugepages_1g": k.hugepages_1g // len(k.numa_cpus)}
            for n, cl in enumerate(k.numa_cpus)]
    gpus = []
    for g in inv.gpus:
        node = g.numa_node if g.numa_node is not None else 0
        gpus.append({
            "index": g.index,
            "pci": f"{index:04x}:{k.buses[g.index]:02x}:00.0",
            "uuid": "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.gpu{g.index}")),
            "model": k.model,
            "memory_mib": k.gpu_memory_mib,
            "numa_node": node,
            "cpu_affinity": numa[node]["cpus"],
            "iommu_group": 16 + g.index,
        })
    root_kind = root_for(index)
    return {
        "name": name,
        "kind": kind,
        "index": index,
        "cpu": {"model": k.cpu_model, "sockets": k.sockets, "cores_per_socket": k.cores_per_socket,
                "threads_per_core": k.threads_per_core,
                "cpus": k.sockets * k.cores_per_socket * k.threads_per_core},
        "memory_mib": k.memory_gib * 1024,
        "hugepages_1g": k.hugepages_1g,
        "numa_nodes": numa,
        "gpus": gpus,
        "nics": [n.__dict__ | {"numa_node": n.numa_node} for n in inv.nics],
        "topology": inv.to_json(),
        "topo_file": str(topo_file_for(kind)),
        "root_kind": root_kind,
        "root": str(ROOTS_DIR / root_kind),
        "libvirt_uri": f"test://{node_file_for(kind)}",
        "domain_type": "test",
    }


def node_xml(host: dict[str, Any]) -> str:
    """A libvirt test-driver node file for a ``simulated_host()`` dict."""
    cpu = host["cpu"]
    node = ET.Element("node")
    node.append(ET.Comment(f" libvirt test:/// node for simulated host {host['name']} "
                           f"({host['kind']}), generated by hostagent.sim.node_xml "))
    cpu_el = ET.SubElement(node, "cpu")
    for tag, value in (("mhz", 2250), ("model", cpu["model"]), ("active", cpu["cpus"]),
                       ("nodes", len(host["numa_nodes"])), ("sockets", cpu["sockets"]),
                       ("cores", cpu["cores_per_socket"]), ("threads", cpu["threads_per_core"])):
        ET.SubElement(cpu_el, tag).text = str(value)
    ET.SubElement(node, "memory").text = str(host["memory_mib"] * 1024)
    for gpu in host["gpus"]:
        dom, bus, rest = gpu["pci"].split(":")
        slot, fn = rest.split(".")
        dev = ET.SubElement(node, "device")
        ET.SubElement(dev, "name").text = "pci_" + gpu["pci"].replace(":", "_").replace(".", "_")
        ET.SubElement(dev, "parent").text = "computer"
        cap = ET.SubElement(dev, "capability", {"type": "pci"})
        ET.SubElement(cap, "class").text = "0x030200"
        for tag, value in (("domain", dom), ("bus", bus), ("slot", slot), ("function", fn)):
            ET.SubElement(cap, tag).text = str(int(value, 16))  # decimal, as libvirt prints
        ET.SubElement(cap, "product", {"id": KINDS[host["kind"]].pci_device_id}).text = gpu["model"]
        ET.SubElement(cap, "vendor", {"id": "0x10de"}).text = "NVIDIA Corporation"
        group = ET.SubElement(cap, "iommuGroup", {"number": str(gpu["iommu_group"])})
        ET.SubElement(group, "address", {"domain": f"0x{dom}", "bus": f"0x{bus}",
                                         "slot": f"0x{slot}", "function": f"0x{fn}"})
        ET.SubElement(cap, "numa", {"node": str(gpu["numa_node"])})
        pcie = ET.SubElement(cap, "pci-express")
        ET.SubElement(pcie, "link", {"validity": "cap", "port": "0", "speed": "16", "width": "16"})
        ET.SubElement(pcie, "link", {"validity": "sta", "speed": "16", "width": "16"})
    ET.indent(node)
    return ET.tostring(node, encoding="unicode") + "\n"


def cpulist(values: list[int]) -> str:
    return format_cpulist(values)
