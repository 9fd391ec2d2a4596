"""Register or refresh a host from an inventory document.

One document shape, whatever produced it (NVML on a real host, a
`nvidia-smi topo -m` capture, a simulated host)::

    {"cpu_count": 256, "memory_gib": 1024, "facts": {...}, "group": "rack-a",
     "numa_nodes": [{"node": 3, "cpus": [48, …], "memory_gib": 128, "hugepages_1g": 96}],
     "gpus": [{"index": 0, "uuid": "GPU-…", "pci_address": "0000:07:00.0",
               "model": "A100-SXM4-40GB", "memory_mib": 40960, "numa_node": 3,
               "cpu_affinity": [48, …]}],
     "nics": [{"name": "mlx5_0", "label": "NIC0", "numa_node": 3}],
     "links": [{"a": "GPU0", "b": "GPU1", "kind": "NV12", "nvlinks": 12}]}
"""

import hashlib
import json

from django.core.exceptions import ValidationError
from django.db import transaction

from console.core import enqueue
from console.core.models import Cluster, Event, Gpu, GpuLink, Host, Nic, NumaNode

# Host.facts keys the agent reports (registration, heartbeats) or the watchdog records
# (the state an OFFLINE host had, restored on its first heartbeat) rather than the inventory.
AGENT_FACTS = ("latency_endpoint", "state_before_offline", "state_reason_before_offline")


def inventory_digest(inventory: dict) -> str:
    canonical = {k: inventory.get(k) for k in ("gpus", "nics", "links", "numa_nodes")}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _require(gpu: dict, key: str, position: int):
    if gpu.get(key) in (None, ""):
        raise ValidationError({"gpus": [f"GPU #{position} has no {key}."]})
    return gpu[key]


def do_register_host(
    *,
    cluster: Cluster,
    name: str,
    inventory: dict,
    actor: str = "system",
    simulated: bool = False,
    libvirt_uri: str = "",
) -> Host:
    """Create or update the host and replace its GPUs, NICs, links and NUMA nodes.

    GPUs are matched by index and keep their rows (allocations point at them);
    a GPU that vanished from the inventory is marked failed rather than deleted.
    """
    gpus = inventory.get("gpus") or []
    for position, gpu in enumerate(gpus):
        for key in ("index", "uuid", "pci_address", "model"):
            _require(gpu, key, position)
    with transaction.atomic():
        host, created = Host.objects.select_for_update().get_or_create(
            name=name, defaults={"cluster": cluster}
        )
        host.cluster = cluster
        host.cpu_count = int(inventory.get("cpu_count") or 0)
        host.memory_gib = int(inventory.get("memory_gib") or 0)
        # Facts the agent reports itself (not part of an inventory document) survive a refresh.
        kept = {k: host.facts[k] for k in AGENT_FACTS if k in (host.facts or {})}
        host.facts = {**kept, **(inventory.get("facts") or {})}
        host.group = inventory.get("group", host.group) or ""
        host.reserved_cores = list(inventory.get("reserved_cores") or [])
        host.inventory_digest = inventory_digest(inventory)
        host.simulated = simulated
        if libvirt_uri:
            host.libvirt_uri = libvirt_uri
        host.save()

        NumaNode.objects.filter(host=host).delete()
        NumaNode.objects.bulk_create(
            NumaNode(
                host=host,
                node_id=int(node["node"]),
                cpus=list(node.get("cpus") or []),
                memory_gib=int(node.get("memory_gib") or 0),
                hugepages_1g=int(node.get("hugepages_1g") or 0),
            )
            for node in inventory.get("numa_nodes") or []
        )

        seen = set()
        for gpu in gpus:
            index = int(gpu["index"])
            seen.add(index)
            Gpu.objects.update_or_create(
                host=host,
                index=index,
                defaults={
                    "uuid": gpu["uuid"],
                    "pci_address": gpu["pci_address"].lower(),
                    "model": gpu["model"],
                    "memory_mib": int(gpu.get("memory_mib") or 0),
                    "numa_node": gpu.get("numa_node"),
                    "cpu_affinity": list(gpu.get("cpu_affinity") or []),
                },
            )
        missing = Gpu.objects.filter(host=host).exclude(index__in=seen)
        for gpu in missing:
            if gpu.health != "failed":
                gpu.health = "failed"
                gpu.save(update_fields=["health"])
                Event.objects.create(
                    host=host, kind="gpu_missing", actor=actor,
                    reason=f"GPU{gpu.index} ({gpu.pci_address}) is missing from the inventory",
                )

        Nic.objects.filter(host=host).delete()
        Nic.objects.bulk_create(
            Nic(host=host, name=nic["name"], label=nic.get("label", ""),
                numa_node=nic.get("numa_node"))
            for nic in inventory.get("nics") or []
        )
        GpuLink.objects.filter(host=host).delete()
        GpuLink.objects.bulk_create(
            GpuLink(host=host, a=link["a"], b=link["b"], kind=link["kind"],
                    nvlinks=int(link.get("nvlinks") or 0))
            for link in inventory.get("links") or []
        )
        Event.objects.create(
            host=host,
            kind="registered" if created else "inventory",
            reason=f"{len(gpus)} GPUs, {len(inventory.get('nics') or [])} NICs",
            actor=actor,
        )
        enqueue.request_scheduling_cycle()
    return host
