"""Per-tenant abuse limits on submission: one place, for the API and the console.

A tenant may have at most ``COUPLER_TENANT_MAX_QUEUED`` jobs waiting (QUEUED or
PREEMPTED) and submit at most ``COUPLER_TENANT_SUBMITS_PER_MIN`` jobs in any
60 seconds. Both are counted in the database under the tenant's row lock, so
every web process agrees and two concurrent submits cannot both take the last
place. A refused submit is a ``SubmitLimited`` (a ValidationError for the
console's form; the API answers 429 with ``Retry-After``). 0 disables a limit.
Users' submissions are limited; internal tools (``loadtest``, the demo seed)
submit without a submitter and are not.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from console.core.choices import JobState
from console.core.models import Job, Tenant

WINDOW_S = 60
WAITING_STATES = (JobState.QUEUED, JobState.PREEMPTED)


class SubmitLimited(ValidationError):
    """A tenant is over one of its submission limits; ``retry_after_s`` says when to retry."""

    def __init__(self, message: str, *, limit: int, retry_after_s: int) -> None:
        super().__init__(message, code="submit_limited")
        self.limit = limit
        self.retry_after_s = retry_after_s


def check_submit_limits(tenant: Tenant) -> None:
    """Raise SubmitLimited when ``tenant`` may not submit now. Call inside the
    submit's transaction: it locks the tenant's row until the job is saved."""
    max_queued = int(getattr(settings, "COUPLER_TENANT_MAX_QUEUED", 0))
    per_min = int(getattr(settings, "COUPLER_TENANT_SUBMITS_PER_MIN", 0))
    if not max_queued and not per_min:
        return
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    if max_queued:
        waiting = Job.objects.filter(tenant=tenant, state__in=WAITING_STATES).count()
        if waiting >= max_queued:
            raise SubmitLimited(
                f"Tenant {tenant.slug} has {waiting} jobs waiting; the limit is {max_queued}. "
                "Submit again when some have started or been cancelled.",
                limit=max_queued, retry_after_s=WINDOW_S)
    if per_min:
        since = timezone.now() - timedelta(seconds=WINDOW_S)
        recent = list(Job.objects.filter(tenant=tenant, submitted_at__gte=since)
                      .order_by("submitted_at").values_list("submitted_at", flat=True)[:per_min])
        if len(recent) >= per_min:
            wait = (recent[0] + timedelta(seconds=WINDOW_S) - timezone.now()).total_seconds()
            raise SubmitLimited(
                f"Tenant {tenant.slug} submitted {per_min} jobs in the last {WINDOW_S} s; "
                f"the limit is {per_min} a minute.",
                limit=per_min, retry_after_s=max(1, int(wait) + 1))
