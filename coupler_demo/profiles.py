"""Inventory documents for simulated hosts, from ``hostagent.sim``.

The machine facts (GPU model, PCI buses, NUMA CPU lists, memory, hugepages,
board/BIOS/driver/VBIOS) live in one place, ``hostagent.sim.KINDS``, next to
the real ``nvidia-smi topo -m`` captures they complete (``hostagent/sim/topo/``).
This module only turns ``hostagent.sim.simulated_host()`` into the console's
inventory document (``console.core.actions.inventory``): seed_demo, rundemo's
agent configuration, ``import_topo --profile`` and the tests all go through
``inventory_for``, so the agent's reports and the seeded inventory agree.
"""

from pathlib import Path

from hostagent import sim

PROFILES = sim.KINDS
CAPTURES: Path = sim.SIM_DIR / "topo"


def capture_text(kind: str) -> str:
    return sim.topo_file_for(kind).read_text()


def inventory_for(kind: str, host_name: str, *, group: str = "", index: int = 0) -> dict:
    """The inventory document of a host of this kind (console.core.actions.inventory).

    ``index`` is the host's position in the simulated fleet (``sim.demo_hosts``):
    it picks the check root tree its agent reads, kept in ``facts["sim_root"]``.
    """
    host = sim.simulated_host(kind, index, name=host_name)
    numa = host["numa_nodes"]
    return {
        "cpu_count": sum(len(n["cpus"]) for n in numa),
        "memory_gib": host["memory_mib"] // 1024,
        "group": group,
        # Two cores of the first node stay with the host (agent, emulator, IRQs).
        "reserved_cores": numa[0]["cpus"][:2],
        "facts": {"kind": kind, **host["facts"], "sim_index": index,
                  "sim_root": host["root_kind"]},
        "numa_nodes": [{"node": n["node"], "cpus": n["cpus"],
                        "memory_gib": n["memory_mib"] // 1024,
                        "hugepages_1g": n["hugepages_1g"], "socket": n["socket"]}
                       for n in numa],
        "gpus": [{"index": g["index"], "uuid": g["uuid"], "pci_address": g["pci"],
                  "model": g["model"], "memory_mib": g["memory_mib"],
                  "numa_node": g["numa_node"], "cpu_affinity": g["cpu_affinity"],
                  "iommu_group": g["iommu_group"], "iommu_foreign": []}
                 for g in host["gpus"]],
        "nics": host["nics"],
        "links": host["links"],
    }
