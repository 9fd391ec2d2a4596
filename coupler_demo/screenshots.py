"""Capture a screenshot of every console page into docs/screenshots/ (English)
and docs/screenshots/zh-Hans/ (简体中文, the browser asking for zh-CN).

    DJANGO_SETTINGS_MODULE=console.settings_dev .venv/bin/python -m coupler_demo.screenshots [--out docs/screenshots]

Seeds the demo into a throw-away database (its own ``COUPLER_VAR_DIR``), runs
the real workflow in-process (eager Celery, simulated hosts on libvirt's
``test:///`` driver), reports host checks from the demo's sim root trees and
two kernel-log lines through the agents' heartbeat action, serves the console
on a free local port and drives headless Chromium (Debian's
``/usr/bin/chromium``) through every page.
"""

import argparse
import os
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent.parent

def _setup(var_dir: str) -> None:
    os.environ["COUPLER_VAR_DIR"] = var_dir
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings_dev")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()
    from console.celery import app
    from coupler_demo.simhosts import install_in_process_agent

    app.conf.task_always_eager = True
    install_in_process_agent()


def _heartbeat(host, *, checks=None, xid_events=None) -> None:
    from console.core.actions.agents import do_agent_heartbeat
    from console.core.choices import ACTIVE_JOB_STATES
    from console.core.models import Job
    from hostagent.protocol import CheckResult, Heartbeat, XidEvent, decode

    running = [j.domain_name for j in Job.objects.filter(
        allocations__host=host, state__in=ACTIVE_JOB_STATES).distinct()]
    beat = Heartbeat(host=host.name, sent_at=datetime.now(UTC), agent_version="screenshots",
                     domains=tuple(running),
                     gpus=tuple(host.gpus.values_list("pci_address", flat=True)),
                     checks=tuple(decode(CheckResult, c) for c in checks or ()),
                     xid_events=tuple(decode(XidEvent, x) for x in xid_events or ()))
    do_agent_heartbeat(host, beat)


def seed() -> dict:
    """The demo plus checks, running and waiting jobs, and two incidents."""
    from django.core.management import call_command

    from console.core.actions.jobs import do_submit_job
    from console.core.models import Host, Job, Tenant
    from coupler_demo.seed import seed_demo

    call_command("migrate", verbosity=0, interactive=False)
    credentials = seed_demo()
    from coupler_demo.simhosts import sim_checks_root
    from hostagent import checks

    for host in Host.objects.all():
        root = sim_checks_root(host.facts, simulated=host.simulated) or "/"  # its agent's root
        gpus = [{"index": g.index, "pci_address": g.pci_address, "uuid": g.uuid}
                for g in host.gpus.all()]
        results = [r.to_dict() for r in checks.run_checks(
            root, gpus=gpus, driver_version=host.facts.get("driver_version"))]
        _heartbeat(host, checks=results)

    users = {t["slug"]: t["username"] for t in credentials["tenants"]}
    from django.contrib.auth import get_user_model

    User = get_user_model()
    jobs = [
        ("aurora", "llama-70b-pretrain", {"gpus_per_host": 8, "host_count": 2,
                                          "gpu_model": "H100-SXM5-80GB", "vcpus_per_host": 64,
                                          "memory_gib_per_host": 512}),
        ("aurora", "vision-finetune", {"gpus_per_host": 4, "gpu_model": "A100-SXM4-40GB",
                                       "vcpus_per_host": 32, "memory_gib_per_host": 256}),
        ("borealis", "rl-sweep-17", {"gpus_per_host": 2, "gpu_model": "A100-SXM4-40GB",
                                     "vcpus_per_host": 16, "memory_gib_per_host": 128}),
        ("borealis", "notebook-share", {"gpus_per_host": 1, "gpu_milli": 250,
                                        "gpu_model": "RTX-6000-Ada", "vcpus_per_host": 4,
                                        "memory_gib_per_host": 32}),
        ("cirrus", "protein-fold", {"gpus_per_host": 8, "gpu_model": "A100-SXM4-40GB",
                                    "vcpus_per_host": 64, "memory_gib_per_host": 384}),
        ("cirrus", "h100-burst", {"gpus_per_host": 8, "host_count": 2,
                                  "gpu_model": "H100-SXM5-80GB", "vcpus_per_host": 64,
                                  "memory_gib_per_host": 512}),
    ]
    for slug, name, spec in jobs:
        tenant = Tenant.objects.get(slug=slug)
        user = User.objects.get(username=users[slug])
        do_submit_job(tenant=tenant, submitter=user, actor=user.username, name=name,
                      **{"vcpus_per_host": 8, "memory_gib_per_host": 64, **spec})

    # A hardware Xid under a running job, and an application one.
    from hostagent import xid
    victim = Job.objects.filter(name="vision-finetune").first()
    alloc = victim.allocations.filter(gpu__isnull=False).select_related("gpu", "host").first() \
        if victim else None
    if alloc is not None:
        bus = alloc.gpu.pci_address[:-2]
        line = (f"Nov 28 12:00:01 {alloc.host.name} kernel: NVRM: Xid (PCI:{bus}): 79, "
                "pid=4242, name=python, GPU has fallen off the bus.")
        events = [e.to_dict() for e in xid.scan_text(line, host=alloc.host.name)]
        _heartbeat(alloc.host, xid_events=events)
    ws = Host.objects.get(name="ws-5090-01")
    gpu = ws.gpus.first()
    line = (f"Nov 28 12:05:09 {ws.name} kernel: NVRM: Xid (PCI:{gpu.pci_address[:-2]}): 13, "
            "pid=1717, name=python3, Graphics Exception: ESR 0x405840=0x3f0c0000")
    _heartbeat(ws, xid_events=[e.to_dict() for e in xid.scan_text(line, host=ws.name)])

    # Saved filters on the lists (a member's and the admin's).
    from console.core.actions.preferences import do_save_filter

    member = User.objects.get(username=credentials["tenants"][0]["username"])
    do_save_filter(member, list="jobs", name="Running", query="state=running")
    do_save_filter(member, list="jobs", name="A100 queue", query="gpu_model=A100&state=queued")
    admin = User.objects.get(username=credentials["admin"]["username"])
    do_save_filter(admin, list="hosts", name="H100 hosts", query="gpu_model=H100")
    do_save_filter(admin, list="faults", name="Open hardware", query="fault=hardware&state=open")
    return credentials


def serve() -> tuple[str, object]:
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


LANGUAGES = {"en": ("en-US", ""), "zh-hans": ("zh-CN", "zh-Hans")}  # locale, sub-folder


def capture(base: str, credentials: dict, out: Path, language: str = "en"
            ) -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    from console.core.models import Host, Incident, Job

    out.mkdir(parents=True, exist_ok=True)
    shots: list[tuple[str, str]] = []
    admin = credentials["admin"]
    member = credentials["tenants"][0]
    running = Job.objects.filter(state="running").order_by("pk").first()
    waiting = Job.objects.filter(state="queued").order_by("pk").first()
    incident = Incident.objects.filter(runbook="cuda_launch_failed").order_by("pk").first()
    misconfigured = Host.objects.get(name="hgx-h100-04")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

        locale = LANGUAGES[language][0]

        def login(username, password, width=1366):
            context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
            page = context.new_page()
            page.goto(f"{base}/login/")
            page.locator("#id_username").fill(username)
            page.locator("#id_password").fill(password)
            page.locator("main form button[type=submit]").click()
            page.wait_for_url(f"{base}/")
            return page

        def shot(page, name, title, url=None):
            if url:
                page.goto(base + url)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            shots.append((name, title))

        page = login(member["username"], member["password"])
        shot(page, "01-dashboard-member", "Dashboard (tenant member)")
        shot(page, "02-jobs", "Jobs list with filters", "/jobs/")
        page.goto(f"{base}/jobs/new/")
        page.locator("#id_name").fill("bert-large")
        page.locator("#id_gpus_per_host").fill("8")
        page.locator("#id_hosts").fill("4")
        page.locator("#id_gpu_model").select_option("A100-SXM4-40GB")
        page.wait_for_selector("#quota-preview table")
        shot(page, "03-job-submit-preview", "Submit form with the live quota preview")
        if running:
            shot(page, "04-job-running", "Job detail: timeline, placement, events",
                 f"/jobs/{running.pk}/")
            shot(page, "05-job-cancel", "Cancel confirmation", f"/jobs/{running.pk}/cancel/")
        page.context.close()
        if running:
            phone = login(member["username"], member["password"], width=375)
            shot(phone, "21-phone-job", "A job's placement at 375 px", f"/jobs/{running.pk}/")
            phone.locator("label.menu-button").click()
            shot(phone, "22-phone-menu", "The collapsed menu opened at 375 px")
            phone.context.close()

        page = login(admin["username"], admin["password"])
        shot(page, "06-dashboard-admin", "Dashboard (admin): shares, fragmentation, incidents")
        if waiting:
            shot(page, "07-job-pending", "Why a job is pending", f"/jobs/{waiting.pk}/")
        shot(page, "08-tenants", "Tenants and quotas: usage against guaranteed and limit",
             "/tenants/")
        page.goto(f"{base}/tenants/cirrus/edit/")
        page.locator("#id_quota-1-guaranteed").fill("16")  # row 2: whole GPUs
        page.locator("#id_quota-1-limit").fill("32")
        page.locator("button[name=preview]").click()
        page.wait_for_selector("#whatif-summary")
        shot(page, "09-tenant-whatif", "Quota edit with the what-if preview")
        shot(page, "10-hosts", "Hosts: state, health, GPU use", "/hosts/")
        shot(page, "11-host-detail", "Host detail: GPUs, NUMA nodes, jobs, audit log",
             "/hosts/dgx-a100-01/")
        shot(page, "12-host-drain", "Drain confirmation", "/hosts/dgx-a100-01/drain/")
        shot(page, "13-topology-dgx", "Topology of a DGX A100: matrix and NVLink graph",
             "/hosts/dgx-a100-01/topology/")
        shot(page, "14-topology-pcie", "Topology of a PCIe server",
             "/hosts/ada-pcie-01/topology/")
        shot(page, "15-topology-cluster", "Cluster view by GPU model and state", "/topology/")
        shot(page, "16-checks-fleet", "Checklists across the fleet", "/checks/")
        shot(page, "17-checks-host", "Checklist of a misconfigured host",
             f"/hosts/{misconfigured.name}/checks/")
        shot(page, "18-faults", "Incidents", "/faults/")
        if incident:
            shot(page, "19-incident", "Incident drill-down with the CUDA_ERROR_LAUNCH_FAILED "
                 "runbook", f"/faults/{incident.pk}/")
            shot(page, "20-incident-resolve", "Resolve and return to service",
                 f"/faults/{incident.pk}/resolve/")
        page.context.close()
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale=locale)
        shot(page, "00-login", "Login", "/login/")
        browser.close()
    return shots


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="coupler-shots-") as var_dir:
        _setup(var_dir)
        credentials = seed()
        base, server = serve()
        try:
            shots = []
            for language, (_locale, folder) in LANGUAGES.items():
                shots += capture(base, credentials, Path(args.out) / folder, language)
        finally:
            server.shutdown()
    for name, title in sorted(shots):
        print(f"{name}.png  {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
