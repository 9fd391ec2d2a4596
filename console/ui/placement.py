"""The job page's placement drawing: per host, its NUMA nodes with the job's
part highlighted (chosen GPUs, the cores pinned on each node, memory), and
the links between the chosen GPUs, from the host's `nvidia-smi topo -m`."""

from console.core.choices import JobState
from console.core.models import Allocation, GpuLink, Job, NumaNode
from coupler_common.cpulist import format_cpulist


def _per_node_memory(alloc: Allocation, node_ids: list[int]) -> dict[int, int] | None:
    """GiB per NUMA node when the allocation records it (``memory_by_numa``);
    None when only the total and the node set are known."""
    by_node = getattr(alloc, "memory_by_numa", None)
    if isinstance(by_node, dict) and by_node:
        return {int(k): int(v) for k, v in by_node.items()}
    if len(node_ids) == 1:
        return {node_ids[0]: alloc.memory_gib}
    return None


def placement_hosts(job: Job) -> list[dict]:
    """One entry per host the job holds now (the matrix stores both a-b and
    b-a; each pair is drawn once)."""
    allocs = list(Allocation.objects.filter(job=job).select_related("host", "gpu"))
    by_host: dict[int, dict] = {}
    for alloc in allocs:
        entry = by_host.setdefault(alloc.host_id, {"host": alloc.host, "cpu": None, "gpus": {}})
        if alloc.gpu_id is None:
            entry["cpu"] = alloc
        else:
            entry["gpus"][alloc.gpu_id] = alloc.milli
    out = []
    for entry in by_host.values():
        host = entry["host"]
        cpu = entry["cpu"]
        cores = set(cpu.cpus if cpu else [])
        job_nodes = sorted(cpu.numa_nodes if cpu else [])
        memory = _per_node_memory(cpu, job_nodes) if cpu else None
        gpus = list(host.gpus.all().order_by("index"))
        chosen = [g for g in gpus if g.pk in entry["gpus"]]
        nodes = []
        node_rows = list(NumaNode.objects.filter(host=host).order_by("node_id"))
        placed_core_ids = set()
        for node in node_rows:
            node_cores = sorted(cores & set(node.cpus))
            placed_core_ids.update(node_cores)
            node_gpus = [{"gpu": g, "chosen": g.pk in entry["gpus"],
                          "milli": entry["gpus"].get(g.pk)}
                         for g in gpus if g.numa_node == node.node_id]
            is_chosen = (node.node_id in job_nodes or bool(node_cores)
                         or any(g["chosen"] for g in node_gpus))
            nodes.append({
                "id": node.node_id, "chosen": is_chosen,
                "all_cores": format_cpulist(node.cpus), "cores": format_cpulist(node_cores),
                "core_count": len(node_cores), "memory_total": node.memory_gib,
                "memory": (memory or {}).get(node.node_id) if is_chosen else None,
                "gpus": node_gpus,
                "serves": [g["gpu"].label for g in node_gpus if g["chosen"]],
            })
        unplaced_gpus = [{"gpu": g, "chosen": g.pk in entry["gpus"],
                          "milli": entry["gpus"].get(g.pk)}
                         for g in gpus if g.numa_node is None]
        indices = [g.index for g in chosen]
        links = [
            {"a": link.a, "b": link.b, "kind": link.kind, "nvlinks": link.nvlinks}
            for link in GpuLink.objects.filter(host=host, a_gpu__in=indices, b_gpu__in=indices)
        ]
        out.append({
            "host": host, "nodes": nodes, "numa_less_gpus": unplaced_gpus,
            "chosen_gpus": [{"gpu": g, "milli": entry["gpus"][g.pk]} for g in chosen],
            "cores": format_cpulist(cores), "core_count": len(cores),
            "cores_off_node": format_cpulist(cores - placed_core_ids),
            "numa_nodes": job_nodes, "memory_gib": cpu.memory_gib if cpu else 0,
            "memory_split_known": memory is not None,
            "links": _dedupe(links),
            "link_groups": _group(_dedupe(links)),
        })
    return out


def _dedupe(links: list[dict]) -> list[dict]:
    seen, out = set(), []
    for link in links:
        key = tuple(sorted((link["a"], link["b"])))
        if key in seen or link["a"] == link["b"]:
            continue
        seen.add(key)
        out.append({**link, "a": key[0], "b": key[1]})
    return sorted(out, key=lambda link: (_gpu_index(link["a"]), _gpu_index(link["b"])))


def _group(links: list[dict]) -> list[dict]:
    """Pairs by link kind, best first: one line per kind, not one per pair
    (8 GPUs have 28 pairs)."""
    groups: dict[tuple[str, int], list[str]] = {}
    for link in links:
        groups.setdefault((link["kind"], link["nvlinks"]), []).append(f"{link['a']} ↔ {link['b']}")
    return [{"kind": kind, "nvlinks": nvlinks, "pairs": pairs}
            for (kind, nvlinks), pairs in sorted(groups.items(), key=lambda kv: -kv[0][1])]


def _gpu_index(label: str) -> int:
    digits = "".join(ch for ch in label if ch.isdigit())
    return int(digits) if digits else 0


def past_placement(job: Job) -> list[dict]:
    """Where a job that holds nothing now last ran (the scheduling event's
    record), so a finished job does not read "never placed"."""
    if job.state in (JobState.QUEUED,):
        return []
    event = (job.events.filter(to_state=JobState.SCHEDULED).order_by("-created_at", "-id")
             .first())
    if event is None or not isinstance(event.data, dict):
        return []
    gpus = event.data.get("gpus") or {}
    return [{"host": name, "gpus": [f"GPU{i}" for i in gpus.get(name, [])]}
            for name in event.data.get("hosts", [])]
