"""Submit-time checks that need the inventory and the tenant's quotas.

A job that no host could ever hold, or that the tenant's limits can never
admit, is refused at submit with the reason instead of waiting forever.
Returns per-field messages so the API and the submit form show them inline.
"""

from django.db.models import Count, Q

from console.core.choices import GpuHealth, QuotaResource
from console.core.models import Gpu, Host, Job, Quota, Tenant
from console.core.snapshot import numa_errors

FieldErrors = dict[str, list[str]]


def known_gpu_models() -> list[str]:
    # order_by: Gpu's default ordering (host, index) would join DISTINCT and
    # return each model once per GPU.
    return list(Gpu.objects.order_by("model").values_list("model", flat=True).distinct())


def _hosts_with_at_least(gpus: int, model: str) -> int:
    gpu_filter = Q(gpus__health__in=[GpuHealth.HEALTHY, GpuHealth.DEGRADED])
    if model:
        gpu_filter &= Q(gpus__model=model)
    return (
        Host.objects.annotate(n=Count("gpus", filter=gpu_filter)).filter(n__gte=gpus).count()
    )


def _largest_host_gpus(model: str) -> int:
    gpu_filter = Q(gpus__model=model) if model else Q()
    counts = Host.objects.annotate(n=Count("gpus", filter=gpu_filter)).values_list("n", flat=True)
    return max(counts, default=0)


def inventory_errors(job: Job) -> FieldErrors:
    """Can any hosts of this cluster ever hold the job?"""
    errors: FieldErrors = {}
    models = known_gpu_models()
    if job.gpu_model and job.gpu_model not in models:
        known = ", ".join(models) or "none registered"
        errors["gpu_model"] = [f"Unknown GPU model {job.gpu_model!r}. Known models: {known}."]
        return errors
    if job.gpus_per_host:
        largest = _largest_host_gpus(job.gpu_model)
        if job.gpus_per_host > largest:
            what = f"{job.gpu_model} GPUs" if job.gpu_model else "GPUs"
            errors["gpus_per_host"] = [
                f"No host has {job.gpus_per_host} {what}; the largest has {largest}."
            ]
            return errors
        able = _hosts_with_at_least(job.gpus_per_host, job.gpu_model)
        if job.host_count > able:
            errors["hosts"] = [
                f"A gang of {job.host_count} hosts needs {job.host_count} hosts with "
                f"{job.gpus_per_host} GPUs each; this cluster has {able}."
            ]
    elif job.host_count > 1 and Host.objects.exists():
        # A CPU-only gang is bounded by the hosts that can hold one member each.
        able = Host.objects.filter(
            cpu_count__gte=job.vcpus_per_host, memory_gib__gte=job.memory_gib_per_host
        ).count()
        if job.host_count > able:
            errors["hosts"] = [
                f"A gang of {job.host_count} hosts needs {job.host_count} hosts with "
                f"{job.vcpus_per_host} cores and {job.memory_gib_per_host} GiB each; "
                f"this cluster has {able}."
            ]
    largest_cpus = max(Host.objects.values_list("cpu_count", flat=True), default=0)
    if largest_cpus and job.vcpus_per_host > largest_cpus:
        errors["vcpus_per_host"] = [
            f"No host has {job.vcpus_per_host} cores; the largest has {largest_cpus}."
        ]
    largest_mem = max(Host.objects.values_list("memory_gib", flat=True), default=0)
    if largest_mem and job.memory_gib_per_host > largest_mem:
        errors["memory_gib_per_host"] = [
            f"No host has {job.memory_gib_per_host} GiB of memory; the largest has {largest_mem}."
        ]
    if not errors:
        errors.update(numa_errors(job))  # cores and memory on the GPUs' NUMA nodes
    return errors


# Which request field a quota resource is reported against.
_RESOURCE_FIELD = {
    "gpus": "gpus_per_host",
    "gpu_milli": "gpu_milli",
    "vcpus": "vcpus_per_host",
    "memory_gib": "memory_gib_per_host",
}


def quota_errors(job: Job, tenant: Tenant) -> FieldErrors:
    """Would the tenant's limits refuse this job even on an empty cluster?"""
    errors: FieldErrors = {}
    usage = job.total_usage()
    for quota in Quota.objects.filter(tenant=tenant):
        key = quota.resource_key
        needed = usage.get(key, 0)
        if quota.resource == QuotaResource.GPUS and quota.gpu_model and not job.gpu_model:
            # The job may land on any model; only a model-pinned job is judged here.
            continue
        if needed > quota.limit:
            field = _RESOURCE_FIELD[quota.resource]
            errors.setdefault(field, []).append(
                f"The job needs {needed} {key} in total but {tenant.slug}'s limit is "
                f"{quota.limit}: it could never be admitted."
            )
    return errors


def quota_preview(job: Job, tenant: Tenant) -> list[dict]:
    """For the submit form: per resource, current use, what the job adds, and
    whether the total stays within guaranteed (owned) or borrows up to limit."""
    from console.core.usage import tenant_usage

    used = tenant_usage(tenant)
    rows = []
    for key, needed in job.total_usage().items():
        quota = next((q for q in tenant.quotas.all() if q.resource_key == key), None)
        now = used.get(key, 0)
        after = now + needed
        if quota is None:
            verdict = "no quota"
        elif after > quota.limit:
            verdict = "over limit: will wait"
        elif after > quota.guaranteed:
            verdict = "borrows: preemptible by tenants under their guarantee"
        else:
            verdict = "within guarantee"
        rows.append(
            {
                "resource": key,
                "in_use": now,
                "job": needed,
                "after": after,
                "guaranteed": quota.guaranteed if quota else None,
                "limit": quota.limit if quota else None,
                "verdict": verdict,
                "borrows": bool(quota and quota.guaranteed < after <= quota.limit),
                "over_limit": bool(quota and after > quota.limit),
            }
        )
    return rows
