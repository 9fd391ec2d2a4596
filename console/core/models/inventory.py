import hashlib
import secrets

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce

from console.core.choices import CgroupLayout, GpuHealth, GpuMode, HostState, Hypervisor
from coupler_common import naming


class Cluster(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def hash_agent_token(token: str) -> str:
    # Agent tokens are long random strings, so one round of SHA-256 is enough:
    # there is nothing to brute-force, and the heartbeat path stays cheap.
    return hashlib.sha256(token.encode()).hexdigest()


class Host(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="hosts")
    name = models.CharField(
        max_length=63,
        unique=True,
        help_text="Also names the host agent's Celery queue: host.<name>.",
    )
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.READY)
    state_reason = models.CharField(max_length=500, blank=True)
    group = models.CharField(
        max_length=100, blank=True, help_text="Rack or leaf switch: gangs prefer one group."
    )
    agent_token_hash = models.CharField(max_length=64, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    # What the host reported about itself: CPU model, kernel, driver, VBIOS, …
    facts = models.JSONField(default=dict, blank=True)
    # Facts the console relies on, as columns (FACT_COLUMNS): read from the inventory's
    # facts at registration and shown among the facts.
    board_name = models.CharField(max_length=200, blank=True, help_text="DMI board name")
    bios_version = models.CharField(max_length=100, blank=True, help_text="DMI BIOS version")
    # The agent's echo responder (host:port) its peers measure latency against; "" none.
    latency_endpoint = models.CharField(max_length=300, blank=True)
    inventory_digest = models.CharField(max_length=64, blank=True)
    cpu_count = models.PositiveIntegerField(default=0)
    memory_gib = models.PositiveIntegerField(default=0)
    # Cores held back for the host itself (agent, emulator threads, kernel).
    reserved_cores = models.JSONField(default=list, blank=True)
    libvirt_uri = models.CharField(max_length=500, blank=True)
    # KVM or QEMU/TCG, from the agent's probe (facts["hypervisor"] has the details).
    hypervisor = models.CharField(max_length=8, choices=Hypervisor.choices, blank=True)
    # Where per-job cgroup limits go, and whether a 1 GiB hugetlbfs is mounted (None:
    # not reported, taken as mounted): both from the same report, for the planner's
    # hugepage backing and the host page.
    cgroup_layout = models.CharField(max_length=8, choices=CgroupLayout.choices, blank=True)
    hugetlbfs_1g = models.BooleanField(null=True, blank=True)
    simulated = models.BooleanField(default=False)
    # A host whose critical checks fail is not schedulable unless an admin
    # overrides with a recorded reason.
    checks_override_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Facts kept as columns: from the inventory document, and from the agent itself.
    INVENTORY_FACT_COLUMNS = ("board_name", "bios_version")
    FACT_COLUMNS = (*INVENTORY_FACT_COLUMNS, "latency_endpoint")

    class Meta:
        ordering = ["cluster__name", "name"]

    def __str__(self) -> str:
        return self.name

    def all_facts(self) -> dict:
        """The reported facts with those kept as columns, as the agent reported them."""
        columns = {c: getattr(self, c) for c in self.FACT_COLUMNS if getattr(self, c)}
        return {**(self.facts or {}), **columns}

    @property
    def queue(self) -> str:
        return naming.host_queue(self.name)

    def set_agent_token(self, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(32)
        self.agent_token_hash = hash_agent_token(token)
        return token

    def check_agent_token(self, token: str) -> bool:
        if not self.agent_token_hash or not token:
            return False
        return secrets.compare_digest(self.agent_token_hash, hash_agent_token(token))


class NumaNode(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="numa_nodes")
    node_id = models.PositiveIntegerField()
    cpus = models.JSONField(default=list, help_text="Host core ids on this node.")
    memory_gib = models.PositiveIntegerField(default=0)
    hugepages_1g = models.PositiveIntegerField(default=0)
    # CPU package of the node's cores: among equally connected GPU sets the
    # planner takes the one on the fewest NUMA nodes, then the fewest sockets.
    socket = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["host", "node_id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "node_id"], name="numa_node_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:numa{self.node_id}"


class Gpu(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveIntegerField()
    uuid = models.CharField(max_length=64, unique=True)
    pci_address = models.CharField(max_length=16)
    model = models.CharField(max_length=100)
    memory_mib = models.PositiveIntegerField(default=0)
    numa_node = models.IntegerField(null=True, blank=True)
    cpu_affinity = models.JSONField(default=list, blank=True)
    health = models.CharField(max_length=16, choices=GpuHealth.choices, default=GpuHealth.HEALTHY)
    mode = models.CharField(max_length=16, choices=GpuMode.choices, default=GpuMode.EXCLUSIVE)
    cordoned = models.BooleanField(default=False)
    cordon_reason = models.CharField(max_length=500, blank=True)
    # VFIO passes whole IOMMU groups: the GPU's group, and the devices in it that are
    # neither this GPU's own functions nor bridges (then it is never passed through).
    iommu_group = models.IntegerField(null=True, blank=True)
    iommu_foreign = models.JSONField(default=list, blank=True)
    # Sum of the milli-GPU held by allocations. The check constraint is the
    # database's own guard against over-commit: two racing scheduling cycles
    # that both add to one GPU cannot both commit past 1000.
    allocated_milli = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["host", "index"]
        constraints = [
            models.UniqueConstraint(fields=["host", "index"], name="gpu_index_unique"),
            models.UniqueConstraint(fields=["host", "pci_address"], name="gpu_pci_unique"),
            models.CheckConstraint(
                condition=Q(allocated_milli__gte=0) & Q(allocated_milli__lte=1000),
                name="gpu_never_overcommitted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host}:GPU{self.index}"

    @property
    def label(self) -> str:
        return gpu_label(self.index)

    @property
    def free_milli(self) -> int:
        return 1000 - self.allocated_milli


def gpu_label(index: int) -> str:
    """The name ``nvidia-smi topo -m`` and the pages give GPU ``index``: ``GPU3``."""
    return f"GPU{index}"


class GpuLink(models.Model):
    """One cell of the host's `nvidia-smi topo -m` matrix: two GPUs (by index) or a GPU
    and a NIC (by name). Each end is either ``*_gpu`` or ``*_nic``."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="links")
    a_gpu = models.PositiveIntegerField(null=True, blank=True, help_text="GPU index")
    a_nic = models.CharField(max_length=32, blank=True, help_text="NIC name")
    b_gpu = models.PositiveIntegerField(null=True, blank=True)
    b_nic = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=8, help_text="NV#, PIX, PXB, PHB, NODE or SYS")
    nvlinks = models.PositiveIntegerField(default=0)

    class Meta:
        # GPUs by index, then NICs by name, on every database (NULLs last).
        ordering = ["host", F("a_gpu").asc(nulls_last=True), "a_nic",
                    F("b_gpu").asc(nulls_last=True), "b_nic"]
        constraints = [
            models.UniqueConstraint(
                "host", Coalesce("a_gpu", Value(-1)), "a_nic", Coalesce("b_gpu", Value(-1)),
                "b_nic", name="link_unique"),
            models.CheckConstraint(
                condition=(Q(a_gpu__isnull=False, a_nic="") | (Q(a_gpu__isnull=True) & ~Q(a_nic="")))
                & (Q(b_gpu__isnull=False, b_nic="") | (Q(b_gpu__isnull=True) & ~Q(b_nic=""))),
                name="link_ends_gpu_or_nic"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.a}-{self.b} {self.kind}"

    @staticmethod
    def end_of(label: str) -> tuple[int | None, str]:
        """A matrix label as the agent reports it -> (GPU index, "") or (None, NIC name)."""
        if label.startswith("GPU") and label[3:].isdigit():
            return int(label[3:]), ""
        return None, label

    @property
    def a(self) -> str:
        return gpu_label(self.a_gpu) if self.a_gpu is not None else self.a_nic

    @property
    def b(self) -> str:
        return gpu_label(self.b_gpu) if self.b_gpu is not None else self.b_nic


class Nic(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="nics")
    name = models.CharField(max_length=32)
    label = models.CharField(max_length=16, blank=True, help_text="NIC<n> in the topo matrix")
    numa_node = models.IntegerField(null=True, blank=True)
    pci_address = models.CharField(max_length=16, blank=True)
    link_type = models.CharField(max_length=16, blank=True, help_text="infiniband or ethernet")
    sriov_totalvfs = models.PositiveIntegerField(default=0)
    sriov_numvfs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["host", "name"]
        constraints = [
            models.UniqueConstraint(fields=["host", "name"], name="nic_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.name}"


class NicVf(models.Model):
    """One SR-IOV virtual function of a NIC (sysfs ``virtfn<index>``), passed into a VM
    whole for GPUDirect RDMA; held through a ``NicVfClaim``."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="nic_vfs")
    nic = models.ForeignKey(Nic, on_delete=models.CASCADE, related_name="vfs")
    index = models.PositiveIntegerField()
    pci_address = models.CharField(max_length=16)

    class Meta:
        ordering = ["host", "nic", "index"]
        constraints = [
            models.UniqueConstraint(fields=["host", "pci_address"], name="nic_vf_pci_unique"),
            models.UniqueConstraint(fields=["nic", "index"], name="nic_vf_index_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.nic}:vf{self.index}"
