"""A VM is backed by 1 GiB hugepages only on a host whose agent reported a 1 GiB
hugetlbfs mount (``Host.hugetlbfs_1g``; not reported yet counts as mounted)."""

import pytest

from console.core.actions.workflow import provision_spec
from console.core.choices import JobState
from console.core.models import Host, Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_host_without_a_1g_hugetlbfs_backs_no_vm_with_hugepages(cluster, submit):
    job = Job.objects.get(pk=submit(gpus_per_host=1, gpu_model="A100-SXM4-40GB",
                                    vcpus_per_host=4, memory_gib_per_host=8).pk)
    assert job.state == JobState.RUNNING
    host = job.allocations.first().host
    assert provision_spec(job, host).hugepages
    Host.objects.filter(pk=host.pk).update(hugetlbfs_1g=False)
    host.refresh_from_db()
    assert not provision_spec(job, host).hugepages
