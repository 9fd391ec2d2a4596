"""Counters kept in step with job transitions, so ``/metrics`` and the
dashboard read a handful of rows however many jobs have ever finished.

Only what grows with history is counted: jobs that ended (per tenant and
terminal state) and the submit→running latency histogram. Jobs in a live
state are few and are counted from the ``state`` index when read.
``console.core.counters`` writes these rows in the transaction that moves the
job and can rebuild them from the job rows.
"""

from django.db import models


class FinishedJobCount(models.Model):
    tenant = models.ForeignKey("core.Tenant", on_delete=models.CASCADE,
                               related_name="finished_job_counts")
    state = models.CharField(max_length=16)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "state"], name="finished_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.state}: {self.count}"


class StartLatencyBucket(models.Model):
    """Starts (transitions into RUNNING) of one tenant's jobs whose time from
    submit falls in one histogram bucket (not cumulative), with their sum."""

    tenant = models.ForeignKey("core.Tenant", on_delete=models.CASCADE,
                               related_name="start_latency_buckets")
    # Index into console.core.counters.LATENCY_BUCKETS; len(LATENCY_BUCKETS) is +Inf.
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveBigIntegerField(default=0)
    sum_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "bucket"], name="latency_bucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/bucket {self.bucket}: {self.count}"
