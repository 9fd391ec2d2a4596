import json

from django.core.management.base import BaseCommand

from coupler_demo.seed import credentials_path, seed_demo


class Command(BaseCommand):
    help = "Seed the demo cluster, tenants and users (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, **opts):
        credentials = seed_demo(url=opts["url"])
        self.stdout.write(f"Demo credentials written to {credentials_path()}")
        self.stdout.write(json.dumps(credentials, indent=2))
