"""A job's admission rules, all of them, in one place.

1. Field rules (``JOB_NAME``, ``JOB_NUMBERS``, ``JOB_FLAGS``): the shape of each submitted
   field. The API serializer and the console form build their fields from these
   tables, so the two accept the same input and answer with the same messages.
2. Rules between fields (``shape_errors``): a GPU share is one GPU on one host;
   a CPU-only job names no GPU model.
3. Rules that need the inventory and the tenant's quotas (``inventory_errors``,
   ``quota_errors``): a job that no host could ever hold, or that the tenant's
   limits can never admit, is refused at submit with the reason instead of
   waiting forever.

``console.core.actions.jobs.validate_job`` applies 2 and 3; every message is
per field so the API and the submit form show them inline.

A job's name is for people: letters of any script, digits, ``_ . -``. It never
becomes a host-side name: domains, cgroups and queues are named from ids
(``hostagent.protocol.naming``).
"""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count, Q

from console.core.choices import GpuHealth, QuotaResource
from console.core.models import Gpu, Host, Job, Quota, Tenant
from console.core.snapshot import numa_errors

FieldErrors = dict[str, list[str]]


# --- 1. field rules ---------------------------------------------------------------------

JOB_NAME_MAX = 63
# \w is Unicode: letters and digits of any script (and "_"); the first character is a
# letter or a digit. No spaces, no control characters, nothing a shell or a URL quotes.
_JOB_NAME_RE = re.compile(r"[^\W_][\w.-]*")
JOB_NAME_MESSAGE = (
    f"Use letters (any script), digits, '_', '.' and '-', starting with a letter or a "
    f"digit, at most {JOB_NAME_MAX} characters."
)
REQUIRED_MESSAGE = "This field is required."
WHOLE_NUMBER_MESSAGE = "Enter a whole number."


def validate_job_name(value: object) -> None:
    """The job name rule (a Django validator: the API and the form both run it)."""
    if (not isinstance(value, str) or len(value) > JOB_NAME_MAX
            or not _JOB_NAME_RE.fullmatch(value)):
        raise ValidationError(JOB_NAME_MESSAGE, code="invalid")


@dataclass(frozen=True)
class NumberRule:
    """An integer field of a job: its bounds, default and help text."""

    low: int
    high: int
    label: str
    help: str = ""
    default: int | None = None  # None: required (or, for gpu_milli, absent)
    required: bool = True

    def messages(self) -> dict[str, str]:
        """The same words from DRF and Django forms (their defaults differ)."""
        return {
            "invalid": WHOLE_NUMBER_MESSAGE,
            "required": REQUIRED_MESSAGE,
            "null": REQUIRED_MESSAGE,
            "min_value": f"Ensure this value is greater than or equal to {self.low}.",
            "max_value": f"Ensure this value is less than or equal to {self.high}.",
        }


JOB_NUMBERS: dict[str, NumberRule] = {
    "gpus_per_host": NumberRule(0, 16, "GPUs per host", "Whole GPUs per host; 0 for a CPU-only job."),
    "hosts": NumberRule(1, 512, "Hosts", "More than one makes a gang: all hosts start together "
                        "or none does.", default=1, required=False),
    "gpu_milli": NumberRule(1, 999, "GPU share (milli-GPU)", "A share of one GPU in thousandths "
                            "(1–999, only with 1 GPU per host); empty for whole GPUs.",
                            required=False),
    "vcpus_per_host": NumberRule(1, 1024, "vCPUs per host"),
    "memory_gib_per_host": NumberRule(1, 16384, "Memory per host (GiB)"),
    "priority": NumberRule(-1000, 1000, "Priority", "Orders jobs within your tenant only.",
                           default=0, required=False),
}
GPU_MODEL_MAX = 100
# A job names its boot image (console.core.models.images.Image.name) or leaves it blank
# for the cluster's default; an unknown name gets validate_job's message on both sides.
IMAGE_NAME_MAX = 100


@dataclass(frozen=True)
class FlagRule:
    """A yes/no field of a job: its label, help text and default."""

    label: str
    help: str
    default: bool = False


JOB_FLAGS: dict[str, FlagRule] = {
    "require_kvm": FlagRule(
        "Requires KVM", "Every host of the job runs its VMs under KVM (hardware "
        "virtualisation), not QEMU's emulation; the job waits for such hosts."),
}


# --- 2. rules between fields --------------------------------------------------------------


def shape_errors(*, gpus_per_host: int, host_count: int, gpu_milli: int | None,
                 gpu_model: str) -> FieldErrors:
    """Rules that join fields; the bounds of each field are ``JOB_NUMBERS``'."""
    errors: FieldErrors = {}
    if gpu_milli is not None:
        rule = JOB_NUMBERS["gpu_milli"]
        if not rule.low <= gpu_milli <= rule.high:
            errors["gpu_milli"] = [f"A GPU share is between {rule.low} and {rule.high} milli-GPU."]
        elif gpus_per_host != 1:
            errors["gpu_milli"] = ["A GPU share (gpu_milli) is only for jobs of exactly 1 GPU."]
        if host_count != 1:
            errors["hosts"] = ["A GPU-share job runs on one host."]
    if gpu_model and not gpus_per_host:
        errors["gpu_model"] = ["A CPU-only job (gpus_per_host 0) names no GPU model."]
    return errors


# --- 3. rules that need the inventory and the quotas ---------------------------------------


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
