"""Small builders for scheduler tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from coupler_common.cpulist import parse_cpulist
from scheduler import (
    GpuState,
    HostPlacement,
    HostState,
    JobRequest,
    NicState,
    NumaState,
    Placement,
    Quota,
    RunningJob,
    TenantState,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOPO = FIXTURES / "topo_sched"
ALIBABA = FIXTURES / "alibaba"


def host(
    name: str,
    gpus: int = 8,
    model: str = "A100",
    numa_nodes: int = 1,
    cores_per_numa: int = 32,
    mem_per_numa: int = 256,
    link: str = "NV12",
    group: str = "",
    cordoned: bool = False,
    free_milli: dict[int, int] | None = None,
    vfs_per_nic: int = 16,
) -> HostState:
    """A host whose GPUs spread evenly over its NUMA nodes, all pairs joined by ``link``,
    with one NIC (``vfs_per_nic`` SR-IOV virtual functions) behind each GPU pair (PXB)."""
    per = max(1, gpus // numa_nodes)
    free_milli = free_milli or {}
    gs = tuple(
        GpuState(i, model, min(i // per, numa_nodes - 1), free_milli.get(i, 1000))
        for i in range(gpus)
    )
    numa = tuple(
        NumaState(n, tuple(range(n * cores_per_numa, (n + 1) * cores_per_numa)), mem_per_numa)
        for n in range(numa_nodes)
    )
    links = tuple((a, b, link) for a in range(gpus) for b in range(a + 1, gpus))
    nics = tuple(NicState(f"nic{j}", gs[2 * j].numa_node, vfs_per_nic)
                 for j in range((gpus + 1) // 2))
    nic_links = tuple((i, f"nic{j}", "PXB" if i // 2 == j else "SYS")
                      for i in range(gpus) for j in range(len(nics)))
    return HostState(name, gs, numa, links, cordoned=cordoned, group=group, nics=nics,
                     nic_links=nic_links)


def job(jid: str, tenant: str = "t", gpus: int = 1, **kw: object) -> JobRequest:
    return JobRequest(id=jid, tenant=tenant, gpus_per_host=gpus, **kw)  # type: ignore[arg-type]


def tenant(name: str, weight: float = 1.0, usage: dict[str, float] | None = None,
           **quotas: tuple[float, float]) -> TenantState:
    """``tenant("a", gpus=(2, 8))`` = guaranteed 2, limit 8 GPUs."""
    return TenantState(
        name,
        weight,
        tuple(Quota(k.replace("__", ":"), g, lim) for k, (g, lim) in quotas.items()),
        usage or {},
    )


def running_from(p: Placement, tenant: str, priority: int = 0, preemptible: bool = True,
                 submit_time: float = 0.0) -> RunningJob:
    return RunningJob(p.job_id, tenant, priority, preemptible, submit_time, p.hosts)


def apply(hosts: tuple[HostState, ...], placements: list[HostPlacement]) -> tuple[HostState, ...]:
    """Hosts with the given placements' capacity taken away."""
    by_host: dict[str, list[HostPlacement]] = {}
    for hp in placements:
        by_host.setdefault(hp.host, []).append(hp)
    out = []
    for h in hosts:
        hps = by_host.get(h.name, [])
        used_milli: dict[int, int] = {}
        shared: set[int] = set()
        cores: set[int] = set()
        mem: dict[int, int] = {}
        vfs: dict[str, int] = {}
        for hp in hps:
            for nic, n in hp.nic_vfs:
                vfs[nic] = vfs.get(nic, 0) + n
            for gi in hp.gpu_indices:
                used_milli[gi] = used_milli.get(gi, 0) + hp.gpu_milli
                if hp.gpu_milli < 1000:
                    shared.add(gi)
            cores.update(hp.cores)
            for n, gib in hp.memory_by_numa:
                mem[n] = mem.get(n, 0) + gib
        gpus = tuple(
            replace(g, free_milli=g.free_milli - used_milli.get(g.index, 0),
                    shared=g.shared or g.index in shared)
            for g in h.gpus
        )
        numa = tuple(
            replace(n, free_cores=tuple(c for c in n.free_cores if c not in cores),
                    free_memory_gib=n.free_memory_gib - mem.get(n.node, 0))
            for n in h.numa
        )
        nics = tuple(replace(n, free_vfs=n.free_vfs - vfs.get(n.name, 0)) for n in h.nics)
        out.append(replace(h, gpus=gpus, numa=numa, nics=nics))
    return tuple(out)


def host_from_topo(path: Path, name: str, model: str, numa_cores: dict[int, tuple[int, ...]]
                   | None = None, mem_per_numa: int = 256) -> HostState:
    """A HostState from an ``nvidia-smi topo -m`` capture: GPU rows, link kinds, CPU and NUMA
    affinity. NUMA nodes without a GPU can be added through ``numa_cores``."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    header = lines[0].split()
    ncols = sum(1 for t in header if t.startswith(("GPU", "NIC")) and t[3:].isdigit())
    gpus = []
    links = []
    cores: dict[int, tuple[int, ...]] = dict(numa_cores or {})
    for ln in lines[1:]:
        toks = ln.split()
        if not toks or not toks[0].startswith("GPU"):
            if toks and toks[0] == "Legend:":
                break
            continue
        i = int(toks[0][3:])
        cells = toks[1 : 1 + ncols]
        rest = toks[1 + ncols :]
        for j, kind in enumerate(cells):
            if header[j].startswith("GPU") and j > i:
                links.append((i, j, kind))
        numa = int(rest[1])
        cores.setdefault(numa, tuple(sorted(parse_cpulist(rest[0]))))
        gpus.append(GpuState(i, model, numa))
    numa_states = tuple(NumaState(n, cores[n], mem_per_numa) for n in sorted(cores))
    return HostState(name, tuple(gpus), numa_states, tuple(links))


def host_from_sim(kind: str, name: str, *, mem_per_numa: int = 256,
                  vfs_per_nic: int = 8) -> HostState:
    """A HostState of one of the simulated machine kinds (``hostagent.sim.KINDS``): the real
    capture's GPUs, links, NICs and GPU NUMA nodes, the machine's NUMA CPU lists and
    sockets; each NIC with ``vfs_per_nic`` free SR-IOV virtual functions."""
    from hostagent.sim import simulated_host

    h = simulated_host(kind, 0, name=name)
    model = h["gpus"][0]["model"]
    gpus = tuple(GpuState(g["index"], model, g["numa_node"]) for g in h["gpus"])
    numa = tuple(NumaState(n["node"], tuple(n["cpus"]), mem_per_numa, n["socket"])
                 for n in h["numa_nodes"])
    links = tuple(
        (int(ln["a"][3:]), int(ln["b"][3:]), ln["kind"])
        for ln in h["links"]
        if ln["a"].startswith("GPU") and ln["b"].startswith("GPU") and ln["a"] != ln["b"]
    )
    nics = tuple(NicState(n["name"], n["numa_node"] or 0, vfs_per_nic) for n in h["nics"])
    names = {n.name for n in nics}
    nic_links = tuple((int(ln["a"][3:]), ln["b"], ln["kind"]) for ln in h["links"]
                      if ln["a"].startswith("GPU") and ln["b"] in names)
    return HostState(name, gpus, numa, links, nics=nics, nic_links=nic_links)
