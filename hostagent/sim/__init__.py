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

from coupler_common.cpulist import parse_cpulist
from hostagent.topo import parse_topo

__all__ = [
    "DEMO_FLEET",
    "KINDS",
    "LIBVIRT_MODEL_MAX",
    "ROOT_VARIANTS",
    "SIM_DIR",
    "demo_hosts",
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


# libvirt's virNodeInfo.model is a 32-byte C string: the test driver refuses a
# node file whose <cpu><model> is longer than this ("Model … too big").
LIBVIRT_MODEL_MAX = 31


@dataclass(frozen=True)
class _Kind:
    """The machine a capture came from: every fact the demo, the tests, the agent
    and the console's seeded inventory know about a simulated host of this kind."""

    capture: str
    model: str  # the GPU model as the console, quotas and jobs name it
    nvml_name: str  # the GPU name NVML reports
    gpu_memory_mib: int
    pci_device_id: str
    buses: tuple[int, ...]  # PCI bus of each GPU, in GPU index order
    cpu_model: str  # /proc/cpuinfo "model name"
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    numa_cpus: tuple[str, ...]  # kernel cpulist per NUMA node
    memory_gib: int
    hugepages_1g_per_node: int
    board_name: str
    bios_version: str
    driver_version: str
    vbios: str
    short: str
    node_cpu_model: str = ""  # <model> of the libvirt node file when cpu_model is too long

    @property
    def libvirt_cpu_model(self) -> str:
        return self.node_cpu_model or self.cpu_model


KINDS: dict[str, _Kind] = {
    "dgx_a100": _Kind(
        capture="dgx_a100_8x_a100_sxm4_40g.txt", model="A100-SXM4-40GB",
        nvml_name="NVIDIA A100-SXM4-40GB", gpu_memory_mib=40960, pci_device_id="0x20b0",
        buses=(0x07, 0x0F, 0x47, 0x4E, 0x87, 0x90, 0xB7, 0xBD),
        cpu_model="AMD EPYC 7742 64-Core Processor", sockets=2, cores_per_socket=64,
        threads_per_core=2,
        # NPS4: 8 nodes of 16 cores, SMT siblings +128.
        numa_cpus=tuple(f"{16 * n}-{16 * n + 15},{128 + 16 * n}-{128 + 16 * n + 15}"
                        for n in range(8)),
        memory_gib=1024, hugepages_1g_per_node=96, board_name="DGXA100", bios_version="1.25",
        driver_version="535.183.01", vbios="92.00.45.00.03", short="a100"),
    "hgx_h100": _Kind(
        capture="hgx_h100_8x_sxm5_princeton_pli.txt", model="H100-SXM5-80GB",
        nvml_name="NVIDIA H100 80GB HBM3", gpu_memory_mib=81559, pci_device_id="0x2330",
        buses=(0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB),
        cpu_model="Intel(R) Xeon(R) Platinum 8468", sockets=2, cores_per_socket=48,
        threads_per_core=2,
        # NUMA0 = even CPUs, NUMA1 = odd CPUs on this machine (see the capture).
        numa_cpus=(",".join(str(c) for c in range(0, 192, 2)),
                   ",".join(str(c) for c in range(1, 192, 2))),
        memory_gib=2048, hugepages_1g_per_node=768, board_name="HGX H100 8-GPU",
        bios_version="2.1.4", driver_version="545.23.08", vbios="96.00.74.00.0B", short="h100"),
    "pcie_rtx6000ada": _Kind(
        capture="pcie_4x_rtx6000ada_asus_esc8000a_e12.txt", model="RTX-6000-Ada",
        nvml_name="NVIDIA RTX 6000 Ada Generation", gpu_memory_mib=49140,
        pci_device_id="0x26b1", buses=(0x01, 0x21, 0x81, 0xA1),
        cpu_model="AMD EPYC 9124 16-Core Processor", sockets=2, cores_per_socket=16,
        threads_per_core=2, numa_cpus=("0-31", "32-63"),
        memory_gib=512, hugepages_1g_per_node=192, board_name="ESC8000A-E12",
        bios_version="1102", driver_version="550.90.07", vbios="95.02.5C.00.02", short="rtx6k"),
    "consumer_2x_rtx5090": _Kind(
        capture="consumer_2x_rtx5090_phb.txt", model="RTX-5090",
        nvml_name="NVIDIA GeForce RTX 5090", gpu_memory_mib=32607, pci_device_id="0x2b85",
        buses=(0x01, 0x21),
        # The capture's host is a Threadripper PRO 3975WX (sWRX8, so a WRX80 board),
        # one NUMA node. Its cpuinfo name is longer than libvirt's node model field.
        cpu_model="AMD Ryzen Threadripper PRO 3975WX 32-Cores",
        node_cpu_model="AMD Threadripper PRO 3975WX", sockets=1, cores_per_socket=32,
        threads_per_core=2, numa_cpus=("0-63",), memory_gib=256, hugepages_1g_per_node=192,
        board_name="Pro WS WRX80E-SAGE SE WIFI", bios_version="1201",
        driver_version="570.124.04", vbios="98.02.2E.00.AD", short="rtx5090"),
}

# The demo's fleet: (host name prefix, kind, count, rack). Host names are
# "<prefix>-01"…; a host's index (which root tree it reads, see root_for) is its
# position in this list. seed_demo registers these; rundemo configures their agent.
DEMO_FLEET: tuple[tuple[str, str, int, str], ...] = (
    ("dgx-a100", "dgx_a100", 4, "rack-a"),
    ("hgx-h100", "hgx_h100", 4, "rack-b"),
    ("ada-pcie", "pcie_rtx6000ada", 3, "rack-c"),
    ("ws-5090", "consumer_2x_rtx5090", 2, "rack-c"),
)


def demo_hosts() -> list[tuple[str, str, int, str]]:
    """(name, kind, index, rack) of every host of the demo fleet, in order."""
    out = []
    for prefix, kind, count, rack in DEMO_FLEET:
        for i in range(1, count + 1):
            out.append((f"{prefix}-{i:02d}", kind, len(out), rack))
    return out


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


_NEAR = ("PIX", "PXB", "PHB", "NODE")


def _nic_numa_node(nic: str, topo: Any, gpus: list[dict[str, Any]]) -> int | None:
    """A NIC the capture gives no NUMA node sits on that of its closest GPU
    that does not cross sockets."""
    best: tuple[int, int | None] = (len(_NEAR), None)
    for gpu in gpus:
        link = topo.link(nic, f"GPU{gpu['index']}")
        if link and link.kind in _NEAR:
            rank = _NEAR.index(link.kind)
            if rank < best[0]:
                best = (rank, gpu["numa_node"])
    return best[1]


SIM_VFS_PER_NIC = 8


def _nic_pci(j: int) -> dict[str, Any]:
    """PCI address, link type and SR-IOV virtual functions of the host's j-th NIC. The
    captures name NICs but not their buses: the simulated fleet puts NIC j on bus 0xe0+j
    (no GPU of a captured board uses those) with 8 VFs after the physical function."""
    bus = 0xE0 + j
    vfs = [f"0000:{bus:02x}:{(1 + v) // 8:02x}.{(1 + v) % 8}" for v in range(SIM_VFS_PER_NIC)]
    return {"pci_address": f"0000:{bus:02x}:00.0", "link_type": "infiniband",
            "sriov_totalvfs": SIM_VFS_PER_NIC, "sriov_numvfs": SIM_VFS_PER_NIC, "vfs": vfs}


def simulated_host(kind: str, index: int, name: str | None = None) -> dict[str, Any]:
    """A host of ``kind``: the real machine of the capture, the one source of its facts.

    ``index`` (the host's position in its fleet) picks its check root (``root_for``);
    ``name`` (default ``sim-<model>-NN``) makes its GPU UUIDs unique. PCI addresses
    are the real board's (domain 0000), unique within the host. GPU NUMA nodes and
    links come from the capture; ``cpu_affinity`` is the capture's list, or its NUMA
    node's CPUs where the capture leaves the cell empty or unrendered.
    """
    k = _kind(kind)
    if not isinstance(index, int) or index < 0 or index > 0xFFFF:
        raise ValueError(f"host index must be an integer in 0..65535, got {index!r}")
    topo = parse_topo(topo_file_for(kind).read_text())
    name = name or f"sim-{k.short}-{index:02d}"
    numa = [{"node": n, "cpus": sorted(parse_cpulist(cl)), "memory_mib": k.memory_gib * 1024 // len(k.numa_cpus),
             "hugepages_1g": k.hugepages_1g_per_node,
             # NUMA nodes are numbered socket by socket (NPS4: 0-3 on the first package)
             "socket": n * k.sockets // len(k.numa_cpus)}
            for n, cl in enumerate(k.numa_cpus)]
    cpu_to_node = {cpu: node["node"] for node in numa for cpu in node["cpus"]}
    gpus = []
    for g in topo.gpus:
        affinity = list(g.cpu_affinity)
        node = g.numa_node
        if node is None:
            node = cpu_to_node.get(affinity[0], 0) if affinity else 0
        if len(affinity) < 2:
            affinity = list(numa[node]["cpus"])
        gpus.append({
            "index": g.index,
            "pci": f"0000:{k.buses[g.index]:02x}:00.0",
            "uuid": "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.gpu{g.index}")),
            "model": k.model,
            "nvml_name": k.nvml_name,
            "memory_mib": k.gpu_memory_mib,
            "numa_node": node,
            "cpu_affinity": affinity,
            "iommu_group": 16 + g.index,
            "vbios_version": k.vbios,
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
        "hugepages_1g": k.hugepages_1g_per_node * len(numa),
        "numa_nodes": numa,
        "gpus": gpus,
        "nics": [{"name": n.name, "label": n.label,
                  "numa_node": n.numa_node if n.numa_node is not None
                  else _nic_numa_node(n.name, topo, gpus),
                  **_nic_pci(j)} for j, n in enumerate(topo.nics)],
        "links": topo.to_json()["links"],
        "topology": topo.to_json(),
        "facts": {"board_name": k.board_name, "bios_version": k.bios_version,
                  "driver_version": k.driver_version, "vbios": k.vbios,
                  "capture": k.capture},
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
    model = KINDS[host["kind"]].libvirt_cpu_model
    if len(model) > LIBVIRT_MODEL_MAX:
        raise ValueError(f"CPU model {model!r} is longer than libvirt's {LIBVIRT_MODEL_MAX} "
                         "characters: set node_cpu_model for this kind")
    for tag, value in (("mhz", 2250), ("model", model), ("active", cpu["cpus"]),
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
        ET.SubElement(cap, "product", {"id": KINDS[host["kind"]].pci_device_id}).text = gpu["nvml_name"]
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
