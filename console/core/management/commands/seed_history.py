"""manage.py seed_history --jobs N --tenants T: a year of job history in bulk."""

from django.core.management.base import BaseCommand, CommandError

from console.core.history.seed import seed_history


class Command(BaseCommand):
    help = ("Write N jobs of realistic history (finished, running and queued jobs with "
            "their events and allocations) over the existing tenants and T new ones.")

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=100_000)
        parser.add_argument("--tenants", type=int, default=100,
                            help="new tenants to create (default 100)")
        parser.add_argument("--seed", type=int, default=1, help="random seed")

    def handle(self, *args, **opts):
        if opts["jobs"] < 0 or opts["tenants"] < 0:
            raise CommandError("--jobs and --tenants must be >= 0")
        report = seed_history(jobs=opts["jobs"], new_tenants=opts["tenants"], seed=opts["seed"])
        self.stdout.write(
            f"seeded {report.jobs:,} jobs ({report.running:,} running, {report.queued:,} "
            f"queued, the rest finished), {report.events:,} events, "
            f"{report.tenants_created} new tenants in {report.seconds:.1f} s"
        )
