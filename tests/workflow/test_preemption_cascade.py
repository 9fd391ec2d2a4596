"""Preemption at the console, over several cycles (demo-like quotas).

A tenant under its GPU guarantee preempts borrowed work once: while the victims are
still tearing down (their allocations still held, their tenant's usage still counting
them), later cycles preempt nothing more. And a tenant below its *memory* guarantee
still gives back the GPUs it borrows.
"""

import pytest

from console.core import enqueue
from console.core.actions.tenants import do_set_quota
from console.core.choices import ACTIVE_JOB_STATES, JobState
from console.core.models import Event, Gpu, Job
from console.core.planning import run_cycle
from console.core.usage import tenant_usage

pytestmark = pytest.mark.django_db

TOTAL_GPUS = 28  # the cluster fixture: 2 × 8 A100, 8 H100, 4 RTX 6000 Ada


@pytest.fixture
def teardown_held(monkeypatch):
    """Tasks are not sent: the test runs the cycles itself, placed jobs hold their
    allocations, and preempted jobs stay in TEARDOWN (holding their GPUs) until
    ``finish()`` runs their teardown."""
    sent: list[tuple] = []
    monkeypatch.setattr(enqueue, "on_commit_send", lambda path, *args: sent.append((path, args)))

    def finish():
        from console.core.tasks.workflow import teardown_job

        todo = [a[0] for p, a in sent if p.endswith(".teardown_job")]
        sent.clear()
        for job_id in todo:
            teardown_job(job_id)

    return finish


def _fill_with_borrowers(cluster, submit, tenant):
    """``tenant`` holds one 1-GPU job on every GPU of the cluster."""
    jobs = [
        submit(tenant=tenant, name=f"b{i}", gpus_per_host=1, vcpus_per_host=2,
               memory_gib_per_host=8)
        for i in range(TOTAL_GPUS)
    ]
    run_cycle()
    for j in jobs:
        j.refresh_from_db()
        assert j.state in ACTIVE_JOB_STATES - {JobState.TEARDOWN}, (j.name, j.pending_reason)
    assert tenant_usage(tenant)["gpus"] == TOTAL_GPUS
    return jobs


def _submit(submit, tenant, name, gpus):
    job = submit(tenant=tenant, name=name, gpus_per_host=gpus, vcpus_per_host=2 * gpus,
                 memory_gib_per_host=8 * gpus)
    run_cycle()
    job.refresh_from_db()
    return job


def _preempted(tenant):
    """Jobs of ``tenant`` the scheduler ever preempted (their TEARDOWN events)."""
    return set(
        Event.objects.filter(job__tenant=tenant, to_state=JobState.TEARDOWN,
                             data__has_key="for_job")
        .values_list("job_id", flat=True)
    )


def _live_gpus(tenant):
    """Whole GPUs held by the tenant's jobs that are not being torn down."""
    live = [s for s in ACTIVE_JOB_STATES if s != JobState.TEARDOWN]
    return sum(
        j.gpus_per_host * j.host_count for j in Job.objects.filter(tenant=tenant, state__in=live)
    )


def test_pending_teardown_does_not_cascade_preemptions(
    cluster, submit, tenant_a, tenant_b, teardown_held
):
    # demo-like: borealis (b) guaranteed 16 GPUs and borrowing the rest; aurora (a)
    # guaranteed 8 and idle
    do_set_quota(tenant_b, resource="gpus", guaranteed=16, limit=64)
    do_set_quota(tenant_a, resource="gpus", guaranteed=8, limit=16)
    _fill_with_borrowers(cluster, submit, tenant_b)

    big = _submit(submit, tenant_a, "aurora-8", 8)
    first = _preempted(tenant_b)
    assert len(first) == 8  # one host's worth, not more
    assert big.state == JobState.QUEUED and big.pending_code == "waiting_for_preemption"
    assert Job.objects.filter(pk__in=first, state=JobState.TEARDOWN).count() == 8

    # teardown is slow: several cycles run while the victims still hold their GPUs
    for _ in range(4):
        report = run_cycle()
        assert report.preempted == []
        big.refresh_from_db()
        assert big.state == JobState.QUEUED
        assert big.pending_code == "waiting_for_preemption"
        assert big.pending_data["leaving_jobs"] == 8
    assert _preempted(tenant_b) == first
    assert _live_gpus(tenant_b) == TOTAL_GPUS - 8 >= 16

    teardown_held()  # the victims stop; the freed host goes to aurora
    run_cycle()
    big.refresh_from_db()
    assert big.state in ACTIVE_JOB_STATES - {JobState.TEARDOWN}, big.pending_reason
    assert _preempted(tenant_b) == first
    assert not Job.objects.filter(pk__in=first, state=JobState.TEARDOWN).exists()
    assert tenant_usage(tenant_b)["gpus"] == TOTAL_GPUS - 8
    assert sum(g.allocated_milli for g in Gpu.objects.all()) == TOTAL_GPUS * 1000
    # and the next cycles leave everyone alone
    run_cycle()
    assert _preempted(tenant_b) == first


def test_a_second_waiting_job_waits_for_the_first_preemptions_to_finish(
    cluster, submit, tenant_a, tenant_b, teardown_held
):
    do_set_quota(tenant_b, resource="gpus", guaranteed=16, limit=64)
    do_set_quota(tenant_a, resource="gpus", guaranteed=8, limit=16)
    _fill_with_borrowers(cluster, submit, tenant_b)
    first_job = _submit(submit, tenant_a, "a-4", 4)
    first = _preempted(tenant_b)
    assert len(first) == 4
    second = _submit(submit, tenant_a, "a-4b", 4)
    assert _preempted(tenant_b) == first  # nothing more while the first four stop
    assert second.pending_code == "waiting_for_preemption"

    teardown_held()  # first four stop: a-4 starts; the next cycle preempts for a-4b
    run_cycle()
    run_cycle()
    first_job.refresh_from_db()
    assert first_job.state in ACTIVE_JOB_STATES - {JobState.TEARDOWN}
    teardown_held()
    run_cycle()
    second.refresh_from_db()
    assert second.state in ACTIVE_JOB_STATES - {JobState.TEARDOWN}, second.pending_reason
    assert len(_preempted(tenant_b)) == 8
    assert tenant_usage(tenant_b)["gpus"] == TOTAL_GPUS - 8 >= 16


def test_a_tenant_below_its_memory_guarantee_gives_back_borrowed_gpus(
    cluster, submit, tenant_a, tenant_b, teardown_held
):
    # borealis: 16 GPUs and 2048 GiB guaranteed; it borrows GPUs but uses little memory
    do_set_quota(tenant_b, resource="gpus", guaranteed=16, limit=64)
    do_set_quota(tenant_b, resource="memory_gib", guaranteed=2048, limit=4096)
    do_set_quota(tenant_a, resource="gpus", guaranteed=8, limit=16)
    _fill_with_borrowers(cluster, submit, tenant_b)
    assert tenant_usage(tenant_b)["memory_gib"] == TOTAL_GPUS * 8 < 2048

    big = _submit(submit, tenant_a, "aurora-8", 8)
    victims = _preempted(tenant_b)
    assert len(victims) == 8, big.pending_reason
    assert big.pending_code == "waiting_for_preemption"
    log = Event.objects.filter(job_id=min(victims), to_state=JobState.TEARDOWN).get()
    assert log.data["contested"] == ["gpus"]

    teardown_held()
    run_cycle()
    big.refresh_from_db()
    assert big.state in ACTIVE_JOB_STATES - {JobState.TEARDOWN}, big.pending_reason
    # borealis keeps its GPU guarantee (memory was never contested)
    assert tenant_usage(tenant_b)["gpus"] == TOTAL_GPUS - 8 >= 16


def test_no_gpu_is_taken_below_the_gpu_guarantee_even_with_memory_to_spare(
    cluster, submit, tenant_a, tenant_b, teardown_held
):
    # borealis borrows no GPU (guarantee = all it runs): nothing to take, aurora waits
    do_set_quota(tenant_b, resource="gpus", guaranteed=TOTAL_GPUS, limit=64)
    do_set_quota(tenant_b, resource="memory_gib", guaranteed=2048, limit=4096)
    do_set_quota(tenant_a, resource="gpus", guaranteed=8, limit=16)
    _fill_with_borrowers(cluster, submit, tenant_b)
    big = _submit(submit, tenant_a, "aurora-8", 8)
    assert _preempted(tenant_b) == set()
    assert big.pending_code == "no_host_with_free_gpus"
