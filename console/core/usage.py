"""What tenants hold right now, in the scheduler's resource keys."""

from collections import defaultdict

from django.db.models import Count, Sum

from console.core.choices import ACTIVE_JOB_STATES
from console.core.models import Allocation, Tenant


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
