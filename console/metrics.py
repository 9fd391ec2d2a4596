"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Read from the database on each scrape, at a cost that does not grow with the
number of finished jobs: queue length per tenant and live job states from the
``(state, tenant)`` index, finished jobs and the submit→running latency
histogram from the counters ``transition_job`` keeps (``console.core.counters``),
the capacity figures per GPU model and per resource and each tenant's weighted
dominant share from ``console.core.usage`` (the dashboard's numbers), and
hosts per state from the inventory.

The text is computed at most once every ``METRICS_CACHE_S`` seconds and shared
by every scrape in between (Prometheus' high-availability pairs scrape the same
target; so do dashboards that poll it); ``coupler_metrics_computed_timestamp_seconds``
says when it was computed.
"""

import math
import secrets
import time
from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.http import HttpResponse

from console.core import counters, usage
from console.core.choices import HostState, JobState
from console.core.models import Host, Tenant
from console.core.selectors.jobs import live_job_counts


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


def _queue(w: Writer, live: dict[tuple[int, str], int], slugs: dict[int, str]) -> None:
    w.family("coupler_queue_length", "gauge", "Queued jobs per tenant.")
    for tenant_id, slug in sorted(slugs.items(), key=lambda item: item[1]):
        w.sample("coupler_queue_length", live.get((tenant_id, JobState.QUEUED), 0), tenant=slug)


# name suffix → (Figures attribute, help): the dashboard's figures
# (``console.core.usage.capacity``), so that total = out_of_service + allocated + free.
FIGURES = (
    ("total", "total", "Capacity, in service or not."),
    ("out_of_service", "out_of_service",
     "Capacity no new job can get: failed or cordoned GPUs, hosts not ready."),
    ("allocated", "allocated", "Held by live jobs, of the capacity in service."),
    ("free", "free", "In service and not allocated."),
    ("utilization", "utilization", "Allocated / in service (0 to 1)."),
)


def _capacity(w: Writer, figures: usage.Capacity) -> None:
    for suffix, attribute, help_text in FIGURES:
        name = f"coupler_gpus_{suffix}"
        w.family(name, "gauge", f"GPUs per model (shares count fractionally). {help_text}")
        for row in figures.gpu_models:
            w.sample(name, round(getattr(row, attribute), 6), model=row.model)
    for suffix, attribute, help_text in FIGURES:
        name = f"coupler_capacity_{suffix}"
        w.family(name, "gauge", f"Per resource (gpus, vcpus, memory_gib). {help_text}")
        for row in figures.resources:
            w.sample(name, round(getattr(row, attribute), 6), resource=row.resource)


def _shares(w: Writer, figures: usage.Capacity) -> None:
    w.family("coupler_dominant_share", "gauge",
             "Each tenant's weighted dominant resource share (DRF).")
    for share in usage.tenant_shares(capacity=usage.cluster_capacity(figures)):
        w.sample("coupler_dominant_share", round(share.weighted, 6), tenant=share.tenant.slug)


def _jobs(w: Writer, live: dict[tuple[int, str], int]) -> None:
    w.family("coupler_jobs", "gauge", "Jobs per state.")
    counts: dict[str, int] = defaultdict(int)
    for (_tenant_id, state), n in live.items():
        counts[state] += n
    for (_tenant_id, state), n in counters.finished_counts().items():
        counts[state] += n
    for state in JobState.values:
        w.sample("coupler_jobs", counts.get(state, 0), state=state)


def _latency(w: Writer) -> None:
    name = "coupler_submit_to_running_seconds"
    w.family(name, "histogram", "Time from submit to RUNNING, per start of a job.")
    per_bucket, total, total_seconds = counters.latency_histogram()
    cumulative = 0
    for bound, count in zip(counters.LATENCY_BUCKETS, per_bucket, strict=False):
        cumulative += count
        w.sample(f"{name}_bucket", cumulative, le=f"{bound:g}")
    w.sample(f"{name}_bucket", total, le="+Inf")
    w.sample(f"{name}_sum", round(total_seconds, 6))
    w.sample(f"{name}_count", total)


def _hosts(w: Writer) -> None:
    w.family("coupler_hosts", "gauge", "Hosts per state.")
    counts = dict(Host.objects.order_by().values_list("state").annotate(n=Count("id")))
    for state in HostState.values:
        w.sample("coupler_hosts", counts.get(state, 0), state=state)


METRICS_CACHE_S = 5
METRICS_CACHE_KEY = "metrics:text:v1"


def cached_render() -> str:
    """``render()``'s text, computed at most once every ``METRICS_CACHE_S`` seconds."""
    return cache.get_or_set(METRICS_CACHE_KEY, render, METRICS_CACHE_S)


def render() -> str:
    w = Writer()
    w.family("coupler_metrics_computed_timestamp_seconds", "gauge",
             f"When these figures were computed (Unix time); scrapes within "
             f"{METRICS_CACHE_S} s share them.")
    w.sample("coupler_metrics_computed_timestamp_seconds", round(time.time(), 3))
    live = live_job_counts()
    _queue(w, live, dict(Tenant.objects.values_list("pk", "slug")))
    figures = usage.capacity()
    _capacity(w, figures)
    _shares(w, figures)
    _jobs(w, live)
    _latency(w)
    _hosts(w)
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
    return HttpResponse(cached_render(), content_type="text/plain; version=0.0.4; charset=utf-8")
