"""Query budgets of the read pages: each page runs a fixed number of queries,
whatever the number of jobs, events and tenants behind it.

History comes from ``seed_history`` (the benchmark's seeder, here on the test
database): a page is read with a little history, then with ten times more,
and must run the same queries both times, within its budget.
"""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console import metrics
from console.core.history.seed import seed_history
from console.core.models import Job
from console.ui import metrics as dashboard_metrics

pytestmark = pytest.mark.django_db

# page → (path, who reads it, most queries allowed: PostgreSQL's count, SQLite runs
# the same or fewer; a session sign-in, the user's preferences and the VM panel included)
BUDGETS = {
    "api job list, member": ("/api/v1/jobs/", "member", 5),
    "api job list, admin": ("/api/v1/jobs/", "admin", 4),
    "api job list, member, filtered": ("/api/v1/jobs/?state=succeeded&state=failed",
                                       "member", 5),
    # + the user's saved filters of the list
    "console job list, member": ("/jobs/", "member", 8),
    "console job list, admin": ("/jobs/", "admin", 7),
    "api job detail": ("/api/v1/jobs/{job}/", "member", 7),
    "console job detail": ("/jobs/{job}/", "member", 11),  # + the VM panel (image, host facts)
    # The dashboard's cluster figures and /metrics' text are shared for a few
    # seconds: read from the cache ("warm") and recomputed ("cold").
    "dashboard, admin": ("/", "admin", 4),
    "dashboard, member": ("/", "member", 6),
    "dashboard, admin, cold": ("/", "admin", 15),
    "dashboard, member, cold": ("/", "member", 17),
    "/metrics": ("/metrics", None, 0),
    "/metrics, cold": ("/metrics", None, 11),
}


def _queries(client, path, cold: bool) -> int:
    client.get(path)  # caches filled, as a server that has served the page before
    if cold:  # … and whose short-lived figures have just expired
        cache.delete_many([dashboard_metrics.DASHBOARD_CACHE_KEY, metrics.METRICS_CACHE_KEY])
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return len(captured.captured_queries)


def _read_all(clients, tenant) -> dict[str, int]:
    job = Job.objects.filter(tenant=tenant, state="succeeded").order_by("-id").first()
    return {
        page: _queries(clients[who], path.format(job=job.pk), page.endswith(", cold"))
        for page, (path, who, _budget) in BUDGETS.items()
    }


def _signed_in(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_read_pages_keep_their_query_budget_as_history_grows(
        cluster, tenant_a, member_a, admin_user, settings):
    settings.COUPLER_METRICS_TOKEN = ""
    settings.COUPLER_METRICS_PUBLIC = True  # a scrape's own cost, not the sign-in's
    clients = {"member": _signed_in(member_a), "admin": _signed_in(admin_user),
               None: _signed_in(None)}
    seed_history(jobs=40, new_tenants=3, seed=1)
    small = _read_all(clients, tenant_a)
    seed_history(jobs=400, new_tenants=20, seed=2)
    large = _read_all(clients, tenant_a)
    assert Job.objects.count() >= 440
    for page, (_path, _who, budget) in BUDGETS.items():
        assert large[page] == small[page], f"{page}: {small[page]} → {large[page]} queries"
        assert large[page] <= budget, f"{page}: {large[page]} queries, budget {budget}"
