"""``manage.py loadtest --jobs N``: jobs/s through the whole workflow, and
submit→running p50/p99, on the hosts in the database (the demo's simulated hosts).

Runs the workflow in this process (eager Celery: scheduling cycle, provisioning
on libvirt's test driver through the agent's own task code, teardown), so it
measures the control plane itself, without broker latency: each job is
submitted, reaches RUNNING, and is cancelled (domain destroyed, allocation
released). Jobs belong to a ``loadtest`` tenant without quotas.
"""

import statistics
import time

from django.core.management.base import BaseCommand

from console.celery import app
from console.core.actions.jobs import do_cancel_job, do_submit_job
from console.core.choices import JobState
from console.core.models import Job, Tenant


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Command(BaseCommand):
    help = "Measure jobs/s and submit→running latency through the whole workflow."

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=100)
        parser.add_argument("--gpus", type=int, default=1, help="GPUs per job")
        parser.add_argument("--batch", type=int, default=20,
                            help="jobs submitted before cancelling them")

    def handle(self, *args, **options):
        app.conf.task_always_eager = True
        tenant, _ = Tenant.objects.get_or_create(slug="loadtest", defaults={"name": "Load test"})
        latencies: list[float] = []
        done = 0
        started = time.perf_counter()
        while done < options["jobs"]:
            batch = []
            for _ in range(min(options["batch"], options["jobs"] - done)):
                job = do_submit_job(tenant=tenant, actor="loadtest", name="load",
                                    gpus_per_host=options["gpus"], vcpus_per_host=4,
                                    memory_gib_per_host=16)
                batch.append(job.pk)
            for job in Job.objects.filter(pk__in=batch):
                if job.state == JobState.RUNNING:
                    latencies.append((job.running_at - job.submitted_at).total_seconds())
                do_cancel_job(job, actor="loadtest")
            done += len(batch)
        elapsed = time.perf_counter() - started
        left = Job.objects.filter(tenant=tenant).exclude(
            state__in=[JobState.CANCELLED, JobState.FAILED, JobState.SUCCEEDED]).count()
        self.stdout.write(
            f"{done} jobs in {elapsed:.2f} s: {done / elapsed:.1f} jobs/s "
            f"(submit → RUNNING → cancel → CANCELLED); {len(latencies)} reached RUNNING; "
            f"submit→running p50 {1000 * percentile(latencies, 0.5):.1f} ms, "
            f"p99 {1000 * percentile(latencies, 0.99):.1f} ms, "
            f"mean {1000 * (statistics.mean(latencies) if latencies else 0):.1f} ms; "
            f"{left} not finished"
        )
