"""Gang membership and per-host status are rows (``JobMember``): written when the job is
placed, moved by each host's answer for the current generation, read by the workflow
to decide when every member is up or down, removed with the allocation."""

import importlib

import pytest
from django.apps import apps

from console.core.actions.jobs import do_cancel_job
from console.core.choices import EventKind, JobState, MemberStatus
from console.core.models import Event, Job, JobMember

pytestmark = pytest.mark.django_db(transaction=True)


def _members(job):
    return {m.host.name: (m.status, m.generation)
            for m in JobMember.objects.filter(job=job).select_related("host")}


def test_a_gangs_members_are_up_in_its_generation(cluster, submit):
    job = Job.objects.get(pk=submit(gpus_per_host=8, host_count=2,
                                    gpu_model="A100-SXM4-40GB").pk)
    assert job.state == JobState.RUNNING, job.pending_reason
    assert _members(job) == {"dgx-1": (MemberStatus.UP, job.generation),
                             "dgx-2": (MemberStatus.UP, job.generation)}
    assert job.member_hosts(MemberStatus.UP) == set(job.members.values_list("host_id", flat=True))


def test_teardown_waits_for_the_member_that_is_not_down(cluster, submit, domains):
    from hostagent import runtime

    job = Job.objects.get(pk=submit(gpus_per_host=8, host_count=2,
                                    gpu_model="A100-SXM4-40GB").pk)
    runtime.inject_failure("dgx-2", "teardown", "domain stuck")
    do_cancel_job(job, actor="test")
    job.refresh_from_db()
    assert job.state == JobState.TEARDOWN
    assert _members(job) == {"dgx-1": (MemberStatus.DOWN, job.generation),
                             "dgx-2": (MemberStatus.UP, job.generation)}

    from console.core.tasks.workflow import teardown_job

    teardown_job(job.pk)  # the reconciler's re-send; the host now cleans up
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert _members(job) == {}  # released with the allocation


def test_a_member_that_failed_to_start_is_marked_failed(cluster, submit):
    from hostagent import runtime

    runtime.inject_failure("dgx-2", "provision", "hostdev busy")
    runtime.inject_failure("dgx-2", "teardown", "domain stuck")
    job = Job.objects.get(pk=submit(gpus_per_host=8, host_count=2,
                                    gpu_model="A100-SXM4-40GB").pk)
    assert job.state == JobState.TEARDOWN
    assert _members(job)["dgx-2"] == (MemberStatus.FAILED, job.generation)


def test_the_migration_reads_members_and_their_status_from_allocations_and_events(
        cluster, submit):
    migration = importlib.import_module("console.core.migrations.0009_h5_job_member")
    job = Job.objects.get(pk=submit(gpus_per_host=8, host_count=2,
                                    gpu_model="A100-SXM4-40GB").pk)
    expected = _members(job)
    # An answer from an older generation counts for nothing.
    Event.objects.create(job=job, host=job.members.first().host, kind=EventKind.MEMBER_DOWN,
                         data={"attempt": job.generation - 1})
    JobMember.objects.all().delete()

    migration.fill(apps, None)

    assert _members(job) == expected


def test_an_answer_from_a_holding_host_without_a_member_row_records_one(cluster, submit):
    job = Job.objects.get(pk=submit(gpus_per_host=8, gpu_model="A100-SXM4-40GB").pk)
    assert job.state == JobState.RUNNING, job.pending_reason
    JobMember.objects.filter(job=job).delete()  # allocated by hand, or before the table
    do_cancel_job(job, actor="test")
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
