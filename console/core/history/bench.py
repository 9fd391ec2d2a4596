"""Measure the read paths (job lists, job detail, dashboard, /metrics) as a
fleet with a long history serves them: gunicorn, one sync worker, PostgreSQL.

For each size of history the benchmark seeds up to that many jobs
(``seed_history``), starts ``gunicorn console.wsgi --workers 1`` on a local
port, and for each page measures:

- at concurrency 1: p50 and p99 latency, and the worker's CPU time per request
  (from ``/proc/<worker>/stat``);
- at concurrency 8: requests per second, p50 and p99;
- in-process, through Django's test client: the number of SQL queries and
  their time.

The load generator is plain threads with ``http.client`` on the same machine,
so its CPU competes with the worker's: the figures are for everything on one
host, as the issue asks.
"""

from __future__ import annotations

import http.client
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console.core.choices import TERMINAL_JOB_STATES
from console.core.models import Job, Membership, Tenant

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    page: str
    jobs: int
    rps_c8: float = 0.0
    p50_c8_ms: float = 0.0
    p99_c8_ms: float = 0.0
    rps_c1: float = 0.0
    p50_c1_ms: float = 0.0
    p99_c1_ms: float = 0.0
    cpu_ms: float = 0.0
    queries: int = 0
    sql_ms: float = 0.0
    errors: int = 0
    statuses: dict = field(default_factory=dict)


@dataclass
class Page:
    name: str
    path: str
    user: object | None  # None: no session (``/metrics``)
    headers: dict = field(default_factory=dict)


def bench_users() -> tuple[object, object, Tenant]:
    """A staff user and a member of the tenant with the most jobs."""
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="bench-admin",
                                          defaults={"is_staff": True})
    if not admin.is_staff:
        admin.is_staff = True
        admin.save(update_fields=["is_staff"])
    heavy = (Tenant.objects.filter(slug__startswith="history-").order_by("pk").first()
             or Tenant.objects.order_by("pk").first())
    member, _ = User.objects.get_or_create(username="bench-member")
    Membership.objects.get_or_create(user=member, tenant=heavy)
    return admin, member, heavy


def pages(admin, member, tenant: Tenant) -> list[Page]:
    job_id = (Job.objects.filter(tenant=tenant, state__in=TERMINAL_JOB_STATES)
              .order_by("-submitted_at", "-id").values_list("pk", flat=True)[500:501].first())
    metrics_headers = {}
    token = getattr(settings, "COUPLER_METRICS_TOKEN", "")
    if token:
        metrics_headers["Authorization"] = f"Bearer {token}"
    return [
        Page("API job list, tenant member", "/api/v1/jobs/", member),
        Page("API job list, admin", "/api/v1/jobs/", admin),
        Page("console /jobs/, member", "/jobs/", member),
        Page("console /jobs/, admin", "/jobs/", admin),
        Page("/metrics", "/metrics", None, metrics_headers),
        Page("dashboard /, admin", "/", admin),
        Page("API job detail, member", f"/api/v1/jobs/{job_id}/", member),
    ]


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def count_queries(page: Page) -> tuple[int, float, int]:
    """(queries, their total ms, status) of one request served in-process."""
    client = Client()
    if page.user is not None:
        client.force_login(page.user)
    client.get(page.path, headers=page.headers)  # warm caches as the server would be
    with CaptureQueriesContext(connection) as captured:
        response = client.get(page.path, headers=page.headers)
    sql_ms = sum(float(q.get("time") or 0) for q in captured.captured_queries) * 1000
    return len(captured.captured_queries), sql_ms, response.status_code


# --- the server ----------------------------------------------------------------


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        # The server runs the production settings, as documented for gunicorn
        # (docs/deploy.md). They refuse the development key and want a metrics token, so
        # both get throwaway values, shared with this process: the session cookies and
        # the scrape's bearer header made here must be the server's.
        settings.SECRET_KEY = secrets.token_urlsafe(50)
        settings.COUPLER_METRICS_TOKEN = settings.COUPLER_METRICS_TOKEN or secrets.token_urlsafe(24)
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DEBUG": "0",
            "SECRET_KEY": settings.SECRET_KEY,
            "COUPLER_METRICS_TOKEN": settings.COUPLER_METRICS_TOKEN,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
        })
        root = Path(settings.BASE_DIR)
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                       cwd=root, env=env, check=True)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "console.wsgi", "--workers", "1", "--worker-class", "sync",
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            cwd=root, env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/login/")
                conn.getresponse().read()
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)

    def worker_cpu_seconds(self) -> float:
        """User + system CPU of the gunicorn worker (the master's child)."""
        assert self.process is not None
        total = 0.0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid:
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total


def _get(port: int, path: str, headers: dict) -> tuple[float, int]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return time.perf_counter() - started, response.status


def load(request: Callable[[], tuple[float, int]], *, concurrency: int, seconds: float,
         max_requests: int = 100_000) -> tuple[list[float], dict[int, int], float]:
    """(latencies, status counts, wall seconds) of ``concurrency`` clients each
    calling ``request`` (which returns its latency and HTTP status) back to back for
    ``seconds``."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < stop_at:
            elapsed, status = request()
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if len(latencies) >= max_requests:
                    return

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - started


def percentile_ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def measure(server: Server, page: Page, jobs: int, *, seconds: float,
            concurrency: int) -> Figures:
    headers = dict(page.headers)
    if page.user is not None:
        headers["Cookie"] = session_cookie(page.user)
    figures = Figures(page=page.name, jobs=jobs)
    figures.queries, figures.sql_ms, _ = count_queries(page)
    def get() -> tuple[float, int]:
        return _get(server.port, page.path, headers)

    load(get, concurrency=1, seconds=0.5)  # warm up
    cpu_before = server.worker_cpu_seconds()
    latencies, statuses, wall = load(get, concurrency=1,
                                     seconds=seconds)
    cpu = server.worker_cpu_seconds() - cpu_before
    figures.rps_c1 = len(latencies) / wall
    figures.p50_c1_ms = percentile_ms(latencies, 50)
    figures.p99_c1_ms = percentile_ms(latencies, 99)
    figures.cpu_ms = 1000 * cpu / max(len(latencies), 1)
    latencies, statuses8, wall = load(get,
                                      concurrency=concurrency, seconds=seconds)
    figures.rps_c8 = len(latencies) / wall
    figures.p50_c8_ms = percentile_ms(latencies, 50)
    figures.p99_c8_ms = percentile_ms(latencies, 99)
    for status, n in (*statuses.items(), *statuses8.items()):
        figures.statuses[status] = figures.statuses.get(status, 0) + n
    figures.errors = sum(n for status, n in figures.statuses.items() if status != 200)
    return figures


def as_dicts(results: list[Figures]) -> list[dict]:
    return [asdict(r) for r in results]
