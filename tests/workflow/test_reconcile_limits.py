"""The reconciler's repairs are bounded and never race the scheduler.

- the counter correction runs under the scheduler's leader lock, with the sums read
  inside it (a placement is never erased), and is skipped while the lock is busy;
- a stuck step is re-sent at most COUPLER_PROVISION_MAX_ATTEMPTS times; then a start
  is torn down (retry or failed) and a teardown opens an Incident and cordons the host.
"""

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.core.actions import reconcile as reconcile_actions
from console.core.choices import HostState, JobState, TeardownOutcome
from console.core.models import Allocation, Event, Gpu, Host, Incident, Job
from console.core.tasks.reconcile import reconcile

pytestmark = pytest.mark.django_db(transaction=True)


# --- 1. counter correction vs. concurrent placements ---------------------------------


def test_the_counter_correction_is_skipped_while_the_scheduler_holds_its_lock(
        cluster, monkeypatch):
    Gpu.objects.filter(host__name="ada-1", index=3).update(allocated_milli=500)
    monkeypatch.setattr(reconcile_actions, "acquire_leader_lock", lambda: False)
    repairs = reconcile()
    assert "milli skipped: scheduler busy" in repairs
    assert Gpu.objects.get(host__name="ada-1", index=3).allocated_milli == 500


def test_a_placement_committed_before_the_lock_is_not_erased(cluster, submit, monkeypatch):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    other = Gpu.objects.filter(host__name="ada-1").exclude(allocations__isnull=False).first()
    seen = {}

    def lock_taken_after_a_placement():
        # The scheduler's last placement commits just before the reconciler gets the
        # lock: the sums must be read after this, inside the locked transaction.
        seen["atomic"] = transaction.get_connection().in_atomic_block
        Gpu.objects.filter(pk=other.pk).update(allocated_milli=F("allocated_milli") + 1000)
        Allocation.objects.create(job=job, host=other.host, gpu=other, milli=1000)
        return True

    monkeypatch.setattr(reconcile_actions, "acquire_leader_lock", lock_taken_after_a_placement)
    repairs = reconcile()
    assert seen == {"atomic": True}
    assert not [r for r in repairs if r.startswith("milli")]
    assert Gpu.objects.get(pk=other.pk).allocated_milli == 1000
    for gpu in Gpu.objects.all():
        held = sum(a.milli for a in Allocation.objects.filter(gpu=gpu))
        assert gpu.allocated_milli == held


def test_a_drifted_counter_is_still_corrected_with_an_event(cluster):
    Gpu.objects.filter(host__name="ada-1", index=3).update(allocated_milli=500)
    assert "milli ada-1:3" in reconcile()
    assert Gpu.objects.get(host__name="ada-1", index=3).allocated_milli == 0
    assert Event.objects.filter(kind="reconcile", host__name="ada-1",
                                reason__contains="corrected to 0").exists()


# --- 2. stuck steps are not re-sent forever -------------------------------------------


@pytest.fixture
def hung_host(monkeypatch):
    """Every host worker takes messages and never answers (a hung libvirt call)."""
    sent = []
    monkeypatch.setattr("console.core.tasks.workflow.send_host_task",
                        lambda host, verb, *a, **k: sent.append((host, verb)))
    return sent


def _stuck(job, state, **fields):
    Job.objects.filter(pk=job.pk).update(state=state, **fields)


def _host_of(job):
    return Allocation.objects.filter(job=job).first().host


def test_a_stuck_start_is_resent_three_times_then_retried(cluster, submit, hung_host):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    hung_host.clear()
    Event.objects.filter(job=job, kind="member_up").delete()
    _stuck(job, JobState.PROVISIONING, provisioning_at=timezone.now())
    for n in (1, 2, 3):
        assert reconcile(stuck_s=0) == [f"redrive provisioning {job.pk}"]
        assert Job.objects.get(pk=job.pk).state == JobState.PROVISIONING
    assert [v for _h, v in hung_host] == ["provision"] * 3
    assert reconcile(stuck_s=0) == [f"gave up provisioning {job.pk}"]
    job.refresh_from_db()
    assert job.state == JobState.TEARDOWN
    assert job.teardown_outcome == TeardownOutcome.RETRY
    assert "stuck after 3 re-sends" in job.failure_reason
    assert Event.objects.filter(job=job, kind="reconcile", data__gave_up=True).exists()


def test_a_stuck_start_with_its_attempts_spent_fails(cluster, submit, hung_host):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    hung_host.clear()
    _stuck(job, JobState.PROVISIONING, provisioning_at=timezone.now(), attempts=3)
    for _ in range(3):
        reconcile(stuck_s=0)
    assert reconcile(stuck_s=0) == [f"gave up provisioning {job.pk}"]
    job.refresh_from_db()
    assert job.teardown_outcome == TeardownOutcome.FAILED


def test_a_job_stuck_in_scheduled_counts_the_lost_attempt(cluster, submit, hung_host):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    hung_host.clear()
    _stuck(job, JobState.SCHEDULED, scheduled_at=timezone.now(), attempts=2)
    # provision_job moves it to PROVISIONING; keep it lost in SCHEDULED.
    hung = Job.objects.filter(pk=job.pk)
    for _ in range(3):
        reconcile(stuck_s=0)
        hung.update(state=JobState.SCHEDULED, attempts=2)
    assert reconcile(stuck_s=0) == [f"gave up scheduled {job.pk}"]
    job.refresh_from_db()
    assert job.attempts == 3
    assert job.teardown_outcome == TeardownOutcome.FAILED


def test_a_stuck_teardown_opens_an_incident_and_cordons_the_host(cluster, submit, hung_host):
    job = Job.objects.get(pk=submit(gpus_per_host=1).pk)
    hung_host.clear()
    host = _host_of(job)
    _stuck(job, JobState.TEARDOWN, teardown_at=timezone.now(),
           teardown_outcome=TeardownOutcome.SUCCEEDED)
    for _ in range(3):
        assert reconcile(stuck_s=0) == [f"redrive teardown {job.pk}"]
    assert [v for _h, v in hung_host] == ["teardown"] * 3
    assert reconcile(stuck_s=0) == [f"gave up teardown {job.pk}"]
    incident = Incident.objects.get(host=host)
    assert incident.runbook == "stuck_teardown"
    assert incident.runbook_evidence["job"] == job.pk
    assert incident.runbook_evidence["step"] == JobState.TEARDOWN
    assert incident.runbook_evidence["resends"] == 3
    assert list(incident.jobs.all()) == [job]
    assert Host.objects.get(pk=host.pk).state == HostState.CORDONED
    assert Job.objects.get(pk=job.pk).state == JobState.TEARDOWN  # resources stay held
    # Given up: no more re-sends, no second incident.
    assert reconcile(stuck_s=0) == []
    assert len(hung_host) == 3
    assert Incident.objects.filter(host=host).count() == 1
