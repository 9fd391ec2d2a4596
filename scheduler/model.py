"""Frozen inputs and outputs of the planner.

Everything here is a plain value: the console builds a `Snapshot` from its database rows,
calls `scheduler.plan(snapshot)` and commits the returned `Plan`. Nothing in this package
does I/O or keeps state between calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

WHOLE_GPU_MILLI = 1000

# Quota / usage resource keys.
GPUS = "gpus"  # whole GPUs, any model
GPU_MILLI = "gpu_milli"  # GPU shares (time-sliced), in milli-GPU
VCPUS = "vcpus"
MEMORY_GIB = "memory_gib"


def gpus_of_model(model: str) -> str:
    """The quota key for whole GPUs of one model, e.g. ``gpus:A100``."""
    return f"{GPUS}:{model}"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, slots=True)
class GpuState:
    """One GPU as the planner sees it.

    ``free_milli`` is 1000 for an idle GPU, 0 for a GPU passed through to a job, and in
    between for a GPU in shared (time-sliced) mode. ``shared`` marks a GPU already in shared
    mode even when no share is currently allocated on it; such a GPU only takes shares.
    """

    index: int
    model: str
    numa_node: int
    free_milli: int = WHOLE_GPU_MILLI
    shared: bool = False
    healthy: bool = True
    # IOMMU group (VFIO passes a whole group): GPUs of one group are passed through
    # together or not at all; ``iommu_foreign`` marks a group that also holds a device
    # other than GPUs and bridges, so the GPU cannot be passed through (shares still can).
    iommu_group: int = -1
    iommu_foreign: bool = False

    @property
    def in_shared_mode(self) -> bool:
        return self.shared or 0 < self.free_milli < WHOLE_GPU_MILLI


@dataclass(frozen=True, slots=True)
class NumaState:
    """Free CPU cores (ids) and free memory of one NUMA node, and the CPU socket (package)
    it belongs to: among equally connected GPU sets the planner takes the one on the fewest
    NUMA nodes, then the fewest sockets."""

    node: int
    free_cores: tuple[int, ...] = ()
    free_memory_gib: int = 0
    socket: int = 0


@dataclass(frozen=True, slots=True)
class NicState:
    """A NIC (physical function) and how many of its SR-IOV virtual functions are free."""

    name: str
    numa_node: int = 0
    free_vfs: int = 0


@dataclass(frozen=True, slots=True)
class HostState:
    """A host's free capacity and GPU interconnect.

    ``links`` holds ``(gpu_a, gpu_b, kind)`` with kind as printed by ``nvidia-smi topo -m``
    ("NV12", "PIX", "PXB", "PHB", "NODE", "SYS"). A pair without a link row is taken as
    NODE when both GPUs sit on the same NUMA node and SYS otherwise.
    """

    name: str
    gpus: tuple[GpuState, ...] = ()
    numa: tuple[NumaState, ...] = ()
    links: tuple[tuple[int, int, str], ...] = ()
    cordoned: bool = False
    group: str = ""
    nics: tuple[NicState, ...] = ()
    # ``(gpu_index, nic_name, kind)`` with kind from ``nvidia-smi topo -m`` (PIX, PXB, …)
    nic_links: tuple[tuple[int, str, str], ...] = ()
    # The host runs its VMs under KVM (its agent's probe); False: QEMU's TCG emulation
    # or not known. Only jobs with ``JobRequest.require_kvm`` look at it.
    kvm: bool = False
    # The boot images its cluster's catalogue holds (by name): a job that names an
    # image runs only where it is.
    images: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Quota:
    """Per tenant and resource: ``guaranteed`` is never lent away while the tenant wants it,
    ``limit`` is a hard cap. Between the two the tenant borrows (preemptible) capacity."""

    resource: str
    guaranteed: float = 0.0
    limit: float = float("inf")


@dataclass(frozen=True, slots=True)
class TenantState:
    """A tenant: DRF weight, quotas and current usage (resource key -> amount).

    ``usage`` is authoritative (the console derives it from allocation rows; see
    `scheduler.quotas.usage_from_running` for a helper that derives it from running jobs).
    """

    name: str
    weight: float = 1.0
    quotas: tuple[Quota, ...] = ()
    usage: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage", _frozen_mapping(self.usage))

    def quota(self, resource: str) -> Quota | None:
        for q in self.quotas:
            if q.resource == resource:
                return q
        return None


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A queued job. ``gpu_milli`` in 1..999 asks for a GPU share on each of its GPUs;
    ``None`` (or 0, or 1000) asks for whole GPUs passed through. ``hosts`` > 1 makes a
    gang of identical per-host parts."""

    id: str
    tenant: str
    gpus_per_host: int = 0
    hosts: int = 1
    gpu_models: tuple[str, ...] = ()
    gpu_milli: int | None = None
    vcpus_per_host: int = 0
    memory_gib_per_host: int = 0
    priority: int = 0
    preemptible: bool = True
    submit_time: float = 0.0
    # GPUDirect RDMA: one NIC virtual function at PIX/PXB distance per GPU (always for
    # a multi-host job); ``single_leaf``: a gang waits rather than span leaf switches.
    rdma: bool = False
    single_leaf: bool = False
    # Hardware virtualisation: every host of the job (each gang member) runs KVM.
    require_kvm: bool = False
    # The boot image the job names ("" = each cluster's default): hosts must hold it.
    image: str = ""

    @property
    def needs_nic_vfs(self) -> bool:
        return (self.rdma or self.hosts > 1) and self.gpus_per_host > 0 and not self.is_share

    @property
    def milli_per_gpu(self) -> int:
        if self.gpu_milli is None or not 0 < self.gpu_milli < WHOLE_GPU_MILLI:
            return WHOLE_GPU_MILLI
        return self.gpu_milli

    @property
    def is_share(self) -> bool:
        return self.gpus_per_host > 0 and self.milli_per_gpu < WHOLE_GPU_MILLI


@dataclass(frozen=True, slots=True)
class HostPlacement:
    """What a job gets on one host. ``gpu_milli`` is per GPU (1000 = whole GPU).
    ``memory_by_numa`` says how ``memory_gib`` is split over NUMA nodes."""

    host: str
    gpu_indices: tuple[int, ...] = ()
    gpu_milli: int = WHOLE_GPU_MILLI
    cores: tuple[int, ...] = ()
    numa_nodes: tuple[int, ...] = ()
    memory_gib: int = 0
    memory_by_numa: tuple[tuple[int, int], ...] = ()
    nic_vfs: tuple[tuple[str, int], ...] = ()  # (NIC name, virtual functions taken)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """Work already placed: counts toward usage and may be preempted."""

    id: str
    tenant: str
    priority: int = 0
    preemptible: bool = True
    submit_time: float = 0.0
    placement: tuple[HostPlacement, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkloadClass:
    """One kind of task in the typical job mix that fragmentation is measured against
    (per host: GPUs, milli per GPU, vCPUs, GiB) with its share of the mix as ``weight``."""

    gpus: int
    gpu_milli: int = WHOLE_GPU_MILLI
    vcpus: int = 0
    memory_gib: int = 0
    gpu_models: tuple[str, ...] = ()
    weight: float = 1.0


DEFAULT_POLICY = "fgd-strand"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one planning cycle looks at. ``workload`` is the job mix the
    fragmentation-aware policies measure against (the console estimates it from recent
    arrivals); when empty it is taken from ``queued``."""

    hosts: tuple[HostState, ...]
    tenants: tuple[TenantState, ...]
    queued: tuple[JobRequest, ...]
    running: tuple[RunningJob, ...] = ()
    policy: str = DEFAULT_POLICY
    workload: tuple[WorkloadClass, ...] = ()
    # Jobs already being preempted (tearing down): their capacity is still held (not free
    # on ``hosts``) and still counted in ``TenantState.usage``, but it is coming back.
    leaving: tuple[RunningJob, ...] = ()


@dataclass(frozen=True, slots=True)
class Placement:
    """A decision to start a job. ``link_kind`` is the worst GPU link inside any one host of
    the placement ("" for jobs with fewer than two GPUs per host); ``local`` is False when
    some cores or memory had to come from NUMA nodes not local to the job's GPUs."""

    job_id: str
    hosts: tuple[HostPlacement, ...]
    link_kind: str = ""
    local: bool = True
    score: float = 0.0
    leaves: int = 1  # leaf switches (distinct ``HostState.group``) the hosts span


@dataclass(frozen=True, slots=True)
class Preemption:
    job_id: str
    reason: str
    for_job: str
    # The contested resources (what ``for_job`` is short of): the victim's tenant stays at
    # or above its guarantee on these.
    resources: tuple[str, ...] = ()


class PendingCode(StrEnum):
    """Why the planner leaves a job queued (``PendingReason.code``): stable values the
    console stores (``Job.pending_code``) and explains."""

    UNKNOWN_TENANT = "unknown_tenant"
    OVER_LIMIT = "over_limit"
    EXCEEDS_LIMIT = "exceeds_limit"
    WAITING_FOR_PREEMPTION = "waiting_for_preemption"
    WAITING_FOR_FAIR_SHARE = "waiting_for_fair_share"
    HOSTS_CORDONED = "hosts_cordoned"
    NO_SINGLE_LEAF = "no_single_leaf"
    NO_HOST_WITH_FREE_NIC_VF = "no_host_with_free_nic_vf"
    NO_HOST_WITH_FREE_GPUS = "no_host_with_free_gpus"
    NO_HOST_WITH_FREE_CPU_MEMORY = "no_host_with_free_cpu_memory"
    LARGER_THAN_ANY_HOST = "larger_than_any_host"
    NO_HOST_WITH_KVM = "no_host_with_kvm"
    NO_HOST_WITH_IMAGE = "no_host_with_image"


@dataclass(frozen=True, slots=True)
class PendingReason:
    """Why a job stays queued: a stable ``code``, a sentence for the tenant, and numbers."""

    code: str
    message: str
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _frozen_mapping(self.data))


@dataclass(frozen=True, slots=True)
class Plan:
    placements: tuple[Placement, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
    pending: tuple[tuple[str, PendingReason], ...] = ()
    dominant_shares: tuple[tuple[str, float], ...] = ()
    # capacity held for jobs waiting on preemptions (not to be started yet)
    reserved: tuple[Placement, ...] = ()

    def pending_reason(self, job_id: str) -> PendingReason | None:
        for jid, reason in self.pending:
            if jid == job_id:
                return reason
        return None

    def placement_of(self, job_id: str) -> Placement | None:
        for p in self.placements:
            if p.job_id == job_id:
                return p
        return None
