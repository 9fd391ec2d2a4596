"""Numbers for the dashboard: GPUs per model, utilization, fragmentation, and
each tenant's dominant share (weighted DRF) against its quotas.

The maths comes from the ``scheduler`` package (``scheduler.fairshare`` and
``scheduler.policies.fragmentation_rate``); this module only reads rows."""

from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from console.core.choices import GpuHealth, HostState, JobState
from console.core.models import Gpu, Host, Job, Tenant
from console.core.usage import usage_by_tenant

RESOURCE_LABELS = {"gpu_milli": "GPU", "vcpus": "vCPU", "memory_gib": "memory"}


@dataclass
class ModelRow:
    model: str
    total: int
    allocated: float  # GPU-equivalents held by jobs
    free: int  # idle GPUs a new job could get now
    unavailable: int  # failed, cordoned, or on a host that takes no work

    @property
    def allocated_pct(self) -> float:
        return 100.0 * self.allocated / self.total if self.total else 0.0


def gpus_by_model() -> list[ModelRow]:
    rows = []
    out_q = (
        Q(health=GpuHealth.FAILED) | Q(cordoned=True) | ~Q(host__state=HostState.READY)
    )
    for item in (
        Gpu.objects.values("model")
        .annotate(
            total=Count("id"),
            milli=Sum("allocated_milli"),
            free=Count("id", filter=Q(allocated_milli=0) & ~out_q),
            out=Count("id", filter=out_q),
        )
        .order_by("model")
    ):
        rows.append(
            ModelRow(
                model=item["model"],
                total=item["total"],
                allocated=(item["milli"] or 0) / 1000,
                free=item["free"],
                unavailable=item["out"],
            )
        )
    return rows


def cluster_capacity() -> tuple[float, float, float]:
    """(GPU milli, vCPUs, memory GiB) of every host that is not offline."""
    hosts = Host.objects.exclude(state=HostState.OFFLINE)
    gpus = Gpu.objects.filter(host__in=hosts).exclude(health=GpuHealth.FAILED).count()
    cpus = 0
    memory = 0
    for host in hosts.only("cpu_count", "memory_gib", "reserved_cores"):
        cpus += max(host.cpu_count - len(host.reserved_cores or []), 0)
        memory += host.memory_gib
    return (gpus * 1000.0, float(cpus), float(memory))


def utilization() -> float:
    total = Gpu.objects.exclude(health=GpuHealth.FAILED).count()
    used = Gpu.objects.aggregate(n=Sum("allocated_milli"))["n"] or 0
    return used / (total * 1000) if total else 0.0


def queue_length() -> int:
    return Job.objects.filter(state__in=[JobState.QUEUED, JobState.PREEMPTED]).count()


@dataclass
class TenantShare:
    tenant: Tenant
    weight: float
    entitled: float  # weight / sum of weights: the fair dominant share when all want more
    shares: dict[str, float]  # resource → used / capacity
    dominant_resource: str
    dominant: float  # max of shares
    weighted: float  # dominant / weight (the DRF ordering key)
    guaranteed: float | None  # of the dominant resource, as a share of capacity
    limit: float | None

    @property
    def dominant_label(self) -> str:
        return RESOURCE_LABELS.get(self.dominant_resource, self.dominant_resource)

    @property
    def bar(self) -> "Bar":
        return Bar.of(self.dominant, self.guaranteed, self.limit)

    @property
    def shares_pct(self) -> dict[str, float]:
        return {k: 100 * v for k, v in self.shares.items()}

    @property
    def entitled_pct(self) -> float:
        return 100 * self.entitled


@dataclass
class Bar:
    """A usage bar in percent of its scale, with optional guaranteed and limit
    marks; ``tone`` says whether the value borrows above guaranteed or passes
    the limit."""

    value: float
    guaranteed: float | None
    limit: float | None
    tone: str

    @classmethod
    def of(cls, value, guaranteed, limit, scale: float = 1.0) -> "Bar":
        def pct(x):
            return None if x is None else min(100.0, 100.0 * x / scale) if scale else 0.0

        tone = ""
        if limit is not None and value > limit:
            tone = "over"
        elif guaranteed is not None and value > guaranteed:
            tone = "borrowing"
        return cls(value=pct(value) or 0.0, guaranteed=pct(guaranteed), limit=pct(limit), tone=tone)


def _usage_vector(usage: dict) -> tuple[float, float, float]:
    try:
        from scheduler.fairshare import usage_vector

        return tuple(usage_vector(usage))  # type: ignore[return-value]
    except ImportError:  # scheduler not installed: same formula
        return (
            usage.get("gpus", 0) * 1000.0 + usage.get("gpu_milli", 0),
            float(usage.get("vcpus", 0)),
            float(usage.get("memory_gib", 0)),
        )


def _quota_vector(tenant: Tenant, field: str) -> tuple[float | None, float | None, float | None]:
    quotas = {q.resource_key: getattr(q, field) for q in tenant.quotas.all()}
    gpu = None
    if "gpus" in quotas or "gpu_milli" in quotas:
        gpu = quotas.get("gpus", 0) * 1000.0 + quotas.get("gpu_milli", 0)
    return (gpu, quotas.get("vcpus"), quotas.get("memory_gib"))


def tenant_shares(tenants) -> list[TenantShare]:
    """Weighted dominant shares (DRF, Ghodsi et al.): max over resources of
    used / capacity, divided by the tenant's weight."""
    capacity = cluster_capacity()
    usage = usage_by_tenant()
    tenants = list(tenants.prefetch_related("quotas"))
    total_weight = float(sum(t.weight for t in Tenant.objects.all())) or 1.0
    names = ("gpu_milli", "vcpus", "memory_gib")
    result = []
    for tenant in tenants:
        used = _usage_vector(usage.get(tenant.pk, {}))
        shares = {
            name: (u / c if c else 0.0) for name, u, c in zip(names, used, capacity, strict=True)
        }
        dominant_resource = max(shares, key=lambda k: shares[k]) if any(shares.values()) else (
            "gpu_milli"
        )
        dominant = shares[dominant_resource]
        weight = float(tenant.weight)
        index = names.index(dominant_resource)
        guaranteed = _quota_vector(tenant, "guaranteed")[index]
        limit = _quota_vector(tenant, "limit")[index]
        cap = capacity[index]
        result.append(
            TenantShare(
                tenant=tenant,
                weight=weight,
                entitled=weight / total_weight,
                shares=shares,
                dominant_resource=dominant_resource,
                dominant=dominant,
                weighted=dominant / weight if weight else 0.0,
                guaranteed=min(guaranteed / cap, 1.0) if guaranteed is not None and cap else None,
                limit=min(limit / cap, 1.0) if limit is not None and cap else None,
            )
        )
    return result


def fragmentation_rate() -> float:
    """FGD fragmentation rate of the free GPU capacity of schedulable hosts
    against the queue's job mix (or, with an empty queue, a default mix of
    1/2/4/8-GPU jobs)."""
    from console.core.snapshot import build_snapshot
    from scheduler.model import WorkloadClass
    from scheduler.policies import fragmentation_rate as rate

    snapshot = build_snapshot()
    workload = snapshot.queued or tuple(
        WorkloadClass(gpus=g, vcpus=4 * g, memory_gib=32 * g, weight=0.25) for g in (1, 2, 4, 8)
    )
    return rate(snapshot.hosts, workload)
