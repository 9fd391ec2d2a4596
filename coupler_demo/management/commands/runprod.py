"""``manage.py runprod``: the production processes on one machine.

What ``deploy/run-local.sh`` (``make prod``) runs, with the production
settings (``console.settings``: DEBUG off, a real SECRET_KEY, PostgreSQL and
Redis required):

- web: gunicorn (``console.wsgi``), static files served by WhiteNoise from
  ``collectstatic``'s folder;
- orchestrator: a Celery worker on queues ``scheduler,workflow``;
- beat: the scheduling tick, the reconciler and the heartbeat watchdog;
- agent: the simulated host agent (libvirt's test driver), one process for all
  simulated hosts here; on real hosts, one agent per host (deploy/systemd/).

Before starting them: ``migrate`` (always before the web starts: the upgrade
path), ``collectstatic`` and, unless ``--no-seed``, the demo's simulated
cluster, tenants and users (credentials in ``var/demo-credentials.json``,
mode 0600). Ctrl-C or SIGTERM stops every child.
"""

import os
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from coupler_demo.management.commands.rundemo import write_agent_config
from coupler_demo.processes import run_processes, workflow_commands


class Command(BaseCommand):
    help = "Run the production stack on this machine: gunicorn, orchestrator, beat, agent."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--heartbeat", type=float, default=5.0)
        parser.add_argument("--no-seed", action="store_true",
                            help="no simulated cluster or demo users (real agents register)")
        parser.add_argument("--no-agents", action="store_true")
        parser.add_argument("--agents-only", action="store_true",
                            help="only the simulated agent (for a console started apart, "
                                 "e.g. restarted on a restored database while hosts run on)")
        parser.add_argument("--duration", type=float, default=0,
                            help="stop after this many seconds (0: until Ctrl-C)")

    def handle(self, *args, **options):
        if settings.DEBUG:
            raise CommandError("runprod runs the production settings: DEBUG must be off "
                               "(DJANGO_SETTINGS_MODULE=console.settings, DEBUG unset or 0)")
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("runprod needs PostgreSQL: set DATABASE_URL=postgres://…")
        if not settings.REDIS_URL:
            raise CommandError("runprod needs Redis as the broker: set REDIS_URL=redis://…")
        url = f"http://{options['bind']}:{options['port']}"
        if not options["agents_only"]:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_seed"] and not options["agents_only"]:
            from coupler_demo.seed import seed_demo

            seed_demo(url + "/")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        py = sys.executable
        commands = {
            "web": [py, "-m", "gunicorn", "console.wsgi:application",
                    "--bind", f"{options['bind']}:{options['port']}",
                    "--workers", str(options["web_workers"]), "--access-logfile", "-",
                    "--forwarded-allow-ips", "127.0.0.1"],
            **workflow_commands(py, settings.VAR_DIR / "celerybeat-schedule"),
        }
        if options["agents_only"]:
            commands = {}
        if not options["no_agents"] and not options["no_seed"]:
            config = write_agent_config(url, options["heartbeat"])
            env.update(COUPLER_AGENT_CONFIG=str(config),
                       COUPLER_AGENT_STATE_DIR=str(settings.VAR_DIR / "agent"),
                       COUPLER_BROKER_URL=settings.REDIS_URL)
            commands["agent"] = [py, "-m", "hostagent", "run"]
        logs = settings.VAR_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        def started(children: dict[str, subprocess.Popen]) -> None:
            self.stdout.write(f"Coupler (production settings) on {url}/ — processes: "
                              + ", ".join(f"{n} (pid {c.pid})" for n, c in children.items())
                              + f"; logs in {logs}/", ending="\n")
            self.stdout.flush()

        run_processes(commands, cwd=settings.BASE_DIR, env=env, logs=logs,
                      duration=options["duration"], on_started=started,
                      warn=self.stderr.write, grace_s=15)
        self.stdout.write("stopped")
