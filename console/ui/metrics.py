"""Numbers for the dashboard: fragmentation, queue, and each tenant's dominant
share (weighted DRF) against its quotas.

The capacity figures (total, out of service, allocated, free, utilisation) are
``console.core.usage.capacity``'s; the maths comes from the ``scheduler``
package (``scheduler.fairshare`` and ``scheduler.policies.fragmentation_rate``);
this module only reads rows."""

from dataclasses import dataclass, replace
from datetime import datetime

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.utils import timezone

from console.core import usage
from console.core.choices import JobState
from console.core.models import Allocation, Job, Tenant
from console.core.usage import cluster_capacity

RESOURCE_LABELS = {"gpu_milli": "GPU", "vcpus": "vCPU", "memory_gib": "memory"}


def queue_length() -> int:
    return Job.objects.filter(state__in=[JobState.QUEUED, JobState.PREEMPTED]).count()


@dataclass
class TenantShare:
    """A tenant's row on the dashboard: its share (``console.core.usage``) with
    its entitlement and its quota marks on the dominant resource."""

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


def _quota_vector(tenant: Tenant, field: str) -> tuple[float | None, float | None, float | None]:
    quotas = {q.resource_key: getattr(q, field) for q in tenant.quotas.all()}
    gpu = None
    if "gpus" in quotas or "gpu_milli" in quotas:
        gpu = quotas.get("gpus", 0) * 1000.0 + quotas.get("gpu_milli", 0)
    return (gpu, quotas.get("vcpus"), quotas.get("memory_gib"))


def tenant_shares(tenants, figures: usage.Capacity | None = None) -> list[TenantShare]:
    """Weighted dominant shares (``console.core.usage.tenant_shares``) with each
    tenant's entitlement and guaranteed/limit marks on its dominant resource."""
    capacity = cluster_capacity(figures)
    tenants = list(tenants.prefetch_related("quotas"))
    total_weight = float(Tenant.objects.aggregate(w=Sum("weight"))["w"] or 0) or 1.0
    names = ("gpu_milli", "vcpus", "memory_gib")
    result = []
    for share in usage.tenant_shares(tenants, capacity=capacity):
        index = names.index(share.dominant_resource)
        guaranteed = _quota_vector(share.tenant, "guaranteed")[index]
        limit = _quota_vector(share.tenant, "limit")[index]
        cap = capacity[index]
        result.append(
            TenantShare(
                tenant=share.tenant,
                weight=share.weight,
                entitled=share.weight / total_weight,
                shares=share.shares,
                dominant_resource=share.dominant_resource,
                dominant=share.dominant,
                weighted=share.weighted,
                guaranteed=min(guaranteed / cap, 1.0) if guaranteed is not None and cap else None,
                limit=min(limit / cap, 1.0) if limit is not None and cap else None,
            )
        )
    return result


# The fragmentation rate needs the scheduler's snapshot of every host (hundreds
# of milliseconds at a few dozen hosts); the dashboard reuses it while the
# allocations and the queue are unchanged, and for at most this many seconds
# (a cordon or a failed GPU shows within it).
FRAGMENTATION_TTL_S = 30


def _capacity_fingerprint() -> str:
    """Changes when an allocation or the queue changes (two index-served aggregates)."""
    held = Allocation.objects.aggregate(n=Count("id"), last=Max("id"), milli=Sum("milli"))
    queued = Job.objects.filter(state=JobState.QUEUED).aggregate(n=Count("id"), last=Max("id"))
    return "{n}-{last}-{milli}".format(**held) + "/{n}-{last}".format(**queued)


def fragmentation_rate() -> float:
    """FGD fragmentation rate of the free GPU capacity of schedulable hosts
    against the queue's job mix (or, with an empty queue, a default mix of
    1/2/4/8-GPU jobs)."""
    key = f"dashboard:fragmentation:{_capacity_fingerprint()}"
    return cache.get_or_set(key, _fragmentation_rate_now, FRAGMENTATION_TTL_S)


def _fragmentation_rate_now() -> float:
    from console.core.snapshot import build_snapshot
    from scheduler.model import WorkloadClass
    from scheduler.policies import fragmentation_rate as rate

    snapshot = build_snapshot()
    workload = snapshot.queued or tuple(
        WorkloadClass(gpus=g, vcpus=4 * g, memory_gib=32 * g, weight=0.25) for g in (1, 2, 4, 8)
    )
    return rate(snapshot.hosts, workload)


# --- the dashboard's figures, shared by every reader for a few seconds ----------

# The dashboard's cluster-wide figures (capacity, queue, fragmentation, every
# tenant's share) are computed once and reused by every reader for at most this
# many seconds; the page says how old they are. A member's own queue and the
# incidents they may see are read per request.
DASHBOARD_CACHE_S = 5
DASHBOARD_CACHE_KEY = "dashboard:figures:v1"


@dataclass(frozen=True)
class DashboardFigures:
    capacity: usage.Capacity
    fragmentation: float | None
    queue_length: int
    shares: list[TenantShare]  # every tenant, largest dominant share first
    at: datetime


def _light(tenant: Tenant) -> Tenant:
    """The tenant fields the dashboard shows (no prefetched quotas in the cache)."""
    return Tenant(pk=tenant.pk, slug=tenant.slug, name=tenant.name, weight=tenant.weight)


def dashboard_figures() -> DashboardFigures:
    return cache.get_or_set(DASHBOARD_CACHE_KEY, dashboard_figures_now, DASHBOARD_CACHE_S)


def dashboard_figures_now() -> DashboardFigures:
    figures = usage.capacity()
    shares = [replace(s, tenant=_light(s.tenant))
              for s in tenant_shares(Tenant.objects.all(), figures)]
    shares.sort(key=lambda s: (-s.dominant, s.tenant.name, s.tenant.pk))
    return DashboardFigures(capacity=figures, fragmentation=fragmentation_rate(),
                            queue_length=queue_length(), shares=shares, at=timezone.now())
