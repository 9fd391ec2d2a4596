"""What tenants hold right now, their fair shares, and the cluster's capacity
figures: one place for all three.

``usage_by_tenant`` is the usage every reader starts from (the scheduler's
snapshot and so the what-if, quota previews, the API's ``in_use``);
``tenant_shares`` turns it into dominant shares for the dashboard and
``/metrics``, with the scheduler's own formulas (``scheduler.fairshare``).
``capacity`` gives, per resource, per GPU model and per host, the one set of
figures every page, the API and ``/metrics`` show (``Figures``: total, out of
service, in service, allocated, free, utilisation), and ``cluster_capacity``
(the denominator of a share) is its in-service part. All read allocation rows
of live jobs only, so they cost the same however many jobs have finished.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db.models import Count, OuterRef, Subquery, Sum

from console.core.choices import ACTIVE_JOB_STATES, GpuHealth, HostState
from console.core.models import Allocation, CoreClaim, Gpu, Host, Tenant
from scheduler.fairshare import RESOURCE_NAMES, Vector, dominant_share, usage_vector


def usage_by_tenant() -> dict[int, dict[str, int]]:
    """tenant id → {resource key: amount} over every active job's allocations."""
    usage: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        Allocation.objects.filter(job__state__in=ACTIVE_JOB_STATES, gpu__isnull=False)
        .values("job__tenant_id", "gpu__model", "milli")
        .annotate(n=Sum("milli"))
    )
    for row in rows:
        tenant = usage[row["job__tenant_id"]]
        if row["milli"] >= 1000:
            whole = row["n"] // 1000
            tenant["gpus"] += whole
            tenant[f"gpus:{row['gpu__model']}"] += whole
        else:
            tenant["gpu_milli"] += row["n"]
    cpu_rows = (
        Allocation.objects.filter(job__state__in=ACTIVE_JOB_STATES, gpu__isnull=True)
        .values("job__tenant_id")
        .annotate(mem=Sum("memory_gib"))
    )
    for row in cpu_rows:
        usage[row["job__tenant_id"]]["memory_gib"] += row["mem"] or 0
    # Cores: one claim per pinned core.
    core_rows = (
        CoreClaim.objects.filter(allocation__job__state__in=ACTIVE_JOB_STATES)
        .values("allocation__job__tenant_id")
        .annotate(n=Count("id"))
    )
    for row in core_rows:
        usage[row["allocation__job__tenant_id"]]["vcpus"] += row["n"]
    return {tenant_id: dict(values) for tenant_id, values in usage.items()}


def tenant_usage(tenant: Tenant) -> dict[str, int]:
    return usage_by_tenant().get(tenant.pk, {})


@dataclass(frozen=True)
class Figures:
    """One resource's figures, in whole units of ``scale`` (1000 milli-GPU a GPU,
    1 for vCPUs and GiB) so that they add up exactly:

    total = out of service + in service, in service = allocated + free,
    utilisation = allocated / in service.

    *Out of service* is capacity no new job can get: a failed or cordoned GPU,
    or anything on a host that is not ready (cordoned, draining, offline).
    What jobs still hold there is part of it (``held_out_of_service``), not of
    *allocated*: allocated and free are of the capacity in service.
    """

    resource: str  # "gpus", "vcpus" or "memory_gib"
    model: str = ""  # the GPU model for a per-model row, "" for all
    scale: int = 1
    total_units: int = 0
    out_units: int = 0
    allocated_units: int = 0  # held by live jobs on capacity in service
    held_out_units: int = 0  # held by live jobs on capacity out of service

    @property
    def total(self) -> float:
        return self._n(self.total_units)

    @property
    def out_of_service(self) -> float:
        return self._n(self.out_units)

    @property
    def in_service(self) -> float:
        return self._n(self.total_units - self.out_units)

    @property
    def allocated(self) -> float:
        return self._n(self.allocated_units)

    @property
    def free(self) -> float:
        return self._n(self.total_units - self.out_units - self.allocated_units)

    @property
    def held_out_of_service(self) -> float:
        return self._n(self.held_out_units)

    @property
    def in_service_units(self) -> int:
        return self.total_units - self.out_units

    @property
    def utilization(self) -> float:
        """allocated / in service (0 with nothing in service)."""
        in_service = self.in_service_units
        return self.allocated_units / in_service if in_service else 0.0

    def _n(self, units: int) -> float | int:
        return units // self.scale if units % self.scale == 0 else units / self.scale

    def plus(self, units: int, *, out: bool, held: int) -> "Figures":
        """These figures with one more piece of capacity (``units``, of which
        ``held`` is held by jobs), in or out of service."""
        return replace(
            self,
            total_units=self.total_units + units,
            out_units=self.out_units + (units if out else 0),
            allocated_units=self.allocated_units + (0 if out else held),
            held_out_units=self.held_out_units + (held if out else 0),
        )

    def as_dict(self) -> dict[str, float | str]:
        return {"resource": self.resource, "model": self.model, "total": self.total,
                "out_of_service": self.out_of_service, "in_service": self.in_service,
                "allocated": self.allocated, "free": self.free,
                "held_out_of_service": self.held_out_of_service,
                "utilization": round(self.utilization, 6)}


@dataclass(frozen=True)
class Capacity:
    """The cluster's figures: GPUs (all and per model), vCPUs, memory, and the
    GPUs of each host."""

    gpus: Figures
    gpu_models: tuple[Figures, ...]  # by model name
    vcpus: Figures
    memory_gib: Figures
    gpus_by_host: dict[int, Figures]  # host id → its GPUs

    @property
    def resources(self) -> tuple[Figures, ...]:
        return (self.gpus, self.vcpus, self.memory_gib)


def gpu_out_of_service(health: str, cordoned: bool, host_state: str) -> bool:
    """The rule: a GPU no new job can get."""
    return health == GpuHealth.FAILED or cordoned or host_state != HostState.READY


def _held(rows, column: str, aggregate) -> Subquery:
    """``aggregate`` over ``rows`` (of live jobs) that belong to the outer row
    (``column`` = its pk), as a correlated subquery."""
    return Subquery(rows.filter(**{column: OuterRef("pk")}).order_by().values(column)
                    .annotate(n=aggregate).values("n"))


def capacity() -> Capacity:
    """Every figure of ``Figures`` for the whole cluster, from two queries (one
    row per GPU and per host, what live jobs hold there as subqueries: none
    per job)."""
    live_allocations = Allocation.objects.filter(job__state__in=ACTIVE_JOB_STATES)
    gpus = Figures("gpus", scale=1000)
    models: dict[str, Figures] = {}
    by_host: dict[int, Figures] = {}
    rows = Gpu.objects.annotate(
        held=_held(live_allocations, "gpu", Sum("milli"))
    ).values_list("host_id", "model", "health", "cordoned", "host__state", "held")
    for host_id, model, health, cordoned, host_state, held_milli in rows:
        out = gpu_out_of_service(health, cordoned, host_state)
        held = min(held_milli or 0, 1000)
        gpus = gpus.plus(1000, out=out, held=held)
        row = models.get(model) or Figures("gpus", model=model, scale=1000)
        models[model] = row.plus(1000, out=out, held=held)
        on_host = by_host.get(host_id) or Figures("gpus", scale=1000)
        by_host[host_id] = on_host.plus(1000, out=out, held=held)
    vcpus = Figures("vcpus")
    memory = Figures("memory_gib")
    hosts = Host.objects.annotate(
        claimed=_held(CoreClaim.objects.filter(allocation__job__state__in=ACTIVE_JOB_STATES),
                      "host", Count("id")),
        memory_held=_held(live_allocations.filter(gpu__isnull=True), "host", Sum("memory_gib")),
    ).values_list("state", "cpu_count", "reserved_cores", "memory_gib", "claimed", "memory_held")
    for state, cpu_count, reserved, memory_gib, claimed, memory_held in hosts:
        out = state != HostState.READY
        cores = max(cpu_count - len(reserved or []), 0)
        vcpus = vcpus.plus(cores, out=out, held=min(claimed or 0, cores))
        memory = memory.plus(memory_gib, out=out, held=min(memory_held or 0, memory_gib))
    return Capacity(gpus=gpus, gpu_models=tuple(models[m] for m in sorted(models)),
                    vcpus=vcpus, memory_gib=memory, gpus_by_host=by_host)


def cluster_capacity(figures: Capacity | None = None) -> Vector:
    """(GPU milli, vCPUs, memory GiB) in service: the denominator of a share of
    the cluster (the scheduler's too: it offers nothing on capacity out of
    service)."""
    figures = figures or capacity()
    return tuple(float(f.total_units - f.out_units) for f in figures.resources)


@dataclass(frozen=True)
class TenantShare:
    """A tenant's share of the cluster (Ghodsi et al.'s dominant share)."""

    tenant: Tenant
    used: Vector  # (GPU milli, vCPUs, memory GiB) held now
    shares: dict[str, float]  # resource name → used / capacity
    dominant_resource: str
    dominant: float  # the largest of ``shares``
    weighted: float  # dominant / weight: the DRF ordering key

    @property
    def weight(self) -> float:
        return float(self.tenant.weight)


def share_of(tenant: Tenant, usage: dict[str, float], capacity: Vector) -> TenantShare:
    """The rule: used / capacity per resource, the largest is the dominant share,
    divided by the weight it orders tenants (weighted DRF)."""
    used = usage_vector(usage)
    shares = {name: (u / c if c else 0.0)
              for name, u, c in zip(RESOURCE_NAMES, used, capacity, strict=True)}
    dominant_resource = (max(shares, key=lambda k: shares[k]) if any(shares.values())
                         else RESOURCE_NAMES[0])
    dominant = shares[dominant_resource]
    weight = float(tenant.weight)
    return TenantShare(tenant=tenant, used=used, shares=shares,
                       dominant_resource=dominant_resource, dominant=dominant,
                       weighted=dominant_share(used, capacity, weight) if any(used) else 0.0)


def tenant_shares(tenants: Iterable[Tenant] | None = None, *,
                  capacity: Vector | None = None) -> list[TenantShare]:
    """Every tenant's share (or those given), in the order given."""
    capacity = capacity if capacity is not None else cluster_capacity()
    usage = usage_by_tenant()
    rows = Tenant.objects.order_by("slug") if tenants is None else tenants
    return [share_of(t, usage.get(t.pk, {}), capacity) for t in rows]
