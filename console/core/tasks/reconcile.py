"""The reconciler (beat): compare what the database wants with what agents report.

Repairs, each recorded as an ``Event`` (kind ``reconcile``):

- an orphan domain (a ``coupler-job-N`` domain an agent reports on a host where
  job N holds nothing, or where it has finished) is destroyed;
- a RUNNING job whose domain an agent no longer reports (in a report newer
  than its start) is torn down and requeued;
- a step stuck longer than ``COUPLER_STUCK_STEP_S`` (SCHEDULED, PROVISIONING,
  TEARDOWN: its message was lost, e.g. a broker that lost its queue or a
  worker killed mid-task) is sent again; every step is idempotent;
- allocations of finished jobs are released; ``Gpu.allocated_milli`` that
  drifted from the allocation rows is corrected;
- a queue with jobs asks for a scheduling cycle.
"""

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from console.core import enqueue
from console.core.actions.agents import _job_id_of
from console.core.actions.workflow import do_begin_teardown
from console.core.choices import ACTIVE_JOB_STATES, JobState, TeardownOutcome
from console.core.hostcalls import send_host_task
from console.core.models import Allocation, Event, Gpu, Host, Job
from console.core.planning import release_allocations

ACTOR = "reconciler"


def _event(*, reason: str, job_id: int | None = None, host: Host | None = None,
           data: dict | None = None) -> None:
    Event.objects.create(job_id=job_id, host=host, kind="reconcile", actor=ACTOR,
                         reason=reason[:1000], data=data or {})


def _reported(host: Host) -> tuple[datetime | None, set[str], set[str]]:
    report = (host.facts or {}).get("reported_domains") or {}
    try:
        at = datetime.fromisoformat(report["at"])
    except (KeyError, TypeError, ValueError):
        return None, set(), set()
    return at, set(report.get("running") or []), set(report.get("stopped") or [])


def destroy_orphan_domains(repairs: list[str]) -> None:
    for host in Host.objects.exclude(state="offline"):
        at, running, stopped = _reported(host)
        if at is None:
            continue
        for name in sorted(running | stopped):
            job_id = _job_id_of(name)
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
            _event(host=host, job_id=job_id if job else None,
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
                    _event(job_id=job.pk, host=host, reason=reason)
                    repairs.append(f"vanished job {job.pk}")
                break


def redrive_stuck(repairs: list[str], stuck_s: float) -> None:
    cutoff = timezone.now() - timedelta(seconds=stuck_s)
    stuck = Job.objects.filter(
        state__in=[JobState.SCHEDULED, JobState.PROVISIONING, JobState.TEARDOWN],
        updated_at__lt=cutoff,
    ).values_list("pk", "state")
    for job_id, state in stuck:
        task = ("console.core.tasks.workflow.teardown_job" if state == JobState.TEARDOWN
                else "console.core.tasks.workflow.provision_job")
        with transaction.atomic():
            _event(job_id=job_id, reason=f"step {state} stuck for over {stuck_s:.0f} s: resent",
                   data={"task": task})
            enqueue.on_commit_send(task, job_id)
        repairs.append(f"redrive {state} {job_id}")


def release_leaked(repairs: list[str]) -> None:
    leaked = (
        Allocation.objects.exclude(job__state__in=ACTIVE_JOB_STATES)
        .values_list("job_id", flat=True).distinct()
    )
    for job_id in list(leaked):
        n = release_allocations(job_id)
        _event(job_id=job_id, reason=f"{n} allocation rows of a finished job released")
        repairs.append(f"leak {job_id}")
    held = dict(
        Allocation.objects.filter(gpu__isnull=False).values("gpu_id")
        .annotate(total=Sum("milli")).values_list("gpu_id", "total")
    )
    for gpu in Gpu.objects.select_related("host"):
        want = held.get(gpu.pk, 0)
        if gpu.allocated_milli != want:
            Gpu.objects.filter(pk=gpu.pk).update(allocated_milli=want)
            _event(host=gpu.host, reason=f"GPU{gpu.index} allocated_milli {gpu.allocated_milli}"
                   f" corrected to {want}", data={"gpu": gpu.index})
            repairs.append(f"milli {gpu.host.name}:{gpu.index}")


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
