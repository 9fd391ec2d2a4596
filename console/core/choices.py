"""State machines and enumerations as data (NetBox-style choices with colours)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

import scheduler.model as sm


class JobState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SCHEDULED = "scheduled", _("Scheduled")
    PROVISIONING = "provisioning", _("Provisioning")
    RUNNING = "running", _("Running")
    TEARDOWN = "teardown", _("Tearing down")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    PREEMPTED = "preempted", _("Preempted")


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

    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")
    PREEMPTED = "preempted", _("Preempted")
    SUCCEEDED = "succeeded", _("Succeeded")
    RETRY = "retry", _("Retry (requeue)")


class HostState(models.TextChoices):
    READY = "ready", _("Ready")
    CORDONED = "cordoned", _("Cordoned")
    DRAINING = "draining", _("Draining")
    OFFLINE = "offline", _("Offline")


HOST_STATE_COLOURS = {
    HostState.READY: "green",
    HostState.CORDONED: "orange",
    HostState.DRAINING: "orange",
    HostState.OFFLINE: "red",
}


class GpuHealth(models.TextChoices):
    HEALTHY = "healthy", _("Healthy")
    DEGRADED = "degraded", _("Degraded")
    FAILED = "failed", _("Failed")


class GpuMode(models.TextChoices):
    EXCLUSIVE = "exclusive", _("Exclusive (passthrough)")
    SHARED = "shared", _("Shared (time-sliced vGPU)")


class LinkKind(models.TextChoices):
    NV = "NV", _("NVLink (NV#)")
    PIX = "PIX", _("PIX: at most one PCIe bridge")
    PXB = "PXB", _("PXB: several PCIe bridges")
    PHB = "PHB", _("PHB: through a PCIe host bridge")
    NODE = "NODE", _("NODE: between host bridges in a NUMA node")
    SYS = "SYS", _("SYS: across the SMP interconnect")


class Role(models.TextChoices):
    MEMBER = "member", _("Member")
    MANAGER = "manager", _("Manager")


class QuotaResource(models.TextChoices):
    GPUS = "gpus", _("Whole GPUs")
    GPU_MILLI = "gpu_milli", _("GPU share (milli-GPU)")
    VCPUS = "vcpus", _("vCPUs")
    MEMORY_GIB = "memory_gib", _("Memory (GiB)")


class CheckStatus(models.TextChoices):
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")
    UNKNOWN = "unknown", _("Unknown")


class Risk(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")


class FaultKind(models.TextChoices):
    APPLICATION = "application", _("Application")
    HARDWARE = "hardware", _("Hardware")
    DRIVER = "driver", _("Driver")
    UNKNOWN = "unknown", _("Unknown")


class IncidentState(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class AgentReported(models.TextChoices):
    """A host column filled from one key (``report_key``) of its agent's hypervisor
    report (``facts["hypervisor"]``)."""

    @classmethod
    def report_key(cls) -> str:
        raise NotImplementedError

    @classmethod
    def of_report(cls, report: object) -> str:
        """The column's value for the report: one of the choices; anything else (no
        report, an unknown word) is blank."""
        value = report.get(cls.report_key()) if isinstance(report, dict) else None
        return value if value in cls.values else ""


class Hypervisor(AgentReported):
    """What a host runs its VMs under, as its agent reports it (hostagent.hypervisor):
    KVM, or QEMU's TCG emulation (no hardware virtualisation). Blank: not reported yet.
    A job may require KVM (``Job.require_kvm``)."""

    KVM = "kvm", _("KVM")
    QEMU = "qemu", _("QEMU (TCG emulation)")

    @classmethod
    def report_key(cls) -> str:
        return "hypervisor"


class CgroupLayout(AgentReported):
    """How the host's kernel mounts cgroups, as its agent reports it
    (``hostagent.cgroups.layout``): where per-job limits are written. Blank: not
    reported (a simulated host, or an agent that has not told)."""

    V2 = "v2", _("cgroup v2")
    HYBRID = "hybrid", _("hybrid (v1 controllers, v2 mount)")
    V1 = "v1", _("cgroup v1")
    NONE = "none", _("no cgroup filesystem")

    @classmethod
    def report_key(cls) -> str:
        return "cgroup_layout"


class MemberStatus(models.TextChoices):
    """Where one member (one host) of a job stands in the job's current generation."""

    PENDING = "pending", _("Pending")
    UP = "up", _("Up")
    FAILED = "failed", _("Failed")
    DOWN = "down", _("Down")


class EventKind(models.TextChoices):
    """What an ``Event`` records."""

    TRANSITION = "transition", _("State change")
    # Hosts and their agents
    REGISTERED = "registered", _("Host registered")
    INVENTORY = "inventory", _("Inventory updated")
    GPU_RENUMBERED = "gpu_renumbered", _("GPU renumbered")
    GPU_MISSING = "gpu_missing", _("GPU missing")
    AGENT_TOKEN = "agent_token", _("Agent token issued")
    AGENT_REGISTER = "agent_register", _("Agent registered")
    ONLINE = "online", _("Host online")
    OFFLINE = "offline", _("Host offline")
    CORDON = "cordon", _("Host cordoned")
    UNCORDON = "uncordon", _("Host uncordoned")
    DRAIN = "drain", _("Host draining")
    GPU_CORDON = "gpu_cordon", _("GPU cordoned")
    GPU_UNCORDON = "gpu_uncordon", _("GPU uncordoned")
    CHECK = "check", _("Check result")
    CHECKS_REQUESTED = "checks_requested", _("Checks requested")
    CHECKS_RESULT = "checks_result", _("Checks reported")
    CHECKS_OVERRIDE = "checks_override", _("Checks overridden")
    INCIDENT_RESOLVED = "incident_resolved", _("Incident resolved")
    # A job's members (one per host of a gang)
    MEMBER_UP = "member_up", _("Member up")
    MEMBER_FAILED = "member_failed", _("Member failed")
    MEMBER_DOWN = "member_down", _("Member down")
    RECONCILE = "reconcile", _("Reconciled")
    # People's API tokens
    API_TOKEN_CREATED = "api_token_created", _("API token created")
    API_TOKEN_REVOKED = "api_token_revoked", _("API token revoked")


class PendingCode(models.TextChoices):
    """Why a job waits (``Job.pending_code``): the scheduler's codes
    (``scheduler.PendingCode``, the values come from there) and the console's own."""

    NEW = "new", _("New: waiting for the next cycle")
    PLACEMENT_CONFLICT = "placement_conflict", _("Placement conflict")
    RETRY_BACKOFF = "retry_backoff", _("Retry backoff")
    PREEMPTED = "preempted", _("Preempted")
    UNKNOWN_TENANT = sm.PendingCode.UNKNOWN_TENANT.value, _("Unknown tenant")
    OVER_LIMIT = sm.PendingCode.OVER_LIMIT.value, _("Over the tenant's limit")
    EXCEEDS_LIMIT = sm.PendingCode.EXCEEDS_LIMIT.value, _("Larger than the tenant's limit")
    WAITING_FOR_PREEMPTION = (sm.PendingCode.WAITING_FOR_PREEMPTION.value,
                              _("Waiting for preempted jobs"))
    WAITING_FOR_FAIR_SHARE = (sm.PendingCode.WAITING_FOR_FAIR_SHARE.value,
                              _("Waiting for fair share"))
    HOSTS_CORDONED = sm.PendingCode.HOSTS_CORDONED.value, _("Hosts cordoned")
    NO_SINGLE_LEAF = sm.PendingCode.NO_SINGLE_LEAF.value, _("Waiting for one leaf switch")
    NO_HOST_WITH_FREE_NIC_VF = (sm.PendingCode.NO_HOST_WITH_FREE_NIC_VF.value,
                                _("No host with free NIC virtual functions"))
    NO_HOST_WITH_FREE_GPUS = (sm.PendingCode.NO_HOST_WITH_FREE_GPUS.value,
                              _("No host with free GPUs"))
    NO_HOST_WITH_FREE_CPU_MEMORY = (sm.PendingCode.NO_HOST_WITH_FREE_CPU_MEMORY.value,
                                    _("No host with free vCPUs and memory"))
    LARGER_THAN_ANY_HOST = sm.PendingCode.LARGER_THAN_ANY_HOST.value, _("Larger than any host")
    NO_HOST_WITH_KVM = sm.PendingCode.NO_HOST_WITH_KVM.value, _("No host with KVM")
    NO_HOST_WITH_IMAGE = sm.PendingCode.NO_HOST_WITH_IMAGE.value, _("No host with the image")
