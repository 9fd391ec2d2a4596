import itertools

import pytest

from console.core.actions.jobs import do_cancel_job, do_submit_job
from console.core.choices import JOB_TRANSITIONS, JobState
from console.core.models import Event, Job
from console.core.transitions import InvalidTransition, is_allowed, transition_job


def submit(tenant, **spec):
    body = {"name": "j", "gpus_per_host": 1, "vcpus_per_host": 4, "memory_gib_per_host": 16}
    body.update(spec)
    return do_submit_job(tenant=tenant, actor="test", **body)


def test_every_state_has_a_row_in_the_table():
    assert set(JOB_TRANSITIONS) == set(JobState)


def test_terminal_states_lead_nowhere():
    for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        assert JOB_TRANSITIONS[state] == frozenset()


def test_the_lifecycle_of_design_md_is_allowed():
    path = [JobState.QUEUED, JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING,
            JobState.TEARDOWN, JobState.PREEMPTED, JobState.QUEUED]
    for a, b in itertools.pairwise(path):
        assert is_allowed(a, b), (a, b)


def test_queued_cannot_jump_to_running():
    assert not is_allowed(JobState.QUEUED, JobState.RUNNING)


@pytest.mark.django_db
def test_transition_moves_stamps_and_records_an_event(cluster, tenant_a):
    job = submit(tenant_a)
    assert transition_job(job.pk, JobState.SCHEDULED, reason="placed", actor="scheduler")
    job.refresh_from_db()
    assert job.state == JobState.SCHEDULED
    assert job.scheduled_at is not None
    event = Event.objects.filter(job=job).last()
    assert (event.from_state, event.to_state, event.actor) == ("queued", "scheduled", "scheduler")


@pytest.mark.django_db
def test_compare_and_swap_refuses_a_stale_source_state(cluster, tenant_a):
    job = submit(tenant_a)
    assert transition_job(job.pk, JobState.SCHEDULED, from_states=[JobState.QUEUED])
    # A second worker that also read QUEUED loses the race and changes nothing.
    assert not transition_job(job.pk, JobState.SCHEDULED, from_states=[JobState.QUEUED])
    assert Event.objects.filter(job=job, to_state=JobState.SCHEDULED).count() == 1


@pytest.mark.django_db
def test_an_edge_outside_the_table_raises(cluster, tenant_a):
    job = submit(tenant_a)
    with pytest.raises(InvalidTransition):
        transition_job(job.pk, JobState.RUNNING, from_states=[JobState.QUEUED])
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


@pytest.mark.django_db
def test_cancel_of_a_queued_job_ends_it(cluster, tenant_a):
    job = do_cancel_job(submit(tenant_a), actor="alice")
    assert job.state == JobState.CANCELLED
    assert job.finished_at is not None


@pytest.mark.django_db
def test_cancel_of_a_running_job_goes_through_teardown(cluster, tenant_a):
    job = submit(tenant_a)
    for state in (JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING):
        transition_job(job.pk, state)
    job = do_cancel_job(job, actor="alice")
    assert job.state in (JobState.TEARDOWN, JobState.CANCELLED)
    assert job.teardown_outcome == "cancelled" or job.state == JobState.CANCELLED


@pytest.mark.django_db
def test_job_rows_refuse_a_share_on_several_gpus(cluster, tenant_a):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Job.objects.create(tenant=tenant_a, name="x", gpus_per_host=2, gpu_milli=500,
                           vcpus_per_host=1, memory_gib_per_host=1)
