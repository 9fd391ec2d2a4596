from django.core.exceptions import ValidationError
from django.db import transaction

from console.core import enqueue
from console.core.admission import inventory_errors, quota_errors, shape_errors
from console.core.choices import EventKind, JobState, PendingCode, TeardownOutcome
from console.core.models import Event, Image, Job, Tenant
from console.core.submit_limits import check_submit_limits
from console.core.transitions import transition_job


class JobActionError(Exception):
    """An action that cannot be done in the job's current state (API: 409)."""


def build_job(*, tenant: Tenant, submitter=None, **spec) -> Job:
    """An unsaved Job from a request's fields, with field-level validation."""
    job = Job(
        tenant=tenant,
        submitter=submitter,
        name=spec["name"],
        gpus_per_host=spec["gpus_per_host"],
        host_count=spec.get("host_count", 1),
        gpu_model=spec.get("gpu_model") or "",
        gpu_milli=spec.get("gpu_milli"),
        vcpus_per_host=spec["vcpus_per_host"],
        memory_gib_per_host=spec["memory_gib_per_host"],
        priority=spec.get("priority", 0),
        preemptible=spec.get("preemptible", True),
        image=spec.get("image") or "",
        rdma=spec.get("rdma", False),
        single_leaf=spec.get("single_leaf", False),
        require_kvm=spec.get("require_kvm", False),
    )
    return job


def validate_job(job: Job) -> None:
    """Raise ValidationError (a dict of field → messages) for a job that can never run."""
    errors = shape_errors(gpus_per_host=job.gpus_per_host, host_count=job.host_count,
                          gpu_milli=job.gpu_milli, gpu_model=job.gpu_model)
    if job.image and not Image.objects.filter(name=job.image).exists():
        errors["image"] = [f"No image named {job.image!r} in the catalogue."]
    if errors:
        raise ValidationError(errors)
    errors.update(inventory_errors(job))
    for field, messages in quota_errors(job, job.tenant).items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def do_submit_job(*, tenant: Tenant, submitter=None, actor: str = "", **spec) -> Job:
    """Validate and queue a job, and ask for a scheduling cycle when it commits.
    A user's submission is refused (SubmitLimited) over the tenant's abuse limits."""
    job = build_job(tenant=tenant, submitter=submitter, **spec)
    validate_job(job)
    with transaction.atomic():
        if submitter is not None:
            check_submit_limits(tenant)
        job.state = JobState.QUEUED
        job.pending_code = PendingCode.NEW
        job.pending_reason = "Waiting for the next scheduling cycle."
        job.save()
        Job.objects.filter(pk=job.pk).update(queued_at=job.submitted_at)
        Event.objects.create(
            job=job,
            kind=EventKind.TRANSITION,
            from_state="",
            to_state=JobState.QUEUED,
            reason="submitted",
            actor=actor or (submitter.get_username() if submitter else "system"),
        )
        enqueue.request_scheduling_cycle()
    job.refresh_from_db()
    return job


def do_cancel_job(job: Job, *, actor: str, reason: str = "cancelled by user") -> Job:
    """Cancel in any state: a queued job ends at once; a placed one is torn down
    first (its hosts are cleaned before it is CANCELLED). Repeating is harmless."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state in (JobState.QUEUED, JobState.PREEMPTED):
            transition_job(
                job.pk, JobState.CANCELLED, from_states=[job.state], reason=reason, actor=actor
            )
            enqueue.request_scheduling_cycle()
        elif job.state in (JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING):
            transition_job(
                job.pk,
                JobState.TEARDOWN,
                from_states=[job.state],
                reason=reason,
                actor=actor,
                teardown_outcome=TeardownOutcome.CANCELLED,
            )
            enqueue.request_teardown(job.pk)
        elif job.state == JobState.TEARDOWN:
            # Already going down: make sure it ends as cancelled, not requeued.
            Job.objects.filter(pk=job.pk, state=JobState.TEARDOWN).update(
                teardown_outcome=TeardownOutcome.CANCELLED
            )
            enqueue.request_teardown(job.pk)
        else:
            raise JobActionError(f"Job {job.pk} has already finished ({job.state}).")
    job.refresh_from_db()
    return job
