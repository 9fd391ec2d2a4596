"""manage.py bench_reads: seed history, serve it with gunicorn, measure the reads.

    DATABASE_URL=postgres://… python manage.py bench_reads                 # 100k jobs
    DATABASE_URL=postgres://… python manage.py bench_reads --sizes 100000,1000000

Each size tops the database up to that many jobs (``seed_history``), so a
second size measures the same fleet with more history. Figures go to stdout
and, as JSON, to ``var/bench_reads.json``.
"""

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from console.core.history import bench
from console.core.history.seed import seed_history
from console.core.models import Host, Job, Tenant

COLUMNS = ("req/s c=8", "p50/p99 c=8 ms", "req/s c=1", "p50/p99 c=1 ms", "CPU ms",
           "queries", "SQL ms")


def _row(f: bench.Figures) -> list[str]:
    return [f"{f.rps_c8:.0f}", f"{f.p50_c8_ms:.1f} / {f.p99_c8_ms:.1f}", f"{f.rps_c1:.0f}",
            f"{f.p50_c1_ms:.1f} / {f.p99_c1_ms:.1f}", f"{f.cpu_ms:.1f}", str(f.queries),
            f"{f.sql_ms:.1f}"]


def markdown_table(results: list[bench.Figures]) -> str:
    sizes = sorted({r.jobs for r in results})
    lines = ["| page | jobs | " + " | ".join(COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    pages = list(dict.fromkeys(r.page for r in results))
    for page in pages:
        for size in sizes:
            for r in results:
                if r.page == page and r.jobs == size:
                    errors = f" ({r.errors} non-200)" if r.errors else ""
                    lines.append(f"| {page}{errors} | {size:,} | " + " | ".join(_row(r)) + " |")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Seed job history and measure the job lists, detail, dashboard and /metrics."

    def add_arguments(self, parser):
        parser.add_argument("--sizes", default="100000",
                            help="comma-separated job counts to measure at (e.g. 100000,1000000)")
        parser.add_argument("--tenants", type=int, default=100,
                            help="new tenants the first seeding creates")
        parser.add_argument("--port", type=int, default=8700)
        parser.add_argument("--seconds", type=float, default=5.0,
                            help="per page and concurrency")
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--no-seed", action="store_true",
                            help="measure the database as it is")
        parser.add_argument("--conn-max-age", type=int, default=60,
                            help="the server's DB_CONN_MAX_AGE: persistent database "
                                 "connections, as deployed (deploy/coupler.env.example); "
                                 "0 opens one per request")

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError("bench_reads measures PostgreSQL: set DATABASE_URL=postgres://…")
        try:
            sizes = sorted(int(s) for s in opts["sizes"].split(","))
        except ValueError as error:
            raise CommandError(f"--sizes: comma-separated integers ({error})") from error
        if not Host.objects.exists():
            call_command("seed_demo", stdout=self.stdout)
        results: list[bench.Figures] = []
        # The server inherits this environment (bench.Server).
        os.environ["DB_CONN_MAX_AGE"] = str(opts["conn_max_age"])
        self.stdout.write(f"server: DB_CONN_MAX_AGE={opts['conn_max_age']}")
        # New tenants only with the first history: a larger size adds jobs, not tenants.
        history_tenants = Tenant.objects.filter(slug__startswith="history-").exists()
        new_tenants = 0 if history_tenants else opts["tenants"]
        for size in sizes:
            have = Job.objects.count()
            if not opts["no_seed"] and have < size:
                report = seed_history(jobs=size - have, new_tenants=new_tenants)
                new_tenants = 0
                self.stdout.write(f"seeded {report.jobs:,} jobs in {report.seconds:.0f} s")
            jobs = Job.objects.count()
            admin, member, tenant = bench.bench_users()
            self.stdout.write(f"\n{jobs:,} jobs, {tenant.jobs.count():,} of them in "
                              f"{tenant.slug} (the member's tenant)")
            with bench.Server(opts["port"]) as server:
                for page in bench.pages(admin, member, tenant):
                    figures = bench.measure(server, page, jobs, seconds=opts["seconds"],
                                            concurrency=opts["concurrency"])
                    results.append(figures)
                    self.stdout.write(f"  {page.name:32} " + "  ".join(
                        f"{c}: {v}" for c, v in zip(COLUMNS, _row(figures), strict=True)))
        self.stdout.write("\n" + markdown_table(results))
        out = Path(settings.BASE_DIR) / "var" / "bench_reads.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(bench.as_dicts(results), indent=2) + "\n")
        self.stdout.write(f"\nwritten to {out}")
