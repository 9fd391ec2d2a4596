"""The reconciler's state changes (``console.core.tasks.reconcile`` decides, these write).

Every repair is an ``Event`` of kind ``reconcile`` (actor ``reconciler``).

- ``do_record_repair``: the audit record of a repair that changes nothing else;
- ``do_redrive_step``: a step stuck in SCHEDULED / PROVISIONING / TEARDOWN is sent
  again, at most ``COUPLER_PROVISION_MAX_ATTEMPTS`` times since the job entered the
  state; then the reconciler gives up: a start goes to TEARDOWN (retry or failed, as
  a failed start does), a teardown opens an Incident on the host(s) still holding
  the job and cordons them;
- ``do_release_leaked``: allocation rows of a finished job are released;
- ``do_correct_gpu_counters``: ``Gpu.allocated_milli`` is set to the sum of its
  allocation rows, in one transaction holding the scheduler's leader lock (no
  placement can commit between the read and the write); skipped when busy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from console.core import enqueue
from console.core.actions.hosts import do_cordon_host
from console.core.actions.workflow import max_attempts
from console.core.choices import (
    EventKind,
    FaultKind,
    HostState,
    IncidentState,
    JobState,
    MemberStatus,
    TeardownOutcome,
)
from console.core.models import Allocation, Event, Gpu, Host, Incident, Job
from console.core.planning import acquire_leader_lock, release_allocations
from console.core.transitions import transition_job

ACTOR = "reconciler"
KIND = EventKind.RECONCILE
STUCK_TEARDOWN_RUNBOOK = "stuck_teardown"

REDRIVEN_STATES = (JobState.SCHEDULED, JobState.PROVISIONING, JobState.TEARDOWN)
_ENTERED_AT = {
    JobState.SCHEDULED: "scheduled_at",
    JobState.PROVISIONING: "provisioning_at",
    JobState.TEARDOWN: "teardown_at",
}
_TASKS = {
    JobState.SCHEDULED: "console.core.tasks.workflow.provision_job",
    JobState.PROVISIONING: "console.core.tasks.workflow.provision_job",
    JobState.TEARDOWN: "console.core.tasks.workflow.teardown_job",
}


def max_resends() -> int:
    return int(getattr(settings, "COUPLER_PROVISION_MAX_ATTEMPTS", 3))


def do_record_repair(*, reason: str, job_id: int | None = None, host: Host | None = None,
                     data: dict | None = None) -> Event:
    return Event.objects.create(job_id=job_id, host=host, kind=KIND, actor=ACTOR,
                                reason=reason[:1000], data=data or {})


# --- stuck steps ----------------------------------------------------------------------


@dataclass(frozen=True)
class Redrive:
    """What ``do_redrive_step`` did: ``resent`` (the n-th re-send), ``gave_up``, or
    nothing (the job moved on, or the reconciler already gave up on this step)."""

    action: str  # "resent" | "gave_up" | ""
    resends: int = 0


def _step_events(job: Job, state: str) -> list[Event]:
    since = getattr(job, _ENTERED_AT[JobState(state)])
    events = Event.objects.filter(job=job, kind=KIND)
    if since is not None:
        events = events.filter(created_at__gte=since)
    return [e for e in events if (e.data or {}).get("step") == state]


def do_redrive_step(job_id: int, state: str, *, stuck_s: float) -> Redrive:
    """Send a stuck step again, or give up after ``max_resends()`` re-sends."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != state:
            return Redrive("")
        events = _step_events(job, state)
        if any((e.data or {}).get("gave_up") for e in events):
            return Redrive("")  # an Incident is open; an admin takes it from here
        resends = sum(1 for e in events if (e.data or {}).get("resent"))
        if resends < max_resends():
            task = _TASKS[JobState(state)]
            do_record_repair(
                job_id=job_id,
                reason=f"step {state} stuck for over {stuck_s:.0f} s: resent "
                f"({resends + 1} of {max_resends()})",
                data={"task": task, "step": state, "resent": resends + 1},
            )
            enqueue.on_commit_send(task, job_id)
            return Redrive("resent", resends + 1)
        if state == JobState.TEARDOWN:
            _give_up_teardown(job, resends)
        else:
            _give_up_start(job, state, resends)
        return Redrive("gave_up", resends)


def _give_up_start(job: Job, state: str, resends: int) -> None:
    """A start that never completes: tear down, then retry or fail (as a failed start)."""
    # A SCHEDULED job never began its attempt: count it, or a job whose
    # provisioning is always lost would retry forever.
    attempts = job.attempts + 1 if state == JobState.SCHEDULED else job.attempts
    generation = job.generation + 1 if state == JobState.SCHEDULED else job.generation
    spent = attempts >= max_attempts()  # the retry policy of a failed start
    outcome = TeardownOutcome.FAILED if spent else TeardownOutcome.RETRY
    reason = f"step {state} still stuck after {resends} re-sends"
    do_record_repair(job_id=job.pk, reason=f"{reason}: gave up",
                     data={"step": state, "gave_up": True, "resends": resends,
                           "outcome": outcome})
    moved = transition_job(
        job.pk, JobState.TEARDOWN, from_states=[state],
        reason=reason + (" (attempts spent)" if spent else " (will retry)"),
        actor=ACTOR, teardown_outcome=outcome, failure_reason=reason, attempts=attempts,
        generation=generation,
    )
    if moved:
        enqueue.request_teardown(job.pk)


def _give_up_teardown(job: Job, resends: int) -> None:
    """A host that cannot clean up: an Incident on it, and no new work lands there.
    The job stays in TEARDOWN holding its resources (its VM may still run)."""
    down = job.member_hosts(MemberStatus.DOWN)
    hosts = list(
        Host.objects.filter(allocations__job=job).exclude(pk__in=down).distinct().order_by("name")
    )
    reason = f"step teardown still stuck after {resends} re-sends"
    do_record_repair(job_id=job.pk, reason=f"{reason}: gave up; incident opened",
                     data={"step": JobState.TEARDOWN, "gave_up": True, "resends": resends,
                           "hosts": [h.name for h in hosts]})
    for host in hosts:
        title = f"Teardown of job {job.pk} stuck on {host.name}"
        incident = Incident.objects.create(
            host=host, title=title[:200], fault=FaultKind.UNKNOWN, state=IncidentState.OPEN,
            meaning=(f"The host did not remove domain {job.domain_name} after {resends} "
                     f"re-sends of the teardown; its resources stay held."),
            recommended_action=(
                "Check the host agent and libvirt (virsh list; the agent worker may hang), "
                "destroy the domain by hand, then resolve and uncordon."),
            runbook=STUCK_TEARDOWN_RUNBOOK,
            runbook_evidence={"job": job.pk, "domain": job.domain_name,
                              "step": JobState.TEARDOWN, "resends": resends,
                              "teardown_at": job.teardown_at.isoformat()
                              if job.teardown_at else None},
        )
        incident.jobs.set([job])
        incident.tenants.set([job.tenant_id])
        do_record_repair(host=host, job_id=job.pk, reason=f"{title}: incident #{incident.pk}",
                         data={"incident": incident.pk, "step": JobState.TEARDOWN})
        if host.state == HostState.READY:
            # The reason is shown to every member: no job id in it.
            do_cordon_host(host, actor=ACTOR,
                           reason=f"a teardown is stuck on {host.name}: incident #{incident.pk}")


# --- allocations ----------------------------------------------------------------------


def do_release_leaked(job_id: int) -> int:
    """Release the allocation rows of a finished job; the number of rows released."""
    with transaction.atomic():
        n = release_allocations(job_id)
        do_record_repair(job_id=job_id,
                         reason=f"{n} allocation rows of a finished job released")
    return n


@dataclass(frozen=True)
class Correction:
    host: str
    index: int
    was: int
    now: int


def do_correct_gpu_counters() -> list[Correction] | None:
    """Set every drifted ``Gpu.allocated_milli`` to the sum of its allocation rows.

    Runs under the scheduler's leader lock with the GPU rows locked and the sums read
    inside the same transaction: a placement cannot commit between the read and the
    write (it would be erased). Returns None, changing nothing, if the lock is busy.
    """
    with transaction.atomic():
        if not acquire_leader_lock():
            return None
        gpus = list(
            Gpu.objects.select_for_update(of=("self",)).select_related("host").order_by("pk")
        )
        held = dict(
            Allocation.objects.filter(gpu__isnull=False).values("gpu_id")
            .annotate(total=Sum("milli")).values_list("gpu_id", "total")
        )
        corrections = []
        for gpu in gpus:
            want = held.get(gpu.pk, 0)
            if gpu.allocated_milli == want:
                continue
            Gpu.objects.filter(pk=gpu.pk).update(allocated_milli=want)
            do_record_repair(host=gpu.host,
                             reason=f"GPU{gpu.index} allocated_milli {gpu.allocated_milli}"
                             f" corrected to {want}", data={"gpu": gpu.index})
            corrections.append(Correction(gpu.host.name, gpu.index, gpu.allocated_milli, want))
    return corrections
