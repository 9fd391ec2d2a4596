"""``make demo-host``: this machine as a real Coupler host.

Starts libvirtd/virtlogd if nothing else runs them, optionally reserves and
mounts 1 GiB hugepages, builds the busybox guest image into the agent's images
directory and the catalogue (the cluster's default image), registers this
machine from its real inventory, creates a tenant with a member, and runs the
console (web, orchestrator, beat: ``rundemo --no-agents``) with a real agent on
``qemu:///system``. A tenant's CPU-only job then boots a real VM; its page shows
the placement, the guest's console lines and the verified isolation.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.core.actions.agents import do_issue_agent_token
from console.core.actions.hosts import do_override_host_checks
from console.core.actions.images import do_create_image, do_update_image
from console.core.actions.inventory import do_register_host
from console.core.actions.tenants import do_set_quota
from console.core.actions.tokens import do_issue_demo_token
from console.core.models import Cluster, Image, Membership, Tenant

HOST = "coupler-local"
IMAGES = Path("/var/lib/coupler/images")
STATE = Path("/var/lib/coupler")


class Command(BaseCommand):
    help = "Run the console with a real agent for this machine (qemu:///system)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8200)
        parser.add_argument("--hugepages", type=int, default=0,
                            help="reserve this many 1 GiB hugepages and mount hugetlbfs")
        parser.add_argument("--setup-only", action="store_true",
                            help="prepare everything, start no process")

    def handle(self, *args, **options):
        # The host side runs as the agent's own CLI: the console never imports the
        # host drivers (import-linter), it reads what the host reports.
        argv = [sys.executable, "-m", "hostagent", "prepare-host", "--images", str(IMAGES)]
        if options["hugepages"]:
            argv += ["--hugepages", str(options["hugepages"])]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              cwd=settings.BASE_DIR)
        if proc.returncode != 0:
            raise CommandError(proc.stderr.strip() or "prepare-host failed")
        prepared = json.loads(proc.stdout)
        image = prepared["image"]
        self.stdout.write(f"libvirt daemons started: {prepared['daemons_started'] or 'none'}; "
                          f"hugepages: {prepared['hugepages']}")
        cluster, _ = Cluster.objects.get_or_create(slug="local", defaults={"name": "This machine"})
        host = do_register_host(cluster=cluster, name=HOST, inventory=prepared["inventory"],
                                libvirt_uri="qemu:///system", actor="demo_host")
        # A development machine fails critical production checks (no KVM, no IOMMU):
        # the admin's documented override lets CPU-only TCG VMs run on it anyway.
        do_override_host_checks(host, actor="demo_host",
                                reason="demo-host: a development machine running VMs under TCG")
        fields = {
            "format": "raw", "disk": image["disk"], "sha256": image["sha256"], "os": "busybox "
            "initramfs on the Debian kernel", "kernel": image["kernel"], "initrd": image["initrd"],
            "cmdline": "coupler.sleep=300", "is_default": True}
        known = Image.objects.filter(cluster=cluster, name="busybox").first()
        if known:
            do_update_image(known, actor="demo_host", **fields)
        else:
            do_create_image(cluster=cluster, name="busybox", actor="demo_host", **fields)
        creds = self._people()
        config = settings.VAR_DIR / "agent-host-config.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{options['port']}"
        config.write_text(json.dumps({
            "console_url": url, "heartbeat_interval_s": 3, "latency_listen": "127.0.0.1:0",
            "hosts": [{"name": HOST, "token": do_issue_agent_token(host, actor="demo_host"),
                       "libvirt_uri": "qemu:///system", "images_dir": str(IMAGES),
                       "state_dir": str(STATE), "network": "user", "boot_timeout_s": 240,
                       "inventory": prepared["inventory"]}]}, indent=1))
        config.chmod(0o600)
        self.stdout.write(
            f"Console: {url}/  member {creds['username']} / {creds['password']}  "
            f"token {creds['token']}\n"
            f"Submit a VM:  curl -s -X POST {url}/api/v1/jobs/ -H 'Authorization: Token "
            f"{creds['token']}' -H 'Content-Type: application/json' -d '{{\"tenant\":\"local\","
            f"\"name\":\"hello-vm\",\"gpus_per_host\":0,\"vcpus_per_host\":1,"
            f"\"memory_gib_per_host\":1}}'\n"
            f"(credentials in {settings.VAR_DIR / 'demo-host-credentials.json'})")
        if options["setup_only"]:
            return
        self._run(options["port"], config)

    def _people(self) -> dict:
        path = settings.VAR_DIR / "demo-host-credentials.json"
        if path.exists():
            creds = json.loads(path.read_text())
            user = get_user_model().objects.filter(username=creds.get("username")).first()
            if user is not None:
                # The last run's token while it is usable; a new one once expired or revoked.
                token = do_issue_demo_token(user, name="demo-host", actor="demo_host",
                                            keep=creds.get("token") or "")
                if token != creds.get("token"):
                    creds["token"] = token
                    path.write_text(json.dumps(creds, indent=1))
                return creds
        tenant, _ = Tenant.objects.get_or_create(slug="local", defaults={"name": "Local",
                                                                         "weight": 1})
        for resource, limit in (("vcpus", 2), ("memory_gib", 8)):
            try:
                do_set_quota(tenant, resource=resource, guaranteed=limit, limit=limit)
            except Exception as exc:  # a quota API that moved: the demo runs without it
                self.stderr.write(f"quota {resource}: {exc}")
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username="local-member")
        user.set_password(password)
        user.save()
        Membership.objects.get_or_create(user=user, tenant=tenant)
        token = do_issue_demo_token(user, name="demo-host", actor="demo_host")
        creds = {"username": user.username, "password": password, "token": token}
        path.write_text(json.dumps(creds, indent=1))
        path.chmod(0o600)
        return creds

    def _run(self, port: int, config: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", COUPLER_AGENT_CONFIG=str(config),
                   COUPLER_AGENT_STATE_DIR=str(settings.VAR_DIR / "agent"))
        env.setdefault("COUPLER_VAR_DIR", str(settings.VAR_DIR))
        env.setdefault("COUPLER_BROKER_DIR", str(settings.CELERY_BROKER_DIR))
        logs = settings.VAR_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "agent-host.log", "ab") as log:
            agent = subprocess.Popen([sys.executable, "-m", "hostagent", "run"],
                                     cwd=settings.BASE_DIR, env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        self.stdout.write(f"real agent (pid {agent.pid}), log {logs / 'agent-host.log'}")
        try:
            subprocess.run([sys.executable, "manage.py", "rundemo", "--no-agents",
                            "--port", str(port)], cwd=settings.BASE_DIR, env=env, check=False)
        finally:
            agent.terminate()
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
