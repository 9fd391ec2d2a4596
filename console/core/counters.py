"""Counters of finished jobs and of start latency, kept in the transaction that
moves a job (``transition_job`` calls ``count_transition``).

Why counters: ``/metrics`` and the dashboard are read every few seconds, and
counting finished jobs or their latencies from the job rows costs a scan that
grows with a year of history. Live states (queued … teardown) are not counted
here: they hold few jobs and are read from the ``state`` index.

Each update is one ``INSERT … ON CONFLICT … DO UPDATE`` on a row per tenant,
so concurrent transitions of different tenants never wait on each other and
the first job of a tenant needs no separate create.
"""

import bisect
from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction

from console.core.choices import TERMINAL_JOB_STATES, JobState
from console.core.models import FinishedJobCount, Job, StartLatencyBucket

# Upper bounds (seconds) of the submit→running histogram; a last bucket is +Inf.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def latency_bucket(seconds: float) -> int:
    """Index of the first bucket whose bound is >= seconds (len: +Inf)."""
    return bisect.bisect_left(LATENCY_BUCKETS, seconds)


# The tables are named in full (core_finishedjobcount, core_startlatencybucket):
# Django has no increment-on-conflict, and these statements are fixed text.
ADD_FINISHED_SQL = (
    "INSERT INTO core_finishedjobcount (tenant_id, state, count) VALUES (%s, %s, %s) "
    "ON CONFLICT (tenant_id, state) DO UPDATE "
    "SET count = core_finishedjobcount.count + EXCLUDED.count"
)
ADD_LATENCY_SQL = (
    "INSERT INTO core_startlatencybucket (tenant_id, bucket, count, sum_seconds) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, bucket) DO UPDATE "
    "SET count = core_startlatencybucket.count + EXCLUDED.count, "
    "sum_seconds = core_startlatencybucket.sum_seconds + EXCLUDED.sum_seconds"
)


def add_finished(tenant_id: int, state: str, count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(ADD_FINISHED_SQL, [tenant_id, state, count])


def add_latency(tenant_id: int, bucket: int, count: int, seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(ADD_LATENCY_SQL, [tenant_id, bucket, count, seconds])


def count_transition(tenant_id: int, to_state: str, submitted_at: datetime | None,
                     at: datetime) -> None:
    """Count a job's move into ``to_state`` at ``at``; call in the move's transaction."""
    if to_state in TERMINAL_JOB_STATES:
        add_finished(tenant_id, to_state, 1)
    elif to_state == JobState.RUNNING and submitted_at is not None:
        seconds = max((at - submitted_at).total_seconds(), 0.0)
        add_latency(tenant_id, latency_bucket(seconds), 1, seconds)


def finished_counts() -> dict[tuple[int, str], int]:
    """(tenant id, terminal state) → jobs that ended so."""
    return {
        (tenant_id, state): count
        for tenant_id, state, count in FinishedJobCount.objects.values_list(
            "tenant_id", "state", "count"
        )
    }


def latency_histogram() -> tuple[list[int], int, float]:
    """(count per bucket, not cumulative, +Inf last; total count; sum of seconds)."""
    per_bucket = [0] * (len(LATENCY_BUCKETS) + 1)
    total = 0
    total_seconds = 0.0
    for bucket, count, seconds in StartLatencyBucket.objects.values_list(
        "bucket", "count", "sum_seconds"
    ):
        per_bucket[min(bucket, len(LATENCY_BUCKETS))] += count
        total += count
        total_seconds += seconds
    return per_bucket, total, total_seconds


def store_counters(finished: dict[tuple[int, str], int],
                   latency: dict[tuple[int, int], tuple[int, float]]) -> None:
    """Replace every counter with these totals (rebuilds and bulk seeding)."""
    with transaction.atomic():
        FinishedJobCount.objects.all().delete()
        StartLatencyBucket.objects.all().delete()
        FinishedJobCount.objects.bulk_create(
            FinishedJobCount(tenant_id=tenant_id, state=state, count=count)
            for (tenant_id, state), count in finished.items()
        )
        StartLatencyBucket.objects.bulk_create(
            StartLatencyBucket(tenant_id=tenant_id, bucket=bucket, count=count,
                               sum_seconds=seconds)
            for (tenant_id, bucket), (count, seconds) in latency.items()
        )


def rebuild_job_counters() -> None:
    """Recount from the job rows: one pass over history, for repairs and migrations.

    A job's latency counts once here (its last start), where live counting
    counts every start: after a rebuild a job preempted and restarted shows once.
    """
    finished: dict[tuple[int, str], int] = defaultdict(int)
    latency: dict[tuple[int, int], list] = defaultdict(lambda: [0, 0.0])
    rows = Job.objects.order_by().values_list("tenant_id", "state", "submitted_at", "running_at")
    for tenant_id, state, submitted_at, running_at in rows.iterator(chunk_size=10_000):
        if state in TERMINAL_JOB_STATES:
            finished[(tenant_id, state)] += 1
        if running_at is not None and submitted_at is not None:
            seconds = max((running_at - submitted_at).total_seconds(), 0.0)
            entry = latency[(tenant_id, latency_bucket(seconds))]
            entry[0] += 1
            entry[1] += seconds
    store_counters(dict(finished), {key: (n, s) for key, (n, s) in latency.items()})
