"""A job that requires KVM (eager Celery, the agent's own reports): it waits with the
KVM reason while every host runs QEMU/TCG, and runs once a host reports KVM."""

import time

import pytest
from django.utils import translation

from console.core.actions.agents import do_agent_heartbeat, do_agent_register
from console.core.choices import Hypervisor, JobState
from console.core.models import Allocation, Host, Job
from console.core.planning import run_cycle

pytestmark = pytest.mark.django_db(transaction=True)

TCG = {"hypervisor": "qemu", "hypervisor_warnings": ["KVM not usable (no vmx/svm)"]}


def _beat(host, hypervisor):
    return do_agent_heartbeat(host, {"host": host.name, "sent_at": time.time(),
                                     "hypervisor": hypervisor})


def test_a_kvm_job_waits_on_tcg_hosts_with_the_reason_and_runs_on_a_kvm_host(cluster, submit):
    for host in Host.objects.all():
        _beat(host, TCG)
    assert set(Host.objects.values_list("hypervisor", flat=True)) == {Hypervisor.QEMU}

    job = submit(gpus_per_host=0, vcpus_per_host=4, memory_gib_per_host=8, require_kvm=True)
    job = Job.objects.get(pk=job.pk)
    assert job.require_kvm is True
    assert job.state == JobState.QUEUED
    assert job.pending_code == "no_host_with_kvm", job.pending_reason
    assert job.pending_data["kvm_hosts"] == 0
    assert job.pending_data["hosts_that_fit_without_kvm"] == 4
    assert "no host with KVM" in job.pending_reason
    with translation.override("zh-hans"):
        from console.ui.explain import pending_text

        text = pending_text(job)
    assert "KVM" in text and text != job.pending_reason  # the reason, translated

    # The same job without the requirement would have run on any of them.
    plain = Job.objects.get(pk=submit(gpus_per_host=0, vcpus_per_host=4,
                                      memory_gib_per_host=8).pk)
    assert plain.state == JobState.RUNNING

    # ada-1's agent registers again, reporting what its (simulated) host runs: KVM.
    from hostagent import actions

    ada = Host.objects.get(name="ada-1")
    do_agent_register(ada, inventory={}, agent_version="t",
                      hypervisor=actions.hypervisor_facts("ada-1"))
    ada.refresh_from_db()
    assert ada.hypervisor == Hypervisor.KVM
    run_cycle()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING, job.pending_reason
    assert set(Allocation.objects.filter(job=job).values_list("host__name", flat=True)) == {"ada-1"}
    # The agent is told too: its pre-flight refuses a host that cannot run KVM.
    from console.core.actions.workflow import provision_spec

    assert provision_spec(job, ada).require_kvm is True
    assert provision_spec(plain, plain.allocations.first().host).require_kvm is False


def test_a_heartbeat_without_a_hypervisor_keeps_the_column(cluster):
    host = Host.objects.get(name="dgx-1")
    _beat(host, {"hypervisor": "kvm"})
    do_agent_heartbeat(host, {"host": host.name, "sent_at": time.time()})
    host.refresh_from_db()
    assert host.hypervisor == Hypervisor.KVM
    _beat(host, {"hypervisor": "qemu"})
    host.refresh_from_db()
    assert host.hypervisor == Hypervisor.QEMU


def test_a_job_naming_an_image_runs_in_the_cluster_whose_catalogue_holds_it(cluster, submit):
    from console.core.actions.images import do_create_image
    from console.core.actions.inventory import do_register_host
    from console.core.models import Cluster
    from coupler_demo.profiles import inventory_for

    other = Cluster.objects.create(name="Other", slug="other")
    do_create_image(cluster=other, actor="test", name="busybox", format="raw",
                    disk="busybox.img", sha256="ab" * 32)
    # Every host of the test cluster is free, but the image is only in "other".
    job = Job.objects.get(pk=submit(gpus_per_host=0, vcpus_per_host=4, memory_gib_per_host=8,
                                    image="busybox").pk)
    assert job.state == JobState.QUEUED and job.pending_code == "no_host_with_image"
    assert job.pending_data["hosts_with_image"] == 0
    do_register_host(cluster=other, name="ada-9", inventory=inventory_for(
        "pcie_rtx6000ada", "ada-9", group="rack-z"), simulated=True)
    run_cycle()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING, job.pending_reason
    assert set(Allocation.objects.filter(job=job).values_list("host__name", flat=True)) == {"ada-9"}
