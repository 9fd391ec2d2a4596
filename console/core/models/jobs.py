from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from console.core.choices import (
    JOB_STATE_COLOURS,
    EventKind,
    JobState,
    MemberStatus,
    PendingCode,
    TeardownOutcome,
)
from console.core.models.scoping import TenantScopedQuerySet
from coupler_common import naming


class JobQuerySet(TenantScopedQuerySet):
    tenant_path = "tenant"


class Job(models.Model):
    tenant = models.ForeignKey("core.Tenant", on_delete=models.PROTECT, related_name="jobs")
    submitter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="jobs"
    )
    name = models.CharField(max_length=63)
    gpus_per_host = models.PositiveIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(16)]
    )
    host_count = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(512)]
    )
    gpu_model = models.CharField(max_length=100, blank=True, default="")
    gpu_milli = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(999)],
        help_text="A share of one GPU (time-sliced vGPU), in thousandths.",
    )
    vcpus_per_host = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1024)]
    )
    memory_gib_per_host = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(16384)]
    )
    priority = models.IntegerField(default=0, validators=[MinValueValidator(-1000),
                                                          MaxValueValidator(1000)])
    preemptible = models.BooleanField(default=True)
    # The boot image (console.core.models.images), by name; blank: the cluster's default.
    image = models.CharField(max_length=100, blank=True, default="")
    # GPUDirect RDMA: NIC virtual functions next to the GPUs (multi-host jobs always).
    rdma = models.BooleanField(default=False)
    # A gang that waits rather than span leaf switches (Host.group).
    single_leaf = models.BooleanField(default=False)
    # Every host of the job runs KVM (Host.hypervisor), not QEMU's TCG emulation.
    require_kvm = models.BooleanField(default=False)
    leaves = models.PositiveIntegerField(
        null=True, blank=True, help_text="Leaf switches the placement spans."
    )

    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    # Where TEARDOWN leads once the hosts are clean.
    teardown_outcome = models.CharField(
        max_length=16, choices=TeardownOutcome.choices, blank=True
    )
    pending_reason = models.CharField(max_length=1000, blank=True)
    pending_code = models.CharField(max_length=64, blank=True, choices=PendingCode.choices)
    pending_data = models.JSONField(default=dict, blank=True)
    failure_reason = models.CharField(max_length=1000, blank=True)
    attempts = models.PositiveIntegerField(
        default=0, help_text="Provisioning attempts since the job last entered the queue "
        "(the retry policy counts these)."
    )
    # Every provisioning attempt gets a new generation, never reused (attempts
    # restart after a preemption): commands to hosts carry it and an answer
    # from another generation is stale, whatever the clocks say.
    generation = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Retry backoff.")

    submitted_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    provisioning_at = models.DateTimeField(null=True, blank=True)
    running_at = models.DateTimeField(null=True, blank=True)
    teardown_at = models.DateTimeField(null=True, blank=True)
    preempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["state", "tenant"]),
            # The job lists' orderings, newest first: a tenant's, everyone's
            # (admins), and by state; each serves LIMIT 50 without a sort.
            models.Index(fields=["tenant", "-submitted_at", "-id"], name="job_tenant_recent"),
            models.Index(fields=["-submitted_at", "-id"], name="job_recent"),
            models.Index(fields=["state", "-submitted_at", "-id"], name="job_state_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(gpu_milli__isnull=True) | Q(gpus_per_host=1),
                name="job_share_only_with_one_gpu",
            ),
            models.CheckConstraint(
                condition=Q(gpu_milli__isnull=True)
                | (Q(gpu_milli__gte=1) & Q(gpu_milli__lte=999)),
                name="job_share_in_range",
            ),
            models.CheckConstraint(condition=Q(host_count__gte=1), name="job_host_count_positive"),
            models.CheckConstraint(condition=Q(vcpus_per_host__gte=1), name="job_vcpus_positive"),
            models.CheckConstraint(
                condition=Q(memory_gib_per_host__gte=1), name="job_memory_positive"
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in JobState]), name="job_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def state_colour(self) -> str:
        return JOB_STATE_COLOURS.get(self.state, "grey")

    def network_placement(self) -> list[dict]:
        """Per host, the NIC virtual functions the job holds (for the job page)."""
        hosts: dict[str, list[dict]] = {}
        rows = NicVfClaim.objects.filter(allocation__job=self).order_by(
            "allocation__host__name", "vf__pci_address"
        ).values_list("allocation__host__name", "vf__nic__name", "vf__pci_address")
        for host, nic, pci in rows:
            hosts.setdefault(host, []).append({"nic": nic, "pci_address": pci})
        return [{"host": h, "vfs": vfs} for h, vfs in hosts.items()]

    @property
    def is_gang(self) -> bool:
        return self.host_count > 1

    @property
    def domain_name(self) -> str:
        """The libvirt domain's name: never the user's text, so nothing to inject."""
        return naming.domain_name(self.pk)

    def member_hosts(self, status: str) -> set[int]:
        """Ids of the hosts whose member reported ``status`` (``MemberStatus``) in the
        job's current generation."""
        return set(self.members.filter(status=status, generation=self.generation)
                   .order_by().values_list("host_id", flat=True))

    def total_usage(self) -> dict[str, int]:
        """Resources the whole job holds when placed (per quota resource key)."""
        usage = {
            "vcpus": self.vcpus_per_host * self.host_count,
            "memory_gib": self.memory_gib_per_host * self.host_count,
        }
        if self.gpu_milli:
            usage["gpu_milli"] = self.gpu_milli
        elif self.gpus_per_host:
            usage["gpus"] = self.gpus_per_host * self.host_count
            if self.gpu_model:
                usage[f"gpus:{self.gpu_model}"] = usage["gpus"]
        return usage


class AllocationQuerySet(TenantScopedQuerySet):
    tenant_path = "job__tenant"


class Allocation(models.Model):
    """What one job holds on one host.

    Per host a job has one row with ``gpu`` null that holds its cores (also
    claimed one by one in ``CoreClaim``), NUMA nodes and memory, and one row
    per GPU with the milli-GPU it holds (1000 = passed through whole).
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="allocations")
    host = models.ForeignKey("core.Host", on_delete=models.PROTECT, related_name="allocations")
    gpu = models.ForeignKey(
        "core.Gpu", on_delete=models.PROTECT, null=True, blank=True, related_name="allocations"
    )
    milli = models.PositiveIntegerField(default=1000)
    cpus = models.JSONField(default=list)
    numa_nodes = models.JSONField(default=list)
    memory_gib = models.PositiveIntegerField(default=0)
    # [[node, GiB], …]: how memory_gib is split over NUMA nodes, exactly as planned
    # (in proportion to the job's GPUs on each node); the snapshot reads it back.
    memory_by_numa = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AllocationQuerySet.as_manager()

    class Meta:
        ordering = ["job", "host", "gpu__index"]
        constraints = [
            models.CheckConstraint(
                condition=Q(milli__gte=1) & Q(milli__lte=1000), name="allocation_milli_range"
            ),
            # A GPU passed through to a job belongs to that job alone.
            models.UniqueConstraint(
                fields=["gpu"], condition=Q(milli=1000), name="allocation_gpu_exclusive"
            ),
            models.UniqueConstraint(fields=["job", "gpu"], name="allocation_job_gpu_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job} on {self.host} {self.gpu or 'cpu'}"


class JobMemberQuerySet(TenantScopedQuerySet):
    tenant_path = "job__tenant"


class JobMember(models.Model):
    """One host of a placed job (a gang has several): written when the job is placed,
    moved by the hosts' answers (up, failed, down) for the job's current generation,
    removed with the job's allocations. The workflow decides from these rows when
    every member is up or down."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="members")
    host = models.ForeignKey("core.Host", on_delete=models.PROTECT, related_name="job_members")
    status = models.CharField(max_length=16, choices=MemberStatus.choices,
                              default=MemberStatus.PENDING)
    # The job generation (provisioning attempt) the status belongs to.
    generation = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobMemberQuerySet.as_manager()

    class Meta:
        ordering = ["job", "host__name"]
        constraints = [
            models.UniqueConstraint(fields=["job", "host"], name="job_member_unique"),
            models.CheckConstraint(condition=Q(status__in=[s.value for s in MemberStatus]),
                                   name="job_member_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.job} on {self.host}: {self.status}"


class NicVfClaim(models.Model):
    """One NIC virtual function held by one job's allocation on its host. The unique
    ``vf`` is the database's guard against a VF handed out twice."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE,
                                   related_name="nic_vf_claims")
    vf = models.OneToOneField("core.NicVf", on_delete=models.PROTECT, related_name="claim")

    def __str__(self) -> str:
        return f"{self.vf} for {self.allocation}"


class CoreClaim(models.Model):
    """One host core pinned to one job. The unique constraint is the database's
    guard against two jobs being pinned to the same core."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="cores")
    host = models.ForeignKey("core.Host", on_delete=models.CASCADE, related_name="core_claims")
    core = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "core"], name="core_claim_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:core{self.core}"


class EventQuerySet(TenantScopedQuerySet):
    tenant_path = "job__tenant"


class Event(models.Model):
    """An audit record: a job's or a host's state change, or an admin's action."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, null=True, blank=True,
                            related_name="events")
    host = models.ForeignKey("core.Host", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="events")
    # An API token's creation, rotation or revocation (who did it is the actor).
    token = models.ForeignKey("core.ApiToken", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="events")
    kind = models.CharField(max_length=32, choices=EventKind.choices,
                            default=EventKind.TRANSITION)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=1000, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(job__isnull=False) | Q(host__isnull=False) | Q(token__isnull=False),
                name="event_has_subject",
            ),
        ]

    def __str__(self) -> str:
        subject = self.job or self.host or self.token
        return f"{subject}: {self.from_state} → {self.to_state} ({self.reason})"
