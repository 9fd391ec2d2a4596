"""SQL statement budgets of the workflow's hot paths (issue 15).

Each hot path runs on its own (a ``db`` test: ``on_commit`` work is not run, so a
submit is counted without the cycle it asks for, a cycle without the provisioning
it sends). A scheduling cycle and the provisioning of what it placed must cost the
same number of statements whether they handle 3 jobs or 12: the cost of a cycle
does not grow with the number of jobs it places, only with the hosts and tenants
it reads. The figures are budgets, with a little room above today's counts; a
change that adds statements per job on these paths fails here.
"""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.core.actions.agents import do_issue_agent_token
from console.core.actions.jobs import do_cancel_job, do_submit_job
from console.core.actions.workflow import do_record_member_up, do_start_provisioning_many
from console.core.choices import JobState
from console.core.models import Allocation, Gpu, Host, Job
from console.core.planning import run_cycle

pytestmark = pytest.mark.django_db

SUBMIT_BUDGET = 20
CYCLE_BUDGET = 39          # whatever the number placed (leaves, workload mix, image catalogue, JobMember rows)
PROVISION_BUDGET = 10      # for every job one cycle placed, together (images read once)
MEMBER_UP_BUDGET = 16  # incl. the check that the answering host holds the job and its JobMember row
CANCEL_BUDGET = 12
QUIET_HEARTBEAT_BUDGET = 1   # once the web process has read the host (2 the first time)


def _queue(tenant, n):
    """n small queued jobs (1 GPU, CPU-only, alternating), straight into the table."""
    jobs = [Job(tenant=tenant, name=f"b{i}", gpus_per_host=i % 2, vcpus_per_host=2,
                memory_gib_per_host=4, state=JobState.QUEUED) for i in range(n)]
    return [j.pk for j in Job.objects.bulk_create(jobs)]


def _count(fn):
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return len(ctx.captured_queries), result


def test_submit_budget(cluster, tenant_a, django_assert_max_num_queries):
    with django_assert_max_num_queries(SUBMIT_BUDGET):
        job = do_submit_job(tenant=tenant_a, actor="t", name="j", gpus_per_host=1,
                            vcpus_per_host=2, memory_gib_per_host=4)
    assert job.state == JobState.QUEUED


def test_a_cycle_costs_the_same_for_3_or_12_placements(cluster, tenant_a):
    _queue(tenant_a, 1)
    run_cycle()  # from now on running jobs are read too
    small_ids = _queue(tenant_a, 3)
    small, report = _count(run_cycle)
    assert sorted(report.placed) == sorted(small_ids)
    big_ids = _queue(tenant_a, 12)
    big, report = _count(run_cycle)
    assert sorted(report.placed) == sorted(big_ids)
    assert big == small, (small, big)
    assert big <= CYCLE_BUDGET, big
    # What the bulk commit wrote is what one-by-one commits would have: every GPU's
    # counter is the sum of its allocation rows, every job one core row per host.
    for gpu in Gpu.objects.all():
        held = sum(Allocation.objects.filter(gpu=gpu).values_list("milli", flat=True))
        assert gpu.allocated_milli == held
    for job_id in small_ids + big_ids:
        assert Allocation.objects.filter(job_id=job_id, gpu__isnull=True).count() == 1
        assert Job.objects.get(pk=job_id).state == JobState.SCHEDULED


def test_a_cycle_with_nothing_queued_reads_no_snapshot(cluster, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        run_cycle()


def test_a_long_queue_costs_no_update_per_waiting_job(cluster, tenant_a):
    """Jobs that cannot be placed keep their pending reason: written once, not per cycle."""
    Job.objects.bulk_create([Job(tenant=tenant_a, name=f"big{i}", gpus_per_host=16,
                                 vcpus_per_host=2, memory_gib_per_host=4,
                                 state=JobState.QUEUED) for i in range(10)])
    def pending_writes():
        with CaptureQueriesContext(connection) as ctx:
            run_cycle()
        return [q["sql"] for q in ctx.captured_queries
                if q["sql"].startswith("UPDATE") and "pending_code" in q["sql"]]

    first = pending_writes()
    # The first cycle writes the ten reasons (one statement on PostgreSQL, one per job
    # elsewhere); the next writes none.
    assert 1 <= len(first) <= (1 if connection.vendor == "postgresql" else 10), first
    assert pending_writes() == []
    assert set(Job.objects.values_list("pending_code", flat=True)) != {""}


def test_provisioning_what_a_cycle_placed_costs_the_same_for_3_or_12(cluster, tenant_a):
    _queue(tenant_a, 1)
    run_cycle()
    small_ids = _queue(tenant_a, 3)
    run_cycle()
    small, commands = _count(lambda: do_start_provisioning_many(small_ids))
    assert {c.job_id for c in commands} == set(small_ids)
    big_ids = _queue(tenant_a, 12)
    run_cycle()
    big, commands = _count(lambda: do_start_provisioning_many(big_ids))
    assert {c.job_id for c in commands} == set(big_ids)
    assert big == small <= PROVISION_BUDGET, (small, big)
    assert all(c.spec["cpus"] for c in commands)
    assert set(Job.objects.filter(pk__in=big_ids).values_list("state", flat=True)) == {
        JobState.PROVISIONING}
    assert set(Job.objects.filter(pk__in=big_ids).values_list("generation", flat=True)) == {1}


def test_host_answer_and_cancel_budgets(cluster, tenant_a):
    (job_id,) = _queue(tenant_a, 1)
    run_cycle()
    (command,) = do_start_provisioning_many([job_id])
    answer, moved = _count(lambda: do_record_member_up(job_id, command.host, command.generation))
    assert moved and Job.objects.get(pk=job_id).state == JobState.RUNNING
    assert answer <= MEMBER_UP_BUDGET, answer
    cancel, job = _count(lambda: do_cancel_job(Job.objects.get(pk=job_id), actor="t"))
    assert job.state == JobState.TEARDOWN
    assert cancel <= CANCEL_BUDGET, cancel


def test_a_heartbeat_that_changes_nothing_is_cheap(cluster, api_client):
    host = Host.objects.get(name="dgx-1")
    token = do_issue_agent_token(host, actor="t")

    def beat():
        return api_client.post(f"/api/v1/agent/hosts/{host.name}/heartbeat/",
                               {"host": host.name, "sent_at": time.time(), "domains": []},
                               format="json", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert beat().status_code == 200  # the first one records the (empty) domain report
    first, response = _count(beat)  # quiet: the host is read, then remembered
    assert response.status_code == 200 and first <= QUIET_HEARTBEAT_BUDGET + 1, first
    before = Host.objects.get(pk=host.pk).last_heartbeat
    count, response = _count(beat)
    assert response.status_code == 200 and response.json()["state"] == "ready"
    assert count <= QUIET_HEARTBEAT_BUDGET, count
    assert Host.objects.get(pk=host.pk).last_heartbeat > before
