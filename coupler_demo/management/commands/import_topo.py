"""Register a host from a real `nvidia-smi topo -m` capture.

    manage.py import_topo CAPTURE.txt --host NAME --cluster SLUG --gpu-model MODEL \\
        [--gpu-memory-mib N] [--pci-bus 07,0f,…] [--memory-gib N] [--group RACK]

or with a known machine profile (fills model, PCI buses, cores, memory):

    manage.py import_topo --profile dgx_a100 --host dgx-01 --cluster demo
"""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.core.actions.inventory import do_register_host
from console.core.models import Cluster
from coupler_demo.profiles import PROFILES, inventory_for
from hostagent.topo import TopoParseError, parse_topo


def _cpus_by_node(topo) -> dict[int, list[int]]:
    nodes: dict[int, set[int]] = {}
    for gpu in topo.gpus:
        if gpu.numa_node is not None:
            nodes.setdefault(gpu.numa_node, set()).update(gpu.cpu_affinity)
    return {node: sorted(cpus) for node, cpus in nodes.items()}


class Command(BaseCommand):
    help = "Register or refresh a host from an nvidia-smi topo -m capture."

    def add_arguments(self, parser):
        parser.add_argument("capture", nargs="?", help="nvidia-smi topo -m output")
        parser.add_argument("--host", required=True)
        parser.add_argument("--cluster", required=True, help="cluster slug (created if missing)")
        parser.add_argument("--profile", choices=sorted(PROFILES))
        parser.add_argument("--gpu-model")
        parser.add_argument("--gpu-memory-mib", type=int, default=0)
        parser.add_argument("--pci-bus", default="", help="GPU PCI buses in index order, hex")
        parser.add_argument("--memory-gib", type=int, default=0)
        parser.add_argument("--group", default="")

    def handle(self, *args, **opts):
        cluster, _ = Cluster.objects.get_or_create(
            slug=opts["cluster"], defaults={"name": opts["cluster"]}
        )
        if opts["profile"]:
            inventory = inventory_for(opts["profile"], opts["host"], group=opts["group"])
        else:
            inventory = self._inventory_from_capture(opts)
        try:
            host = do_register_host(
                cluster=cluster, name=opts["host"], inventory=inventory, actor="import_topo"
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            f"registered {host.name}: {host.gpus.count()} GPUs, {host.nics.count()} NICs, "
            f"{host.links.count()} links, {host.numa_nodes.count()} NUMA nodes"
        )

    def _inventory_from_capture(self, opts) -> dict:
        if not opts["capture"]:
            raise CommandError("give a capture file or --profile")
        if not opts["gpu_model"]:
            raise CommandError("a capture does not name the GPU model: pass --gpu-model")
        path = Path(opts["capture"])
        try:
            topo = parse_topo(path.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        except TopoParseError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        buses = [b for b in opts["pci_bus"].split(",") if b]
        if buses and len(buses) != len(topo.gpus):
            raise CommandError(f"--pci-bus names {len(buses)} buses for {len(topo.gpus)} GPUs")
        try:
            bus_numbers = [int(b, 16) for b in buses]
        except ValueError as exc:
            raise CommandError(f"--pci-bus: {exc}") from exc
        cpus_by_node = _cpus_by_node(topo)
        all_cpus = sorted({c for cpus in cpus_by_node.values() for c in cpus})
        return {
            "cpu_count": len(all_cpus),
            "memory_gib": opts["memory_gib"],
            "group": opts["group"],
            "numa_nodes": [
                {"node": node, "cpus": cpus,
                 "memory_gib": opts["memory_gib"] // max(len(cpus_by_node), 1)}
                for node, cpus in sorted(cpus_by_node.items())
            ],
            "gpus": [
                {
                    "index": gpu.index,
                    "uuid": f"GPU-{opts['host']}-{gpu.index:02d}",
                    "pci_address": f"0000:{(bus_numbers[i] if bus_numbers else i + 1):02x}:00.0",
                    "model": opts["gpu_model"],
                    "memory_mib": opts["gpu_memory_mib"],
                    "numa_node": gpu.numa_node,
                    "cpu_affinity": list(gpu.cpu_affinity),
                }
                for i, gpu in enumerate(topo.gpus)
            ],
            "nics": [{"name": n.name, "label": n.label, "numa_node": n.numa_node}
                     for n in topo.nics],
            "links": topo.to_json()["links"],
        }
