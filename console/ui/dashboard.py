"""The dashboard: capacity per GPU model, utilization, fragmentation, queue,
fair shares and recent incidents."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from console.core.models import Incident, Job, Tenant
from console.core.usage import capacity
from console.ui import metrics


@login_required
def dashboard(request):
    user = request.user
    tenants = Tenant.objects.for_user(user)
    fragmentation = metrics.fragmentation_rate()
    figures = capacity()
    context = {
        "section": "dashboard",
        "capacity": figures,
        "fragmentation": fragmentation,
        "fragmentation_pct": 100 * (fragmentation or 0),
        "queue_length": metrics.queue_length(),
        "my_queue": Job.objects.for_user(user).filter(state__in=["queued", "preempted"]).count(),
        "shares": metrics.tenant_shares(tenants, figures),
        "incidents": Incident.objects.for_user(user).select_related("host", "gpu")[:8],
    }
    return render(request, "dashboard.html", context)
