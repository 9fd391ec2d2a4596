"""Register or refresh a host from an inventory document.

One document shape, whatever produced it (NVML on a real host, a
`nvidia-smi topo -m` capture, a simulated host)::

    {"cpu_count": 256, "memory_gib": 1024, "facts": {...}, "group": "rack-a",
     "numa_nodes": [{"node": 3, "cpus": [48, …], "memory_gib": 128, "hugepages_1g": 96,
                     "socket": 0}],
     "gpus": [{"index": 0, "uuid": "GPU-…", "pci_address": "0000:07:00.0",
               "model": "A100-SXM4-40GB", "memory_mib": 40960, "numa_node": 3,
               "cpu_affinity": [48, …]}],
     "nics": [{"name": "mlx5_0", "label": "NIC0", "numa_node": 3,
               "pci_address": "0000:0c:00.0", "link_type": "infiniband",
               "sriov_totalvfs": 8, "sriov_numvfs": 8, "vfs": ["0000:0c:00.1", …]}],
     "links": [{"a": "GPU0", "b": "GPU1", "kind": "NV12", "nvlinks": 12}]}
"""

import hashlib
import json

from django.core.exceptions import ValidationError
from django.db import transaction

from console.core import enqueue
from console.core.choices import EventKind
from console.core.models import (
    Cluster,
    Event,
    Gpu,
    GpuLink,
    Host,
    Nic,
    NicVf,
    NicVfClaim,
    NumaNode,
)

# Host.facts keys the agent reports (registration, heartbeats) or the watchdog records
# (the state an OFFLINE host had, restored on its first heartbeat) rather than the inventory.
AGENT_FACTS = ("state_before_offline", "state_reason_before_offline", "hypervisor",
               "protocol_version")


def inventory_digest(inventory: dict) -> str:
    canonical = {k: inventory.get(k) for k in ("gpus", "nics", "links", "numa_nodes")}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _sync_iommu(host: Host, gpus: list[dict]) -> None:
    """Each reported GPU's IOMMU group and the foreign devices in it (the planner never
    passes such a GPU through; the ``iommu.gpu_isolated`` check applies the same rule)."""
    for gpu in gpus:
        if "iommu_group" in gpu or "iommu_foreign" in gpu:
            Gpu.objects.filter(host=host, uuid=gpu["uuid"]).update(
                iommu_group=gpu.get("iommu_group"),
                iommu_foreign=sorted(gpu.get("iommu_foreign") or []),
            )


def _sync_nics(host: Host, nics: list[dict]) -> None:
    """NICs and their SR-IOV virtual functions (``vfs``: PCI addresses, virtfn order).
    Rows are kept and updated, not replaced: a VF a running job holds (``NicVfClaim``)
    stays until the job lets it go, even when the NIC stops being reported."""
    reported = {nic["name"] for nic in nics}
    for row in Nic.objects.filter(host=host).exclude(name__in=reported):
        if not NicVfClaim.objects.filter(vf__nic=row).exists():
            row.delete()
    for nic in nics:
        vfs = [str(v).lower() for v in nic.get("vfs") or []]
        row, _ = Nic.objects.update_or_create(
            host=host, name=nic["name"],
            defaults={"label": nic.get("label", ""), "numa_node": nic.get("numa_node"),
                      "pci_address": (nic.get("pci_address") or "").lower(),
                      "link_type": nic.get("link_type") or "",
                      "sriov_totalvfs": int(nic.get("sriov_totalvfs") or 0),
                      "sriov_numvfs": int(nic.get("sriov_numvfs") or len(vfs))},
        )
        NicVf.objects.filter(nic=row, claim__isnull=True).exclude(pci_address__in=vfs).delete()
        for index, address in enumerate(vfs):
            NicVf.objects.update_or_create(nic=row, index=index,
                                           defaults={"host": host, "pci_address": address})


def _require(gpu: dict, key: str, position: int):
    if gpu.get(key) in (None, ""):
        raise ValidationError({"gpus": [f"GPU #{position} has no {key}."]})
    return gpu[key]


def _sync_gpus(host: Host, gpus: list[dict], *, actor: str) -> None:
    """Bring the host's Gpu rows in line with the inventory's GPUs.

    A reported GPU is the row with its UUID, else the row at its PCI address (a
    board swapped in the same slot), else a new row. Indices shift when a GPU falls
    off the bus, so every row first moves out of the way of the unique (host, index)
    and (host, pci_address) constraints, then takes its reported index and address.
    A row no reported GPU matched is marked failed and keeps its index and address
    unless a present GPU now has them (then it moves past the highest index)."""
    rows = list(Gpu.objects.select_for_update().filter(host=host).order_by("index"))
    by_uuid = {g.uuid: g for g in rows}
    by_pci = {g.pci_address: g for g in rows}
    matched: dict[int, dict] = {}  # row pk -> its reported GPU
    new: list[dict] = []
    for gpu in gpus:
        row = by_uuid.get(gpu["uuid"])
        if row is None or row.pk in matched:
            row = by_pci.get(gpu["pci_address"].lower())
            if row is not None and (row.pk in matched or row.uuid in
                                    {g["uuid"] for g in gpus}):
                row = None  # that row is another reported GPU's
        if row is None:
            new.append(gpu)
        else:
            matched[row.pk] = gpu
    # Out of the way: indices past any reported one, addresses no device has.
    offset = max([int(g["index"]) for g in gpus] + [g.index for g in rows] + [0]) + 1
    for row in rows:
        Gpu.objects.filter(pk=row.pk).update(index=offset + row.index,
                                             pci_address=f"moving-{row.pk}"[:16])
    values = lambda gpu: {  # noqa: E731 - the same fields for an update and a create
        "uuid": gpu["uuid"], "index": int(gpu["index"]),
        "pci_address": gpu["pci_address"].lower(), "model": gpu["model"],
        "memory_mib": int(gpu.get("memory_mib") or 0), "numa_node": gpu.get("numa_node"),
        "cpu_affinity": list(gpu.get("cpu_affinity") or []),
    }
    for row in rows:
        if row.pk in matched:
            gpu = matched[row.pk]
            Gpu.objects.filter(pk=row.pk).update(**values(gpu))
            if row.index != int(gpu["index"]) or row.uuid != gpu["uuid"]:
                Event.objects.create(
                    host=host, kind=EventKind.GPU_RENUMBERED, actor=actor,
                    reason=(f"GPU {row.uuid} ({row.pci_address}) was GPU{row.index}, "
                            f"is GPU{gpu['index']} ({gpu['uuid']}, "
                            f"{gpu['pci_address'].lower()})")[:1000],
                )
    for gpu in new:
        Gpu.objects.create(host=host, **values(gpu))
    taken_index = {int(g["index"]) for g in gpus}
    taken_pci = {g["pci_address"].lower() for g in gpus}
    next_index = offset
    for row in rows:
        if row.pk in matched:
            continue
        index = row.index
        if index in taken_index:
            index, next_index = next_index, next_index + 1
        taken_index.add(index)
        pci = row.pci_address if row.pci_address not in taken_pci else f"gone-{row.pk}"[:16]
        taken_pci.add(pci)
        fields = {"index": index, "pci_address": pci}
        if row.health != "failed":
            fields["health"] = "failed"
            Event.objects.create(
                host=host, kind=EventKind.GPU_MISSING, actor=actor,
                reason=(f"GPU{row.index} {row.uuid} ({row.pci_address}) is missing from "
                        f"the inventory" + (f"; now listed as GPU{index}"
                                            if index != row.index else ""))[:1000],
            )
        Gpu.objects.filter(pk=row.pk).update(**fields)


def _link_ends(link: dict) -> dict:
    (a_gpu, a_nic), (b_gpu, b_nic) = GpuLink.end_of(link["a"]), GpuLink.end_of(link["b"])
    return {"a_gpu": a_gpu, "a_nic": a_nic, "b_gpu": b_gpu, "b_nic": b_nic}


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

    GPUs are matched by UUID (then PCI address) and keep their rows (allocations
    point at them), whatever index the enumeration gives them now; a GPU that
    vanished from the inventory is marked failed rather than deleted (``_sync_gpus``).
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
        facts = {**kept, **(inventory.get("facts") or {})}
        for column in Host.INVENTORY_FACT_COLUMNS:
            limit = Host._meta.get_field(column).max_length
            setattr(host, column, str(facts.pop(column, "") or "")[:limit])
        if "latency_endpoint" in facts:  # else the agent's own, kept across a refresh
            host.latency_endpoint = str(facts.pop("latency_endpoint") or "")[:300]
        host.facts = facts
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
                socket=int(node.get("socket") or 0),
            )
            for node in inventory.get("numa_nodes") or []
        )

        _sync_gpus(host, gpus, actor=actor)

        _sync_iommu(host, gpus)
        _sync_nics(host, inventory.get("nics") or [])
        GpuLink.objects.filter(host=host).delete()
        GpuLink.objects.bulk_create(
            GpuLink(host=host, kind=link["kind"], nvlinks=int(link.get("nvlinks") or 0),
                    **_link_ends(link))
            for link in inventory.get("links") or []
        )
        Event.objects.create(
            host=host,
            kind=EventKind.REGISTERED if created else EventKind.INVENTORY,
            reason=f"{len(gpus)} GPUs, {len(inventory.get('nics') or [])} NICs",
            actor=actor,
        )
        enqueue.request_scheduling_cycle()
    return host
