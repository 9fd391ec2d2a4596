"""NIC virtual functions for a multi-host job, through the API on the demo's hosts: each
member gets VFs of NICs at PIX/PXB distance from its GPUs, the VFs are passed into the VM
as hostdevs, the job page shows them and the leaves the gang spans; the database refuses
a VF handed out twice."""

import xml.etree.ElementTree as ET

import pytest
from django.db import IntegrityError, transaction

from console.core.models import Allocation, GpuLink, Job, NicVf, NicVfClaim

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dgx_pair(db):
    from console.core.actions.inventory import do_register_host
    from console.core.models import Cluster
    from coupler_demo.profiles import inventory_for

    cluster = Cluster.objects.create(name="RDMA", slug="rdma")
    for name in ("dgx-1", "dgx-2"):
        do_register_host(cluster=cluster, name=name,
                         inventory=inventory_for("dgx_a100", name, group="leaf-a"))
    return cluster


def test_a_two_host_gang_gets_close_vfs_passed_through_and_shown(
    dgx_pair, member_a, client_for, client
):
    from hostagent import runtime

    api = client_for(member_a)
    response = api.post("/api/v1/jobs/", {
        "tenant": "tenant-a", "name": "gang", "gpus_per_host": 8, "hosts": 2,
        "gpu_model": "A100-SXM4-40GB", "vcpus_per_host": 64, "memory_gib_per_host": 256,
    }, format="json")
    assert response.status_code == 201, response.json()
    detail = api.get(f"/api/v1/jobs/{response.json()['id']}/").json()
    assert detail["state"] == "running", detail["pending_reason"]
    assert detail["leaves"] == 1
    job = Job.objects.get(pk=detail["id"])
    for part in detail["placement"]:
        gpus = {a.gpu.index for a in Allocation.objects.filter(
            job=job, host__name=part["host"], gpu__isnull=False).select_related("gpu")}
        close = set(GpuLink.objects.filter(host__name=part["host"], kind__in=["PIX", "PXB"],
                                           a_gpu__in=gpus)
                    .values_list("b_nic", flat=True))
        assert len(part["nic_vfs"]) == 8
        assert {vf["nic"] for vf in part["nic_vfs"]} <= close
        dom = ET.fromstring(runtime.domain_xml(part["host"], job.domain_name))
        passed = {"{}:{}:{}.{}".format(*(a.get(k)[2:] for k in ("domain", "bus", "slot",
                                                                 "function")))
                  for a in dom.iterfind("devices/hostdev/source/address") if a.get("bus")}
        assert {vf["pci_address"] for vf in part["nic_vfs"]} <= passed
    client.force_login(member_a)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Leaf switches" in page and detail["placement"][0]["nic_vfs"][0]["pci_address"] in page

    # the claims are the database's guard: a held VF cannot be claimed again
    claimed = NicVfClaim.objects.first()
    other = Allocation.objects.filter(job=job, gpu__isnull=True).exclude(
        pk=claimed.allocation_id).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        NicVfClaim.objects.create(allocation=other, vf=claimed.vf)
    # cancel gives every VF back
    api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert not NicVfClaim.objects.exists() and NicVf.objects.count() == 2 * 10 * 8


def test_a_single_leaf_gang_over_two_leaves_waits_with_the_reason(member_a, client_for, db):
    from console.core.actions.inventory import do_register_host
    from console.core.models import Cluster
    from coupler_demo.profiles import inventory_for

    cluster = Cluster.objects.create(name="Leaves", slug="leaves")
    for name, leaf in (("dgx-1", "leaf-a"), ("dgx-2", "leaf-b")):
        do_register_host(cluster=cluster, name=name,
                         inventory=inventory_for("dgx_a100", name, group=leaf))
    api = client_for(member_a)
    response = api.post("/api/v1/jobs/", {
        "tenant": "tenant-a", "name": "one-leaf", "gpus_per_host": 8, "hosts": 2,
        "single_leaf": True, "vcpus_per_host": 64, "memory_gib_per_host": 256,
    }, format="json")
    assert response.status_code == 201, response.json()
    detail = api.get(f"/api/v1/jobs/{response.json()['id']}/").json()
    assert detail["state"] == "queued"
    assert detail["pending_code"] == "no_single_leaf", detail["pending_reason"]
