from django.db import transaction

from console.core import enqueue
from console.core.choices import ACTIVE_JOB_STATES, EventKind, HostState, JobState, TeardownOutcome
from console.core.models import Event, Gpu, Host, Job
from console.core.transitions import transition_job


class HostActionError(Exception):
    pass


def _set_host_state(host: Host, to_state: str, *, actor: str, reason: str, kind: str) -> Host:
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        from_state = host.state
        host.state = to_state
        host.state_reason = reason[:500]
        host.save(update_fields=["state", "state_reason"])
        Event.objects.create(
            host=host,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            reason=reason[:1000],
            actor=actor,
        )
        enqueue.request_scheduling_cycle()
    return host


def do_cordon_host(host: Host, *, actor: str, reason: str = "") -> Host:
    """No new work lands on the host; running jobs stay."""
    return _set_host_state(
        host, HostState.CORDONED, actor=actor, reason=reason or "cordoned", kind=EventKind.CORDON
    )


def do_uncordon_host(host: Host, *, actor: str, reason: str = "") -> Host:
    if host.state == HostState.OFFLINE:
        raise HostActionError("An offline host comes back by heartbeating, not by uncordon.")
    return _set_host_state(
        host, HostState.READY, actor=actor, reason=reason or "uncordoned", kind=EventKind.UNCORDON
    )


def do_drain_host(host: Host, *, actor: str, reason: str = "") -> Host:
    """Cordon, and move every job off: preemptible or not, each is torn down and
    requeued (it will be placed elsewhere)."""
    reason = reason or "host drained"
    with transaction.atomic():
        host = _set_host_state(host, HostState.DRAINING, actor=actor, reason=reason, kind=EventKind.DRAIN)
        job_ids = set(
            Job.objects.filter(allocations__host=host, state__in=ACTIVE_JOB_STATES)
            .values_list("pk", flat=True)
        )
        for job_id in job_ids:
            moved = transition_job(
                job_id,
                JobState.TEARDOWN,
                from_states=[JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING],
                reason=f"{reason}: moving off {host.name}",
                actor=actor,
                teardown_outcome=TeardownOutcome.PREEMPTED,
            )
            if moved:
                enqueue.request_teardown(job_id)
    return host


def do_override_host_checks(host: Host, *, actor: str, reason: str) -> Host:
    """Let a host whose critical checks fail take work, with the admin's reason."""
    if not reason.strip():
        raise HostActionError("An override needs a reason.")
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        host.checks_override_reason = reason[:500]
        host.save(update_fields=["checks_override_reason"])
        Event.objects.create(
            host=host, kind=EventKind.CHECKS_OVERRIDE, reason=reason[:1000], actor=actor
        )
        enqueue.request_scheduling_cycle()
    return host


def _set_gpu_cordon(gpu: Gpu, *, cordoned: bool, actor: str, reason: str) -> Gpu:
    with transaction.atomic():
        Gpu.objects.filter(pk=gpu.pk).update(
            cordoned=cordoned, cordon_reason=reason[:500] if cordoned else ""
        )
        Event.objects.create(
            host_id=gpu.host_id,
            kind=EventKind.GPU_CORDON if cordoned else EventKind.GPU_UNCORDON,
            reason=f"GPU{gpu.index}: {reason}"[:1000],
            actor=actor,
            data={"gpu": gpu.index, "pci_address": gpu.pci_address},
        )
        enqueue.request_scheduling_cycle()
    gpu.refresh_from_db()
    return gpu


def do_cordon_gpu(gpu: Gpu, *, actor: str, reason: str) -> Gpu:
    """Take one GPU out of scheduling (its host keeps serving the others)."""
    return _set_gpu_cordon(gpu, cordoned=True, actor=actor, reason=reason)


def do_uncordon_gpu(gpu: Gpu, *, actor: str, reason: str = "returned to service") -> Gpu:
    return _set_gpu_cordon(gpu, cordoned=False, actor=actor, reason=reason)
