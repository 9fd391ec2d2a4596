"""Build the scheduler's `Snapshot` from the database.

The scheduling cycle and the what-if page share this: the what-if page passes
``quota_overrides`` (``{tenant_slug: {resource_key: (guaranteed, limit)}}``)
to see the same queue against proposed quotas.

What a host offers:

- a host that is not READY (cordoned, draining, offline), or whose critical
  checks fail without an admin's override, is kept in the snapshot (its running
  jobs still count) but marked ``cordoned``, so nothing new lands on it;
- a GPU that is cordoned or failed is ``healthy=False``;
- free cores of a NUMA node are its cores minus the host's reserved cores minus
  the cores claimed by allocations (``CoreClaim``);
- free memory of a NUMA node is its 1 GiB hugepages (VM memory is backed by
  them) or, on a node without hugepages, its memory, minus what allocations
  hold there: ``Allocation.memory_by_numa`` exactly as planned (migration 0007
  gave rows written before that field existed the split they were read with).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, F
from django.utils import timezone

from console.core.choices import (
    CheckStatus,
    GpuHealth,
    GpuMode,
    HostState,
    Hypervisor,
    JobState,
    PendingCode,
    Risk,
    TeardownOutcome,
)
from console.core.models import (
    Allocation,
    CheckResult,
    CoreClaim,
    Gpu,
    GpuLink,
    Host,
    Image,
    Job,
    Nic,
    NicVf,
    NicVfClaim,
    NumaNode,
    Tenant,
)
from console.core.usage import usage_by_tenant
from scheduler import admissible, workload_from_jobs
from scheduler import model as sm

ARRIVALS_FOR_MIX = 2000

QuotaOverrides = Mapping[str, Mapping[str, tuple[float, float]]]

# Jobs whose allocations the planner may preempt (TEARDOWN jobs are leaving already).
PREEMPTIBLE_STATES = (JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING)


@dataclass(frozen=True)
class SnapshotContext:
    """The snapshot plus what the console needs to act on the plan."""

    snapshot: sm.Snapshot
    # Host names the planner must not use, with why (for pending reasons and metrics).
    unschedulable: Mapping[str, str] = field(default_factory=dict)
    # Queued jobs left out of this cycle because they wait for a retry backoff.
    backoff: Mapping[int, datetime] = field(default_factory=dict)
    # Queued job id → its stored (pending_code, pending_reason, pending_data), so the
    # cycle writes a pending reason only when it changed.
    pending: Mapping[int, tuple[str, str, dict]] = field(default_factory=dict)


def memory_by_numa(memory_gib: int, nodes: list[int] | None,
                   by_numa: list | None) -> dict[int, int]:
    """Node → GiB of one allocation row, as stored at commit (``[[node, GiB], …]``).
    Nothing is inferred: a row on one node has all its memory there, and a row on
    several nodes always carries its split (planning writes it; migration 0007 gave
    it to older rows)."""
    if by_numa:
        out: dict[int, int] = defaultdict(int)
        for node, gib in by_numa:
            out[int(node)] += int(gib)
        return dict(out)
    if not memory_gib:
        return {}
    distinct = sorted(set(nodes or [0]))
    if len(distinct) == 1:
        return {distinct[0]: memory_gib}
    raise ValueError(f"{memory_gib} GiB on NUMA nodes {distinct} without the split stored")


def failing_critical_checks() -> dict[int, list[str]]:
    """host id → ids of its critical checks that fail."""
    failing: dict[int, list[str]] = defaultdict(list)
    rows = CheckResult.objects.filter(risk=Risk.CRITICAL, status=CheckStatus.FAIL).values_list(
        "host_id", "check_id"
    )
    for host_id, check_id in rows:
        failing[host_id].append(check_id)
    return failing


def host_unschedulable_reason(host: Host, failing_checks: list[str]) -> str:
    """Why no new work may land on ``host``, or "" when it may."""
    if host.state != HostState.READY:
        return f"host {host.state}" + (f": {host.state_reason}" if host.state_reason else "")
    if failing_checks and not host.checks_override_reason:
        return "critical checks failing: " + ", ".join(sorted(failing_checks))
    return ""


def catalogue_by_cluster() -> dict[int, frozenset[str]]:
    """Cluster id -> the names of its boot images (one query): a job that names an
    image runs only on hosts of clusters that hold it."""
    names: dict[int, set[str]] = defaultdict(set)
    for cluster_id, name in Image.objects.order_by().values_list("cluster_id", "name"):
        names[cluster_id].add(name)
    return {cid: frozenset(n) for cid, n in names.items()}


class _Topology(NamedTuple):
    """Every host's hardware as plain tuples (one query per table, no model instances:
    at 1,000 hosts that is 8,000 GPUs and tens of thousands of topology cells)."""

    numa: dict[int, list[tuple]]   # host id -> (node_id, cpus, memory_gib, hugepages_1g, socket)
    gpus: dict[int, list[tuple]]   # host id -> (index, model, numa_node, allocated_milli, mode,
    #                                            health, cordoned, iommu_group, iommu_foreign)
    links: dict[int, list[tuple]]  # host id -> (a_gpu, a_nic, b_gpu, b_nic, kind)
    nics: dict[int, list[tuple]]   # host id -> (nic id, name, numa_node)
    vfs: dict[int, int]            # nic id -> its VFs


def _by_host(rows) -> dict[int, list[tuple]]:
    out: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        out[row[0]].append(row[1:])
    return out


def _topology() -> _Topology:
    return _Topology(
        numa=_by_host(NumaNode.objects.order_by("host_id", "node_id").values_list(
            "host_id", "node_id", "cpus", "memory_gib", "hugepages_1g", "socket")),
        gpus=_by_host(Gpu.objects.order_by("host_id", "index").values_list(
            "host_id", "index", "model", "numa_node", "allocated_milli", "mode", "health",
            "cordoned", "iommu_group", "iommu_foreign")),
        # The model's order (GPUs by index, then NICs by name, NULLs last) within a host.
        links=_by_host(GpuLink.objects.order_by(
            "host_id", F("a_gpu").asc(nulls_last=True), "a_nic",
            F("b_gpu").asc(nulls_last=True), "b_nic").values_list(
            "host_id", "a_gpu", "a_nic", "b_gpu", "b_nic", "kind")),
        nics=_by_host(Nic.objects.order_by("host_id", "name").values_list(
            "host_id", "pk", "name", "numa_node")),
        vfs=dict(NicVf.objects.order_by().values("nic_id").annotate(n=Count("pk"))
                 .values_list("nic_id", "n")),
    )


# The Host columns the snapshot reads (not facts, inventory or the rest).
HOST_FIELDS = ("pk", "name", "state", "state_reason", "checks_override_reason",
               "reserved_cores", "group", "hypervisor", "cluster_id")


def _gpu_states(rows: list[tuple], *, idle: bool = False) -> tuple[sm.GpuState, ...]:
    """``idle``: at full size (nothing allocated, a cordon ignored), as at submit time."""
    return tuple(
        sm.GpuState(
            index=index,
            model=model,
            numa_node=numa_node if numa_node is not None else 0,
            free_milli=1000 if idle else max(0, 1000 - allocated_milli),
            shared=False if idle else mode == GpuMode.SHARED,
            healthy=health != GpuHealth.FAILED and (idle or not cordoned),
            iommu_group=iommu_group if iommu_group is not None else -1,
            iommu_foreign=bool(iommu_foreign),
        )
        for (index, model, numa_node, allocated_milli, mode, health, cordoned, iommu_group,
             iommu_foreign) in rows
    )


def _host_states(hosts: list[Host]) -> tuple[list[sm.HostState], dict[str, str]]:
    host_ids = [h.pk for h in hosts]
    catalogue = catalogue_by_cluster()
    topology = _topology()
    claimed: dict[int, set[int]] = defaultdict(set)
    for host_id, core in CoreClaim.objects.filter(host_id__in=host_ids).order_by().values_list(
        "host_id", "core"
    ):
        claimed[host_id].add(core)
    memory_used: dict[tuple[int, int], int] = defaultdict(int)
    for host_id, nodes, memory, by_numa in Allocation.objects.filter(
        host_id__in=host_ids, gpu__isnull=True
    ).order_by().values_list("host_id", "numa_nodes", "memory_gib", "memory_by_numa"):
        for node, gib in memory_by_numa(memory, nodes, by_numa).items():
            memory_used[(host_id, node)] += gib
    failing = failing_critical_checks()
    claimed_vfs: dict[int, int] = defaultdict(int)  # nic id -> VFs held
    for nic_id in NicVfClaim.objects.filter(vf__host_id__in=host_ids).order_by().values_list(
        "vf__nic_id", flat=True
    ):
        claimed_vfs[nic_id] += 1

    states: list[sm.HostState] = []
    unschedulable: dict[str, str] = {}
    for host in hosts:
        reason = host_unschedulable_reason(host, failing.get(host.pk, []))
        if reason:
            unschedulable[host.name] = reason
        reserved = set(host.reserved_cores or [])
        taken = claimed.get(host.pk, ())
        numa = []
        for node_id, cpus, memory_gib, hugepages_1g, socket in topology.numa.get(host.pk, ()):
            capacity = hugepages_1g or memory_gib
            free_cores = tuple(c for c in cpus if c not in reserved and c not in taken)
            numa.append(
                sm.NumaState(
                    node=node_id,
                    free_cores=free_cores,
                    free_memory_gib=max(0, capacity - memory_used.get((host.pk, node_id), 0)),
                    socket=socket,
                )
            )
        nics = tuple(
            sm.NicState(name=name, numa_node=numa_node or 0,
                        free_vfs=topology.vfs.get(nic_id, 0) - claimed_vfs.get(nic_id, 0))
            for nic_id, name, numa_node in topology.nics.get(host.pk, ())
        )
        links, nic_links = _links(topology.links.get(host.pk, ()), {n.name for n in nics})
        states.append(
            sm.HostState(
                name=host.name,
                gpus=_gpu_states(topology.gpus.get(host.pk, ())),
                numa=tuple(numa),
                links=links,
                cordoned=bool(reason),
                group=host.group,
                nics=nics,
                nic_links=nic_links,
                kvm=host.hypervisor == Hypervisor.KVM,
                images=catalogue.get(host.cluster_id, frozenset()),
            )
        )
    return states, unschedulable


def _links(rows, nic_names: set[str]) -> tuple[tuple, tuple]:
    """GPU pairs ``(a, b, kind)`` and GPU-to-NIC cells ``(gpu, nic, kind)`` of the matrix
    (``rows``: a host's ``(a_gpu, a_nic, b_gpu, b_nic, kind)``)."""
    links, nic_links = [], []
    for a, a_nic, b, b_nic, kind in rows:
        if a is not None and b is not None and a != b:
            links.append((a, b, kind))
        elif a is not None and b_nic in nic_names:
            nic_links.append((a, b_nic, kind))
        elif b is not None and a_nic in nic_names:
            nic_links.append((b, a_nic, kind))
    return tuple(links), tuple(nic_links)


def full_size_hosts() -> list[sm.HostState]:
    """Every host at its full size (GPUs idle, every unreserved core and all memory free),
    for the submit-time question whether a job could EVER be placed NUMA-true."""
    hosts = list(Host.objects.only(*HOST_FIELDS).order_by("name"))
    topology = _topology()
    states = []
    catalogue = catalogue_by_cluster()
    for host in hosts:
        reserved = set(host.reserved_cores or [])
        numa = tuple(
            sm.NumaState(node=node_id, free_cores=tuple(c for c in cpus if c not in reserved),
                         free_memory_gib=hugepages_1g or memory_gib, socket=socket)
            for node_id, cpus, memory_gib, hugepages_1g, socket in topology.numa.get(host.pk, ())
        )
        nics = tuple(sm.NicState(name=name, numa_node=numa_node or 0,
                                 free_vfs=topology.vfs.get(nic_id, 0))
                     for nic_id, name, numa_node in topology.nics.get(host.pk, ()))
        links, nic_links = _links(topology.links.get(host.pk, ()), {n.name for n in nics})
        states.append(sm.HostState(name=host.name,
                                   gpus=_gpu_states(topology.gpus.get(host.pk, ()), idle=True),
                                   numa=numa, links=links,
                                   group=host.group, nics=nics, nic_links=nic_links,
                                   kvm=host.hypervisor == Hypervisor.KVM,
                                   images=catalogue.get(host.cluster_id, frozenset())))
    return states


def numa_errors(job: Job) -> dict[str, list[str]]:
    """Submit-time: the job can never get its vCPUs and memory on its GPUs' NUMA nodes
    (in proportion to the GPUs on each) on enough hosts, even with the cluster empty."""
    if not job.vcpus_per_host and not job.memory_gib_per_host:
        return {}
    request = sm.JobRequest(
        id="submit", tenant="submit", gpus_per_host=job.gpus_per_host, hosts=job.host_count,
        gpu_models=(job.gpu_model,) if job.gpu_model else (), gpu_milli=job.gpu_milli,
        vcpus_per_host=job.vcpus_per_host, memory_gib_per_host=job.memory_gib_per_host,
        rdma=job.rdma, single_leaf=job.single_leaf, require_kvm=job.require_kvm,
        image=job.image,
    )
    hosts = full_size_hosts()
    if not hosts:
        return {}
    reason = admissible(request, sm.TenantState(name="submit"), hosts)
    if reason is None or reason.code != PendingCode.LARGER_THAN_ANY_HOST:
        return {}
    field = "vcpus_per_host"
    if request.needs_nic_vfs:
        plain = admissible(dataclasses.replace(request, rdma=False, hosts=1),
                           sm.TenantState(name="submit"), hosts)
        if plain is None:  # the GPUs, cores and memory exist; the close NICs do not
            field = "rdma" if job.rdma else "hosts"
            return {field: [f"Can never run: {request.hosts} host(s) needed with a free NIC "
                            "virtual function at PIX/PXB distance from the job's GPUs "
                            "(GPUDirect RDMA); no such host is registered."]}
    return {field: [reason.message]}


def _quotas(tenant: Tenant, overrides: Mapping[str, tuple[float, float]]) -> tuple[sm.Quota, ...]:
    quotas = {q.resource_key: (float(q.guaranteed), float(q.limit)) for q in tenant.quotas.all()}
    for key, (guaranteed, limit) in overrides.items():
        quotas[key] = (float(guaranteed), float(limit))
    return tuple(
        sm.Quota(resource=key, guaranteed=g, limit=lim) for key, (g, lim) in sorted(quotas.items())
    )


def job_request(job: Job) -> sm.JobRequest:
    return sm.JobRequest(
        id=str(job.pk),
        tenant=job.tenant.slug,
        gpus_per_host=job.gpus_per_host,
        hosts=job.host_count,
        gpu_models=(job.gpu_model,) if job.gpu_model else (),
        gpu_milli=job.gpu_milli,
        vcpus_per_host=job.vcpus_per_host,
        memory_gib_per_host=job.memory_gib_per_host,
        priority=job.priority,
        preemptible=job.preemptible,
        submit_time=job.submitted_at.timestamp(),
        rdma=job.rdma,
        single_leaf=job.single_leaf,
        require_kvm=job.require_kvm,
        image=job.image,
    )


# job_request's fields, in the order _request_of_row reads them.
REQUEST_FIELDS = ("pk", "tenant__slug", "gpus_per_host", "host_count", "gpu_model",
                  "gpu_milli", "vcpus_per_host", "memory_gib_per_host", "priority",
                  "preemptible", "submitted_at", "rdma", "single_leaf", "require_kvm", "image")


def _request_of_row(row: tuple) -> sm.JobRequest:
    """``job_request`` of a ``values_list(*REQUEST_FIELDS, …)`` row."""
    (pk, slug, gpus_per_host, host_count, gpu_model, gpu_milli, vcpus, memory, priority,
     preemptible, submitted_at, rdma, single_leaf, require_kvm, image) = row[:15]
    return sm.JobRequest(
        id=str(pk),
        tenant=slug,
        gpus_per_host=gpus_per_host,
        hosts=host_count,
        gpu_models=(gpu_model,) if gpu_model else (),
        gpu_milli=gpu_milli,
        vcpus_per_host=vcpus,
        memory_gib_per_host=memory,
        priority=priority,
        preemptible=preemptible,
        submit_time=submitted_at.timestamp(),
        rdma=rdma,
        single_leaf=single_leaf,
        require_kvm=require_kvm,
        image=image,
    )


class _PlacedJob(NamedTuple):
    tenant_slug: str
    priority: int
    preemptible: bool
    submitted_at: datetime


def _running_jobs(host_names: dict[int, str], *, leaving: bool = False) -> tuple[sm.RunningJob, ...]:
    """Placed jobs as the scheduler sees them: the preemptible states, or (``leaving``)
    the jobs in TEARDOWN because the scheduler preempted them. Those still hold their
    GPUs, cores and memory and count in their tenant's usage until the teardown
    finishes; the planner (``Snapshot.leaving``) counts that capacity as coming back
    and preempts nothing more meanwhile."""
    if leaving:
        rows = Job.objects.filter(
            state=JobState.TEARDOWN, teardown_outcome=TeardownOutcome.PREEMPTED
        )
    else:
        rows = Job.objects.filter(state__in=PREEMPTIBLE_STATES)
    # Plain tuples, not model instances: a cycle reads every placed job's rows, so
    # this is the snapshot's biggest read (no default ordering, no GPU join but
    # for its index).
    jobs = {
        pk: _PlacedJob(slug, priority, preemptible, submitted_at)
        for pk, slug, priority, preemptible, submitted_at in rows.order_by().values_list(
            "pk", "tenant__slug", "priority", "preemptible", "submitted_at")
    }
    per_job: dict[int, dict[int, dict]] = defaultdict(dict)
    allocations = (
        Allocation.objects.filter(job_id__in=list(jobs)).order_by("job_id", "host_id", "gpu__index")
        .values_list("job_id", "host_id", "gpu_id", "gpu__index", "milli", "cpus", "numa_nodes",
                     "memory_gib", "memory_by_numa")
    ) if jobs else []
    for (job_id, host_id, gpu_id, gpu_index, milli, cpus, numa_nodes, memory_gib,
         by_numa) in allocations:
        slot = per_job[job_id].setdefault(
            host_id,
            {"gpus": [], "milli": 1000, "cores": (), "nodes": (), "memory": 0, "by_numa": {}},
        )
        if gpu_id is None:
            slot["cores"] = tuple(cpus or ())
            slot["nodes"] = tuple(numa_nodes or ())
            slot["memory"] = memory_gib
            slot["by_numa"] = memory_by_numa(memory_gib, numa_nodes, by_numa)
        else:
            slot["gpus"].append(gpu_index)
            slot["milli"] = milli
    running = []
    for job_id, hosts in per_job.items():
        job = jobs[job_id]
        placement = tuple(
            sm.HostPlacement(
                host=host_names.get(host_id, str(host_id)),
                gpu_indices=tuple(slot["gpus"]),
                gpu_milli=slot["milli"],
                cores=slot["cores"],
                numa_nodes=slot["nodes"],
                memory_gib=slot["memory"],
                memory_by_numa=tuple(sorted(slot["by_numa"].items())),
            )
            for host_id, slot in sorted(hosts.items())
        )
        running.append(
            sm.RunningJob(
                id=str(job_id),
                tenant=job.tenant_slug,
                priority=job.priority,
                preemptible=job.preemptible,
                submit_time=job.submitted_at.timestamp(),
                placement=placement,
            )
        )
    return tuple(running)


def build_snapshot_context(
    *,
    quota_overrides: QuotaOverrides | None = None,
    now: datetime | None = None,
    policy: str | None = None,
) -> SnapshotContext:
    """Read hosts, tenants, queued and placed jobs into a `SnapshotContext`."""
    now = now or timezone.now()
    overrides = quota_overrides or {}
    hosts = list(Host.objects.only(*HOST_FIELDS).order_by("name"))
    host_states, unschedulable = _host_states(hosts)
    usage = usage_by_tenant()
    tenants = tuple(
        sm.TenantState(
            name=t.slug,
            weight=float(t.weight),
            quotas=_quotas(t, overrides.get(t.slug, {})),
            usage=usage.get(t.pk, {}),
        )
        for t in Tenant.objects.prefetch_related("quotas").order_by("slug")
    )
    # Rows, not model instances: the queue can be 10,000 jobs long.
    queued_rows = list(
        Job.objects.filter(state=JobState.QUEUED).order_by("submitted_at", "id")
        .values_list(*REQUEST_FIELDS, "not_before", "pending_code", "pending_reason",
                     "pending_data")
    )
    backoff = {}
    queued = []
    pending = {}
    for row in queued_rows:
        job_id, not_before = row[0], row[-4]
        pending[job_id] = row[-3:]
        if not_before and not_before > now:
            backoff[job_id] = not_before
        else:
            queued.append(_request_of_row(row))
    host_names = {h.pk: h.name for h in hosts}
    # FGD measures fragmentation against the workload's distribution, estimated (as the
    # paper does) from arrivals: the shapes of the last ARRIVALS_FOR_MIX submitted jobs.
    recent = Job.objects.order_by("-submitted_at").values_list(
        *REQUEST_FIELDS)[:ARRIVALS_FOR_MIX]
    snapshot = sm.Snapshot(
        hosts=tuple(host_states),
        tenants=tenants,
        queued=tuple(queued),
        running=_running_jobs(host_names),
        leaving=_running_jobs(host_names, leaving=True),
        workload=workload_from_jobs(_request_of_row(row) for row in recent),
        **({"policy": policy} if policy else {}),
    )
    return SnapshotContext(snapshot=snapshot, unschedulable=unschedulable, backoff=backoff,
                           pending=pending)


def build_snapshot(
    *,
    quota_overrides: QuotaOverrides | None = None,
    now: datetime | None = None,
    policy: str | None = None,
) -> sm.Snapshot:
    """The scheduler's view of the cluster right now (what-if: with ``quota_overrides``)."""
    return build_snapshot_context(quota_overrides=quota_overrides, now=now, policy=policy).snapshot


__all__ = [
    "QuotaOverrides",
    "SnapshotContext",
    "build_snapshot",
    "build_snapshot_context",
    "full_size_hosts",
    "host_unschedulable_reason",
    "job_request",
    "memory_by_numa",
    "numa_errors",
]
