"""What tenants hold right now and their fair shares: one place for both.

``usage_by_tenant`` is the usage every reader starts from (the scheduler's
snapshot and so the what-if, quota previews, the API's ``in_use``);
``tenant_shares`` turns it into dominant shares for the dashboard and
``/metrics``, with the scheduler's own formulas (``scheduler.fairshare``).
Both read allocation rows of live jobs only, so they cost the same however
many jobs have finished.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Sum

from console.core.choices import ACTIVE_JOB_STATES, GpuHealth, HostState
from console.core.models import Allocation, Gpu, Host, Tenant
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
    from console.core.models import CoreClaim

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


def cluster_capacity() -> Vector:
    """(GPU milli, vCPUs, memory GiB) of every host that is not offline: the
    denominator of a share of the cluster."""
    gpus = (Gpu.objects.exclude(host__state=HostState.OFFLINE)
            .exclude(health=GpuHealth.FAILED).count())
    cpus = memory = 0
    rows = Host.objects.exclude(state=HostState.OFFLINE).values_list(
        "cpu_count", "memory_gib", "reserved_cores"
    )
    for cpu_count, memory_gib, reserved in rows:
        cpus += max(cpu_count - len(reserved or []), 0)
        memory += memory_gib
    return (gpus * 1000.0, float(cpus), float(memory))


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
