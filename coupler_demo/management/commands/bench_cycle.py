"""One scheduling cycle at fleet scale: ``manage.py bench_cycle``.

Registers ``--hosts`` 8-GPU hosts (through the agent's registration path), tops the
queue up to ``--jobs`` jobs over ``--tenants`` tenants, optionally adds ``--history``
finished jobs, and times the leader's cycle — snapshot, plan, commit — each run rolled
back so every run places the same queue. Use PostgreSQL (``DATABASE_URL``) for figures
that mean anything; docs/workflow.md has the command and what it printed.

Wall seconds on a shared machine mostly measure the load, so one more rolled-back cycle
is timed in CPU seconds of this process per phase (``time.process_time``; the
database's own work is not in it), printed with the load average. SQL is not logged
while timing (``DEBUG`` off, as the orchestrator runs in production): with DEBUG on
Django would render every statement, including the commit's 100,000-element arrays.
"""

import json
import os
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from console.core.choices import JobState
from console.core.history.seed import seed_history
from console.core.models import Job
from coupler_demo.fleet import measure_cycle, one_cycle, queue_jobs, register_fleet


class Command(BaseCommand):
    help = "Time one scheduling cycle (snapshot → plan → commit) on a fleet-sized cluster."

    def add_arguments(self, parser):
        parser.add_argument("--hosts", type=int, default=1000)
        parser.add_argument("--jobs", type=int, default=10_000, help="queued jobs")
        parser.add_argument("--tenants", type=int, default=100)
        parser.add_argument("--history", type=int, default=0,
                            help="finished jobs to add first (the cycle must not grow with them)")
        parser.add_argument("--repeat", type=int, default=3)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        for name in ("hosts", "jobs", "tenants", "repeat"):
            if opts[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        if opts["history"] < 0:
            raise CommandError("--history must not be negative")
        started = time.perf_counter()
        added = register_fleet(opts["hosts"])
        if opts["history"]:
            seed_history(jobs=opts["history"], new_tenants=0)
        # seed_history queues a few jobs of its own; the queue is topped up after it
        queued = queue_jobs(opts["jobs"], opts["tenants"])
        if not opts["json"]:
            self.stdout.write(
                f"setup {time.perf_counter() - started:.0f} s: {added} hosts registered, "
                f"{queued} jobs queued, {Job.objects.filter(state=JobState.QUEUED).count()}"
                f" waiting")
        settings.DEBUG = False  # no query log while timing (see the module's docstring)
        figures = measure_cycle(repeat=opts["repeat"])
        cpu = cpu_of_one_cycle()
        out = {
            "hosts": figures.hosts, "gpus": figures.gpus, "queued": figures.queued,
            "finished_jobs": figures.finished, "placed": figures.placed,
            "snapshot_s": round(figures.snapshot_s, 3), "plan_s": round(figures.plan_s, 3),
            "commit_s": round(figures.commit_s, 3), "cycle_s": round(figures.cycle_s, 3),
            "queries": figures.queries, "peak_python_mib": round(figures.peak_mib, 1),
            "runs_cycle_s": [round(r["cycle_s"], 3) for r in figures.runs],
            "cpu_s": cpu, "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        if opts["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(
            f"{out['hosts']} hosts, {out['gpus']} GPUs, {out['queued']} queued, "
            f"{out['finished_jobs']} finished jobs in the database\n"
            f"cycle (fastest of {opts['repeat']}): {out['cycle_s']} s = snapshot "
            f"{out['snapshot_s']} + plan {out['plan_s']} + commit {out['commit_s']}; "
            f"{out['placed']} placed, {out['queries']} SQL queries, peak Python memory "
            f"{out['peak_python_mib']} MiB; every run: {out['runs_cycle_s']}\n"
            f"CPU of this process, one more cycle: {cpu['cycle']} s = snapshot "
            f"{cpu['snapshot']} + plan {cpu['plan']} + commit {cpu['commit']}; "
            f"load average {out['load_average']}")


def cpu_of_one_cycle() -> dict:
    """CPU seconds of this process in each phase of one rolled-back cycle."""
    run = one_cycle(clock=time.process_time)
    return {"snapshot": round(run["snapshot_s"], 2), "plan": round(run["plan_s"], 2),
            "commit": round(run["commit_s"], 2), "cycle": round(run["cycle_s"], 2)}
