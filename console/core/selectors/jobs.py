"""Job rows for the lists, as the indexes serve them.

The job lists are ordered newest first (``Job.Meta.ordering``); the indexes
``job_recent`` (everyone's, for admins), ``job_tenant_recent`` (one tenant's)
and ``job_state_recent`` (one state's) return a page of them without a sort.
"""

from django.db.models import Count, QuerySet

from console.core.choices import TERMINAL_JOB_STATES, JobState
from console.core.models import Job, Membership

# Jobs that wait for the scheduler (the dashboard's "queue").
WAITING_STATES = (JobState.QUEUED, JobState.PREEMPTED)
LIVE_STATES = tuple(s for s in JobState.values if s not in TERMINAL_JOB_STATES)


def visible_tenant_ids(user) -> list[int] | None:
    """The tenant ids whose jobs ``user`` may see; None for staff (all)."""
    if not user.is_authenticated:
        return []
    if user.is_staff:
        return None
    return list(Membership.objects.filter(user=user).values_list("tenant_id", flat=True))


def jobs_for_list(user) -> QuerySet[Job]:
    """The jobs ``user`` may see, ready for a list page (tenant and submitter joined).

    Same rows as ``Job.objects.for_user``; the tenant ids are read first and
    named in the query, so PostgreSQL walks ``job_tenant_recent`` for a member
    instead of filtering everyone's recent jobs through a join (which costs a
    small tenant a scan of the whole history).
    """
    tenant_ids = visible_tenant_ids(user)
    jobs = Job.objects.all() if tenant_ids is None else Job.objects.filter(
        tenant_id__in=tenant_ids
    )
    return jobs.select_related("tenant", "submitter")


def live_job_counts() -> dict[tuple[int, str], int]:
    """(tenant id, state) → jobs in each live state (queued … teardown).

    Served by the ``(state, tenant)`` index over the few live jobs; finished
    jobs are counted by ``console.core.counters``."""
    rows = (
        Job.objects.filter(state__in=LIVE_STATES).order_by().values_list("tenant_id", "state")
        .annotate(n=Count("id"))
    )
    return {(tenant_id, state): n for tenant_id, state, n in rows}
