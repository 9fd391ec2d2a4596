"""Hardware profiles for hosts built from real `nvidia-smi topo -m` captures.

A capture gives the GPU/NIC matrix, CPU affinity and NUMA affinity; it does
not give GPU models, PCI addresses, core counts or memory. Each profile adds
those facts for the machine the capture came from (see each capture's first
lines), so a demo or test host is the real machine, not an invented one.
"""

from dataclasses import dataclass
from pathlib import Path

from hostagent import sim
from hostagent.topo import parse_topo

CAPTURES = Path(__file__).resolve().parent / "captures"


@dataclass(frozen=True)
class HostProfile:
    kind: str
    capture: str
    gpu_model: str
    gpu_memory_mib: int
    # PCI bus of each GPU, in GPU index order (the real layout of such a board).
    gpu_buses: tuple[int, ...]
    numa_cpus: dict[int, tuple[int, ...]]
    memory_gib: int
    hugepages_1g_per_node: int
    board_name: str
    bios_version: str
    driver_version: str
    vbios: str


def _even_odd(count: int) -> dict[int, tuple[int, ...]]:
    return {0: tuple(range(0, count, 2)), 1: tuple(range(1, count, 2))}


def _nps4_epyc_7742() -> dict[int, tuple[int, ...]]:
    # 2 × EPYC 7742, NPS4: 8 nodes of 16 cores, SMT siblings +128.
    return {n: tuple(range(16 * n, 16 * n + 16)) + tuple(range(128 + 16 * n, 144 + 16 * n))
            for n in range(8)}


PROFILES: dict[str, HostProfile] = {
    "dgx_a100": HostProfile(
        kind="dgx_a100",
        capture="dgx_a100_8x_a100_sxm4_40g.txt",
        gpu_model="A100-SXM4-40GB",
        gpu_memory_mib=40960,
        gpu_buses=(0x07, 0x0F, 0x47, 0x4E, 0x87, 0x90, 0xB7, 0xBD),
        numa_cpus=_nps4_epyc_7742(),
        memory_gib=1024,
        hugepages_1g_per_node=96,
        board_name="DGXA100",
        bios_version="1.25",
        driver_version="535.183.01",
        vbios="92.00.45.00.03",
    ),
    "hgx_h100": HostProfile(
        kind="hgx_h100",
        capture="hgx_h100_8x_sxm5_princeton_pli.txt",
        gpu_model="H100-SXM5-80GB",
        gpu_memory_mib=81559,
        gpu_buses=(0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB),
        # 2 × Xeon Platinum 8468 (48 cores each, SMT): node 0 even, node 1 odd.
        numa_cpus=_even_odd(192),
        memory_gib=2048,
        hugepages_1g_per_node=768,
        board_name="HGX H100 8-GPU",
        bios_version="2.1.4",
        driver_version="545.23.08",
        vbios="96.00.74.00.0B",
    ),
    "pcie_rtx6000ada": HostProfile(
        kind="pcie_rtx6000ada",
        capture="pcie_4x_rtx6000ada_asus_esc8000a_e12.txt",
        gpu_model="RTX-6000-Ada",
        gpu_memory_mib=49140,
        gpu_buses=(0x01, 0x21, 0x81, 0xA1),
        numa_cpus={0: tuple(range(0, 32)), 1: tuple(range(32, 64))},
        memory_gib=512,
        hugepages_1g_per_node=192,
        board_name="ESC8000A-E12",
        bios_version="1102",
        driver_version="550.90.07",
        vbios="95.02.5C.00.02",
    ),
    "consumer_2x_rtx5090": HostProfile(
        kind="consumer_2x_rtx5090",
        capture="consumer_2x_rtx5090_phb.txt",
        gpu_model="RTX-5090",
        gpu_memory_mib=32607,
        gpu_buses=(0x01, 0x21),
        numa_cpus={0: tuple(range(0, 64))},
        memory_gib=256,
        hugepages_1g_per_node=192,
        board_name="TRX40 AORUS XTREME",
        bios_version="F6",
        driver_version="570.124.04",
        vbios="98.02.2E.00.AD",
    ),
}


_NEAR = ("PIX", "PXB", "PHB", "NODE")


def _nic_numa_node(nic: str, topo, gpus: list[dict]) -> int | None:
    """A NIC sits on the NUMA node of the closest GPU that does not cross sockets."""
    best: tuple[int, int | None] = (len(_NEAR), None)
    for gpu in gpus:
        link = topo.link(nic, f"GPU{gpu['index']}")
        if link and link.kind in _NEAR:
            rank = _NEAR.index(link.kind)
            if rank < best[0]:
                best = (rank, gpu["numa_node"])
    return best[1]


def capture_text(kind: str) -> str:
    return (CAPTURES / PROFILES[kind].capture).read_text()


def inventory_for(kind: str, host_name: str, *, group: str = "", index: int = 0) -> dict:
    """The inventory document of a host of this kind (console.core.actions.inventory).

    ``index`` (the host's position in the simulated fleet) picks its check root
    tree: ``facts["sim_root"]``, what its agent is configured with.
    """
    profile = PROFILES[kind]
    topo = parse_topo(capture_text(kind))
    cpu_to_node = {cpu: node for node, cpus in profile.numa_cpus.items() for cpu in cpus}
    node_count = len(profile.numa_cpus)
    gpus = []
    for gpu in topo.gpus:
        affinity = list(gpu.cpu_affinity)
        node = gpu.numa_node
        if node is None and affinity:
            node = cpu_to_node.get(affinity[0])
        # A capture whose CPU affinity cell is empty (or not a real list) still
        # names the NUMA node: the GPU's cores are that node's cores.
        if node is not None and (not affinity or len(affinity) < 2):
            affinity = list(profile.numa_cpus.get(node, ()))
        gpus.append(
            {
                "index": gpu.index,
                "uuid": f"GPU-{host_name}-{gpu.index:02d}",
                "pci_address": f"0000:{profile.gpu_buses[gpu.index]:02x}:00.0",
                "model": profile.gpu_model,
                "memory_mib": profile.gpu_memory_mib,
                "numa_node": node,
                "cpu_affinity": affinity,
            }
        )
    numa_nodes = [
        {
            "node": node,
            "cpus": list(cpus),
            "memory_gib": profile.memory_gib // node_count,
            "hugepages_1g": profile.hugepages_1g_per_node,
        }
        for node, cpus in sorted(profile.numa_cpus.items())
    ]
    first_node = min(profile.numa_cpus)
    return {
        "cpu_count": sum(len(c) for c in profile.numa_cpus.values()),
        "memory_gib": profile.memory_gib,
        "group": group,
        # Two cores of the first node stay with the host (agent, emulator, IRQs).
        "reserved_cores": list(profile.numa_cpus[first_node][:2]),
        "facts": {
            "kind": kind,
            "capture": profile.capture,
            "board_name": profile.board_name,
            "bios_version": profile.bios_version,
            "driver_version": profile.driver_version,
            "vbios": profile.vbios,
            "sim_root": sim.root_for(index),
        },
        "numa_nodes": numa_nodes,
        "gpus": gpus,
        "nics": [
            {"name": nic.name, "label": nic.label,
             "numa_node": nic.numa_node if nic.numa_node is not None
             else _nic_numa_node(nic.name, topo, gpus)}
            for nic in topo.nics
        ],
        "links": [
            {"a": link.a, "b": link.b, "kind": link.kind, "nvlinks": link.nvlinks}
            for link in topo.links
        ],
    }
