import pytest
from django.utils import timezone


@pytest.fixture
def login(client):
    """login(user) -> the test client signed in as that user."""

    def make(user):
        client.force_login(user)
        return client

    return make


@pytest.fixture
def quotas_a(tenant_a, cluster):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=4, limit=8)
    do_set_quota(tenant_a, resource="vcpus", guaranteed=64, limit=128)
    return tenant_a


@pytest.fixture
def submit(cluster):
    """submit(tenant, user, **overrides) -> a queued job through the action."""
    from console.core.actions.jobs import do_submit_job

    def make(tenant, user, **overrides):
        spec = {"name": "train", "gpus_per_host": 2, "host_count": 1, "vcpus_per_host": 8,
                "memory_gib_per_host": 64}
        spec.update(overrides)
        return do_submit_job(tenant=tenant, submitter=user, **spec)

    return make


@pytest.fixture
def place():
    """place(job, host_name, gpu_indices, cores) -> allocation rows as the
    scheduler would write them, with the job RUNNING."""
    from console.core.choices import JobState
    from console.core.models import Allocation, CoreClaim, Gpu, Host, Job

    def make(job, host_name, gpu_indices, cores=(0, 1, 2, 3), numa=(0,), memory=64):
        host = Host.objects.get(name=host_name)
        cpu = Allocation.objects.create(job=job, host=host, gpu=None, milli=1000,
                                        cpus=list(cores), numa_nodes=list(numa),
                                        memory_gib=memory)
        for core in cores:
            CoreClaim.objects.create(allocation=cpu, host=host, core=core)
        for index in gpu_indices:
            gpu = Gpu.objects.get(host=host, index=index)
            Allocation.objects.create(job=job, host=host, gpu=gpu, milli=1000)
            Gpu.objects.filter(pk=gpu.pk).update(allocated_milli=1000)
        now = timezone.now()
        Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, scheduled_at=now,
                                              provisioning_at=now, running_at=now,
                                              pending_reason="", pending_code="")
        job.refresh_from_db()
        return job

    return make


@pytest.fixture
def incident(cluster, tenant_a):
    from console.core.choices import FaultKind
    from console.core.models import Gpu, Host, Incident

    host = Host.objects.get(name="dgx-1")
    gpu = Gpu.objects.get(host=host, index=3)
    Gpu.objects.filter(pk=gpu.pk).update(cordoned=True, cordon_reason="Xid 79")
    inc = Incident.objects.create(
        host=host, gpu=gpu, title="GPU3 fell off the bus", xid=79,
        fault=FaultKind.HARDWARE, pci_address=gpu.pci_address,
        raw_lines="kernel: NVRM: Xid (PCI:0000:4e:00): 79, GPU has fallen off the bus.\n"
                  "kernel: pcieport 0000:40:01.1: AER: Uncorrected (Fatal) error received",
        meaning="The GPU is no longer reachable over PCIe.",
        recommended_action="Drain the host and reseat or replace the GPU.",
        runbook="cuda_launch_failed",
        runbook_evidence={"kernel_log": ["Xid 79 at 12:00:01"]},
    )
    inc.tenants.add(tenant_a)
    return inc
