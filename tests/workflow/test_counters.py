"""The finished-job and start-latency counters follow the jobs' transitions,
and agree with a recount from the job rows."""

import pytest

from console.core import counters
from console.core.actions.jobs import do_cancel_job
from console.core.history.seed import seed_history
from console.core.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def _totals():
    per_bucket, count, _seconds = counters.latency_histogram()
    return counters.finished_counts(), per_bucket, count


def test_a_start_and_a_cancel_are_counted_where_they_happen(cluster, submit, tenant_a):
    job = submit(gpus_per_host=1)
    job.refresh_from_db()
    assert job.state == "running"
    assert counters.finished_counts() == {}
    assert counters.latency_histogram()[1] == 1
    do_cancel_job(job, actor="alice")
    assert Job.objects.get(pk=job.pk).state == "cancelled"
    assert counters.finished_counts() == {(tenant_a.pk, "cancelled"): 1}


def test_live_counters_agree_with_a_recount(cluster, submit):
    for _ in range(3):
        submit(gpus_per_host=1)
    do_cancel_job(Job.objects.order_by("pk").first(), actor="alice")
    live = _totals()
    counters.rebuild_job_counters()
    assert _totals() == live


def test_seeded_history_is_counted_as_a_recount_counts_it(cluster):
    seed_history(jobs=300, new_tenants=4, seed=3)
    seeded = _totals()
    assert sum(seeded[0].values()) == Job.objects.filter(
        state__in=["succeeded", "failed", "cancelled"]).count()
    counters.rebuild_job_counters()
    assert _totals() == seeded


@pytest.mark.parametrize(("seconds", "bucket"), [(0, 0), (0.1, 0), (0.11, 1), (3600, 13),
                                                 (3600.5, 14)])
def test_a_latency_falls_in_the_first_bucket_at_or_above_it(seconds, bucket):
    assert counters.latency_bucket(seconds) == bucket
