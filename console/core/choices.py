"""State machines and enumerations as data (NetBox-style choices with colours)."""

from django.db import models


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SCHEDULED = "scheduled", "Scheduled"
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    TEARDOWN = "teardown", "Tearing down"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    PREEMPTED = "preempted", "Preempted"


# The allowed transitions of DESIGN.md's lifecycle. A job only moves along
# these edges, and only through console.core.transitions.transition_job().
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    JobState.QUEUED: frozenset({JobState.SCHEDULED, JobState.CANCELLED, JobState.FAILED}),
    JobState.SCHEDULED: frozenset({JobState.PROVISIONING, JobState.TEARDOWN}),
    JobState.PROVISIONING: frozenset({JobState.RUNNING, JobState.TEARDOWN}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.TEARDOWN}),
    # Teardown ends where the reason for it says: cancelled, failed, preempted
    # (then requeued), succeeded (the VM finished), or straight back to the
    # queue when a failed start is retried.
    JobState.TEARDOWN: frozenset(
        {
            JobState.CANCELLED,
            JobState.FAILED,
            JobState.PREEMPTED,
            JobState.SUCCEEDED,
            JobState.QUEUED,
        }
    ),
    JobState.PREEMPTED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

ACTIVE_JOB_STATES = frozenset(
    {JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING, JobState.TEARDOWN}
)
TRANSITIONAL_JOB_STATES = frozenset(
    {JobState.QUEUED, JobState.SCHEDULED, JobState.PROVISIONING, JobState.TEARDOWN,
     JobState.PREEMPTED}
)
TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

# The timestamp column written when a job enters each state.
JOB_STATE_TIMESTAMP = {
    JobState.QUEUED: "queued_at",
    JobState.SCHEDULED: "scheduled_at",
    JobState.PROVISIONING: "provisioning_at",
    JobState.RUNNING: "running_at",
    JobState.TEARDOWN: "teardown_at",
    JobState.SUCCEEDED: "finished_at",
    JobState.FAILED: "finished_at",
    JobState.CANCELLED: "finished_at",
    JobState.PREEMPTED: "preempted_at",
}

JOB_STATE_COLOURS = {
    JobState.QUEUED: "grey",
    JobState.SCHEDULED: "blue",
    JobState.PROVISIONING: "blue",
    JobState.RUNNING: "green",
    JobState.TEARDOWN: "orange",
    JobState.SUCCEEDED: "teal",
    JobState.FAILED: "red",
    JobState.CANCELLED: "grey",
    JobState.PREEMPTED: "orange",
}


class TeardownOutcome(models.TextChoices):
    """Where a job in TEARDOWN goes when its hosts are clean."""

    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    PREEMPTED = "preempted", "Preempted"
    SUCCEEDED = "succeeded", "Succeeded"
    RETRY = "retry", "Retry (requeue)"


class HostState(models.TextChoices):
    READY = "ready", "Ready"
    CORDONED = "cordoned", "Cordoned"
    DRAINING = "draining", "Draining"
    OFFLINE = "offline", "Offline"


HOST_STATE_COLOURS = {
    HostState.READY: "green",
    HostState.CORDONED: "orange",
    HostState.DRAINING: "orange",
    HostState.OFFLINE: "red",
}


class GpuHealth(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    FAILED = "failed", "Failed"


class GpuMode(models.TextChoices):
    EXCLUSIVE = "exclusive", "Exclusive (passthrough)"
    SHARED = "shared", "Shared (time-sliced vGPU)"


class LinkKind(models.TextChoices):
    NV = "NV", "NVLink (NV#)"
    PIX = "PIX", "PIX: at most one PCIe bridge"
    PXB = "PXB", "PXB: several PCIe bridges"
    PHB = "PHB", "PHB: through a PCIe host bridge"
    NODE = "NODE", "NODE: between host bridges in a NUMA node"
    SYS = "SYS", "SYS: across the SMP interconnect"


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    MANAGER = "manager", "Manager"


class QuotaResource(models.TextChoices):
    GPUS = "gpus", "Whole GPUs"
    GPU_MILLI = "gpu_milli", "GPU share (milli-GPU)"
    VCPUS = "vcpus", "vCPUs"
    MEMORY_GIB = "memory_gib", "Memory (GiB)"


class CheckStatus(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    UNKNOWN = "unknown", "Unknown"


class Risk(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class FaultKind(models.TextChoices):
    APPLICATION = "application", "Application"
    HARDWARE = "hardware", "Hardware"
    DRIVER = "driver", "Driver"
    UNKNOWN = "unknown", "Unknown"


class IncidentState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
