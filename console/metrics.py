"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Read from the database on each scrape: queue length per tenant, GPUs allocated
and free per model, each tenant's weighted dominant share, job state counts,
host states, and the submit→running latency histogram (from job timestamps).
"""

import math
import secrets
from collections import defaultdict

from django.conf import settings
from django.db.models import Count, F
from django.http import HttpResponse

from console.core.choices import GpuHealth, HostState, JobState
from console.core.models import Gpu, Host, Job, Tenant
from console.core.snapshot import build_snapshot

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels) -> None:
        text = ("+Inf" if value > 0 else "-Inf") if math.isinf(value) else f"{value:g}"
        self.lines.append(f"{name}{_labels(**labels)} {text}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _queue(w: Writer) -> None:
    w.family("coupler_queue_length", "gauge", "Queued jobs per tenant.")
    counts = dict(
        Job.objects.filter(state=JobState.QUEUED).values_list("tenant__slug")
        .annotate(n=Count("id")).values_list("tenant__slug", "n")
    )
    for slug in Tenant.objects.order_by("slug").values_list("slug", flat=True):
        w.sample("coupler_queue_length", counts.get(slug, 0), tenant=slug)


def _gpus(w: Writer) -> None:
    w.family("coupler_gpus_allocated", "gauge",
             "GPUs held by jobs per model, in GPU-equivalents (shares count fractionally).")
    w.family("coupler_gpus_free", "gauge",
             "Idle, healthy, uncordoned GPUs on ready hosts per model.")
    w.family("coupler_gpus_total", "gauge", "GPUs per model.")
    allocated: dict[str, float] = defaultdict(float)
    free: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for model, milli, health, cordoned, host_state in Gpu.objects.values_list(
        "model", "allocated_milli", "health", "cordoned", "host__state"
    ):
        total[model] += 1
        allocated[model] += milli / 1000
        if (milli == 0 and health != GpuHealth.FAILED and not cordoned
                and host_state == HostState.READY):
            free[model] += 1
    for model in sorted(total):
        w.sample("coupler_gpus_allocated", allocated[model], model=model)
        w.sample("coupler_gpus_free", free[model], model=model)
        w.sample("coupler_gpus_total", total[model], model=model)


def _shares(w: Writer) -> None:
    from scheduler.fairshare import FairShare
    from scheduler.placement import Placer
    from scheduler.planner import cluster_capacity

    w.family("coupler_dominant_share", "gauge",
             "Each tenant's weighted dominant resource share (DRF).")
    snapshot = build_snapshot()
    capacity = cluster_capacity(Placer(snapshot.hosts, "first-fit", ()), snapshot.running)
    fs = FairShare(snapshot.tenants, capacity, {t.name: dict(t.usage) for t in snapshot.tenants})
    for name, share in sorted(fs.shares().items()):
        w.sample("coupler_dominant_share", round(share, 6), tenant=name)


def _jobs(w: Writer) -> None:
    w.family("coupler_jobs", "gauge", "Jobs per state.")
    counts = dict(Job.objects.values_list("state").annotate(n=Count("id")))
    for state in JobState.values:
        w.sample("coupler_jobs", counts.get(state, 0), state=state)


def _latency(w: Writer) -> None:
    name = "coupler_submit_to_running_seconds"
    w.family(name, "histogram", "Time from submit to RUNNING, per job that reached RUNNING.")
    values = [
        d.total_seconds()
        for d in Job.objects.filter(running_at__isnull=False)
        .annotate(d=F("running_at") - F("submitted_at")).values_list("d", flat=True)
        if d is not None
    ]
    for bound in LATENCY_BUCKETS:
        w.sample(f"{name}_bucket", sum(1 for v in values if v <= bound), le=f"{bound:g}")
    w.sample(f"{name}_bucket", len(values), le="+Inf")
    w.sample(f"{name}_sum", round(sum(values), 6))
    w.sample(f"{name}_count", len(values))


def _hosts(w: Writer) -> None:
    w.family("coupler_hosts", "gauge", "Hosts per state.")
    counts = dict(Host.objects.values_list("state").annotate(n=Count("id")))
    for state in HostState.values:
        w.sample("coupler_hosts", counts.get(state, 0), state=state)


def render() -> str:
    w = Writer()
    for section in (_queue, _gpus, _shares, _jobs, _latency, _hosts):
        section(w)
    return w.text()


def metrics_view(request):
    # Tenant names and shares are in here: where the endpoint is reachable from
    # outside the monitoring network, set COUPLER_METRICS_TOKEN and configure
    # Prometheus with `authorization: {credentials: <token>}`.
    token = settings.COUPLER_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("metrics need a bearer token\n", status=401,
                                    content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(render(), content_type="text/plain; version=0.0.4; charset=utf-8")
