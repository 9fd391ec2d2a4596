"""The dashboard: capacity per GPU model, utilization, fragmentation, queue,
fair shares and recent incidents.

The cluster-wide figures come from ``metrics.dashboard_figures`` (shared by all
readers for at most ``metrics.DASHBOARD_CACHE_S`` seconds; the page says when
they were computed); the fair-share table shows the ``TOP_TENANTS`` tenants
with the largest dominant share and links to the full list."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from console.core.models import Incident, Job
from console.core.selectors.jobs import WAITING_STATES, visible_tenant_ids
from console.ui import metrics

TOP_TENANTS = 10


@login_required
def dashboard(request):
    user = request.user
    figures = metrics.dashboard_figures()
    visible = visible_tenant_ids(user)
    if visible is None:
        shares = figures.shares
    else:
        mine = set(visible)
        shares = [s for s in figures.shares if s.tenant.pk in mine]
    fragmentation = figures.fragmentation
    context = {
        "section": "dashboard",
        "capacity": figures.capacity,
        "fragmentation": fragmentation,
        "fragmentation_pct": 100 * (fragmentation or 0),
        "queue_length": figures.queue_length,
        "my_queue": (None if user.is_staff else
                     Job.objects.filter(tenant_id__in=visible, state__in=WAITING_STATES).count()),
        "shares": shares[:TOP_TENANTS],
        "shares_total": len(shares),
        "figures_at": figures.at,
        "figures_ttl": metrics.DASHBOARD_CACHE_S,
        "incidents": Incident.objects.for_user(user).select_related("host", "gpu")[:8],
    }
    return render(request, "dashboard.html", context)
