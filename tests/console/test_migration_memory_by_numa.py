"""Migration 0007_h5_memory_by_numa gives allocation rows from before the stored split
the split the snapshot used to infer for them, and leaves stored splits alone."""

import importlib

import pytest
from django.apps import apps

from console.core.models import Allocation, Job
from console.core.snapshot import memory_by_numa

migration = importlib.import_module("console.core.migrations.0007_h5_memory_by_numa")
pytestmark = pytest.mark.django_db


def test_old_rows_get_the_split_they_were_read_with(cluster, tenant_a):
    job = Job.objects.create(tenant=tenant_a, name="old", gpus_per_host=0, vcpus_per_host=2,
                             memory_gib_per_host=7)
    host = cluster.hosts.get(name="dgx-1")
    old = Allocation.objects.create(job=job, host=host, numa_nodes=[1, 0], memory_gib=7)
    kept = Allocation.objects.create(job=Job.objects.create(
        tenant=tenant_a, name="new", gpus_per_host=0, vcpus_per_host=2, memory_gib_per_host=128),
        host=host, numa_nodes=[0, 1], memory_gib=128, memory_by_numa=[[0, 100], [1, 28]])

    migration.fill(apps, None)

    old.refresh_from_db()
    kept.refresh_from_db()
    assert old.memory_by_numa == [[0, 4], [1, 3]]
    assert memory_by_numa(old.memory_gib, old.numa_nodes, old.memory_by_numa) == {0: 4, 1: 3}
    assert kept.memory_by_numa == [[0, 100], [1, 28]]
