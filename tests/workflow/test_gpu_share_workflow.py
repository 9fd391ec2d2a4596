"""A GPU-share job runs with a mediated device on a shared GPU, never a passthrough."""

import xml.etree.ElementTree as ET

import pytest

from console.core.choices import JobState
from console.core.models import Allocation, Job
from hostagent import runtime

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_shares_pack_onto_one_gpu_each_with_its_own_mdev(cluster, submit):
    # The default policy (FGD) measures fragmentation against the recent arrivals: with
    # whole-GPU work among them, breaking a second idle GPU costs more than packing.
    whole = submit(gpus_per_host=1, gpu_model="RTX-6000-Ada")
    assert Job.objects.get(pk=whole.pk).state == JobState.RUNNING
    first = Job.objects.get(pk=submit(gpus_per_host=1, gpu_milli=400,
                                      gpu_model="RTX-6000-Ada").pk)
    second = Job.objects.get(pk=submit(gpus_per_host=1, gpu_milli=500,
                                       gpu_model="RTX-6000-Ada").pk)
    assert first.state == second.state == JobState.RUNNING
    rows = {j.pk: Allocation.objects.get(job=j, gpu__isnull=False) for j in (first, second)}
    assert rows[first.pk].gpu_id == rows[second.pk].gpu_id  # packed on one shared GPU
    assert rows[first.pk].gpu.allocated_milli == 900
    uuids = set()
    for job in (first, second):
        dom = ET.fromstring(runtime.domain_xml(rows[job.pk].host.name, job.domain_name))
        assert dom.findall("./devices/hostdev[@type='pci']") == []
        (mdev,) = dom.findall("./devices/hostdev[@type='mdev']")
        uuids.add(mdev.find("./source/address").get("uuid"))
    assert len(uuids) == 2
