"""The reconciler (beat): compare what the database wants with what agents report.

Repairs, each recorded as an ``Event`` (kind ``reconcile``):

- an orphan domain (a ``coupler-job-N`` domain an agent reports on a host where
  job N holds nothing, or where it has finished) is destroyed;
- a RUNNING job whose domain an agent no longer reports (in a report newer
  than its start) is torn down and requeued;
- a step stuck longer than ``COUPLER_STUCK_STEP_S`` (SCHEDULED, PROVISIONING,
  TEARDOWN: its message was lost, e.g. a broker that lost its queue or a
  worker killed mid-task) is sent again; every step is idempotent. After
  ``COUPLER_PROVISION_MAX_ATTEMPTS`` re-sends in one state the reconciler gives
  up: a start is torn down (retry or failed), a teardown opens an Incident on
  the host and cordons it;
- allocations of finished jobs are released; ``Gpu.allocated_milli`` that
  drifted from the allocation rows is corrected under the scheduler's leader
  lock (skipped while a cycle holds it).

The writes are ``console.core.actions.reconcile``'s ``do_*`` functions.
- a queue with jobs asks for a scheduling cycle.
"""

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console.core import enqueue
from console.core.actions.reconcile import (
    REDRIVEN_STATES,
    do_correct_gpu_counters,
    do_record_repair,
    do_redrive_step,
    do_release_leaked,
)
from console.core.actions.workflow import do_begin_teardown
from console.core.choices import ACTIVE_JOB_STATES, JobState, TeardownOutcome
from console.core.hostcalls import send_host_task
from console.core.models import Allocation, Host, Job
from coupler_common.naming import job_id_of_domain

ACTOR = "reconciler"


def _reported(host: Host) -> tuple[datetime | None, set[str], set[str]]:
    report = (host.facts or {}).get("reported_domains") or {}
    try:
        at = datetime.fromisoformat(report["at"])
    except (KeyError, TypeError, ValueError):
        return None, set(), set()
    # A heartbeat repeating the same domains moves only last_heartbeat: the report
    # holds as of then.
    if host.last_heartbeat is not None and host.last_heartbeat > at:
        at = host.last_heartbeat
    return at, set(report.get("running") or []), set(report.get("stopped") or [])


def destroy_orphan_domains(repairs: list[str]) -> None:
    for host in Host.objects.exclude(state="offline"):
        at, running, stopped = _reported(host)
        if at is None:
            continue
        for name in sorted(running | stopped):
            job_id = job_id_of_domain(name)
            if job_id is None:
                continue
            holds = Allocation.objects.filter(
                job_id=job_id, host=host, job__state__in=ACTIVE_JOB_STATES
            ).exists()
            if holds:
                continue
            # A fresh placement may have been provisioned after the report was taken.
            job = Job.objects.filter(pk=job_id).values("state", "updated_at").first()
            if job and job["updated_at"] and job["updated_at"] > at:
                continue
            do_record_repair(host=host, job_id=job_id if job else None,
                   reason=f"orphan domain {name} on {host.name} destroyed",
                   data={"domain": name})
            send_host_task(host.name, "teardown", {"name": name, "job_id": str(job_id)})
            repairs.append(f"orphan {name}@{host.name}")


def requeue_vanished(repairs: list[str]) -> None:
    # A report is stamped when the console receives it, but the agent listed its
    # domains a little earlier, possibly before this job's domain started. Only
    # a report received well after the job started can say the domain is gone.
    grace = timedelta(seconds=getattr(settings, "COUPLER_REPORT_GRACE_S", 15))
    for job in Job.objects.filter(state=JobState.RUNNING):
        for host in Host.objects.filter(allocations__job=job).distinct():
            at, running, _stopped = _reported(host)
            if at is None or job.running_at is None or at <= job.running_at + grace:
                continue
            if job.domain_name not in running:
                reason = f"domain {job.domain_name} vanished from {host.name}; requeued"
                if do_begin_teardown(job.pk, TeardownOutcome.PREEMPTED, reason=reason,
                                     actor=ACTOR):
                    do_record_repair(job_id=job.pk, host=host, reason=reason)
                    repairs.append(f"vanished job {job.pk}")
                break


def redrive_stuck(repairs: list[str], stuck_s: float) -> None:
    cutoff = timezone.now() - timedelta(seconds=stuck_s)
    stuck = Job.objects.filter(
        state__in=REDRIVEN_STATES, updated_at__lt=cutoff,
    ).values_list("pk", "state")
    for job_id, state in list(stuck):
        done = do_redrive_step(job_id, state, stuck_s=stuck_s)
        if done.action == "resent":
            repairs.append(f"redrive {state} {job_id}")
        elif done.action == "gave_up":
            repairs.append(f"gave up {state} {job_id}")


def release_leaked(repairs: list[str]) -> None:
    leaked = (
        Allocation.objects.exclude(job__state__in=ACTIVE_JOB_STATES)
        .values_list("job_id", flat=True).distinct()
    )
    for job_id in list(leaked):
        do_release_leaked(job_id)
        repairs.append(f"leak {job_id}")
    corrections = do_correct_gpu_counters()
    if corrections is None:
        repairs.append("milli skipped: scheduler busy")
        return
    for c in corrections:
        repairs.append(f"milli {c.host}:{c.index}")


def reconcile(*, stuck_s: float | None = None) -> list[str]:
    """One pass; returns a line per repair."""
    stuck_s = stuck_s if stuck_s is not None else getattr(settings, "COUPLER_STUCK_STEP_S", 60)
    repairs: list[str] = []
    destroy_orphan_domains(repairs)
    requeue_vanished(repairs)
    redrive_stuck(repairs, stuck_s)
    release_leaked(repairs)
    if Job.objects.filter(state=JobState.QUEUED).exists():
        with transaction.atomic():
            enqueue.request_scheduling_cycle()
    return repairs


@shared_task(name="console.core.tasks.reconcile.reconcile_cluster")
def reconcile_cluster() -> list[str]:
    return reconcile()
