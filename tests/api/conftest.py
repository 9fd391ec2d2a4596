"""Fixtures for the REST API tests: jobs of each tenant in a chosen state."""

import pytest


@pytest.fixture
def make_job(db):
    """make_job(tenant, **fields) -> a Job row written directly, for reading tests."""
    from console.core.models import Job

    def make(tenant, **fields):
        values = {
            "name": "job",
            "gpus_per_host": 1,
            "vcpus_per_host": 4,
            "memory_gib_per_host": 16,
            "pending_reason": "Waiting for the next scheduling cycle.",
            "pending_code": "new",
        }
        values.update(fields)
        return Job.objects.create(tenant=tenant, **values)

    return make


@pytest.fixture
def job_a(make_job, tenant_a):
    return make_job(tenant_a, name="job-of-a")


@pytest.fixture
def job_b(make_job, tenant_b):
    return make_job(tenant_b, name="job-of-b")


@pytest.fixture
def job_count():
    from console.core.models import Job

    return lambda: Job.objects.count()
