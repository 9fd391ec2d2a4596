"""``manage.py rundemo``: the whole demo as child processes of this one.

- web: ``gunicorn`` (``--web-workers`` processes × 4 threads, as deployed;
  ``--runserver`` for Django's development server), with persistent database
  connections (``DB_CONN_MAX_AGE``, 300 s unless set) in every process;
- orchestrator: a Celery worker on queues ``scheduler,workflow`` (threads pool);
- beat: the scheduling tick, the reconciler and the heartbeat watchdog;
- the simulated host agent: ONE ``python -m hostagent run`` process serving
  every simulated host (one worker consuming all ``host.*`` queues with the
  solo pool, one libvirt ``test:///`` connection per host, heartbeats for all),
  so the demo fits a 2-core machine. Production runs one agent per host.

Each simulated host gets a fresh agent token (written with the host's libvirt
node file, check root and inventory to ``var/agent-config.json``, mode 0600).
Check roots are the hosts' own machines (``var/sim-roots/<kind>/<variant>``: the
kind's board, BIOS, driver and VBIOS, the host's misconfiguration). The agent's
one echo responder listens on ``127.0.0.1`` (ephemeral port) and every simulated
host advertises it, so the demo's ``network.hop_latency`` is a loopback figure
between threads of one process: it shows the mechanism, not a fabric.
Ctrl-C or SIGTERM stops every child.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from coupler_demo.processes import run_processes, workflow_commands
from coupler_demo.seed import credentials_path
from coupler_demo.simhosts import write_agent_config


class Command(BaseCommand):
    help = "Run the demo: web, orchestrator worker, beat and the simulated host agent."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--heartbeat", type=float, default=5.0,
                            help="agent heartbeat interval in seconds")
        parser.add_argument("--no-agents", action="store_true")
        parser.add_argument("--duration", type=float, default=0,
                            help="stop after this many seconds (0: until Ctrl-C)")
        parser.add_argument("--runserver", action="store_true",
                            help="serve with Django's runserver instead of gunicorn")
        parser.add_argument("--web-workers", type=int, default=2,
                            help="gunicorn worker processes (4 threads each)")

    def handle(self, *args, **options):
        url = f"http://127.0.0.1:{options['port']}"
        env = dict(os.environ)
        env.setdefault("COUPLER_VAR_DIR", str(settings.VAR_DIR))
        env.setdefault("COUPLER_BROKER_DIR", str(settings.CELERY_BROKER_DIR))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("DB_CONN_MAX_AGE", "300")
        # Work counters per process for `manage.py loadtest --live --rate` (perfstats).
        env.setdefault("COUPLER_PERF_STATS_DIR", str(settings.VAR_DIR / "perf"))
        perf = Path(env["COUPLER_PERF_STATS_DIR"])
        if perf.is_dir():
            for stale in perf.glob("*.json"):  # counters of an earlier run's processes
                stale.unlink()
        logs = settings.VAR_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        py = sys.executable
        commands = {
            "web": ([py, "manage.py", "runserver", f"127.0.0.1:{options['port']}", "--noreload"]
                    if options["runserver"] else
                    [py, "-m", "gunicorn", "console.wsgi:application",
                     "--bind", f"127.0.0.1:{options['port']}", "--worker-class", "gthread",
                     "--workers", str(max(1, options["web_workers"])), "--threads", "4",
                     "--log-level", "info"]),
            **workflow_commands(py, settings.VAR_DIR / "celerybeat-schedule"),
        }
        if not options["no_agents"]:
            config = write_agent_config(url, options["heartbeat"])
            env["COUPLER_AGENT_CONFIG"] = str(config)
            env["COUPLER_AGENT_STATE_DIR"] = str(settings.VAR_DIR / "agent")
            commands["agent"] = [py, "-m", "hostagent", "run"]

        def started(children: dict[str, subprocess.Popen]) -> None:
            pids = settings.VAR_DIR / "run" / "pids.json"
            pids.parent.mkdir(parents=True, exist_ok=True)
            pids.write_text(json.dumps({name: child.pid for name, child in children.items()}))
            self._banner(url, children, logs)

        run_processes(commands, cwd=settings.BASE_DIR, env=env, logs=logs,
                      duration=options["duration"], on_started=started,
                      warn=self.stderr.write, grace_s=10)
        self.stdout.write("demo stopped")

    def _banner(self, url, children, logs):
        lines = [f"Coupler demo on {url}/  (API {url}/api/v1/, docs {url}/api/docs/)"]
        path = credentials_path()
        if path.exists():
            creds = json.loads(path.read_text())
            admin = creds.get("admin", {})
            lines.append(f"  admin: {admin.get('username')} / {admin.get('password')}  "
                         f"token {admin.get('token')}")
            for tenant in creds.get("tenants", []):
                lines.append(f"  {tenant['slug']}: {tenant['username']} / {tenant['password']}"
                             f"  token {tenant['token']}")
        lines.append("  processes: " + ", ".join(f"{n} (pid {c.pid})" for n, c in children.items()))
        lines.append(f"  logs in {logs}/; Ctrl-C stops everything")
        self.stdout.write("\n".join(lines))
