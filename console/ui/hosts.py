"""Hosts: list with state, health and GPU use; detail with GPUs, NUMA nodes and
running jobs; cordon, drain and uncordon behind a confirmation (admins)."""

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from console.core.actions.hosts import (
    HostActionError,
    do_cordon_host,
    do_drain_host,
    do_uncordon_host,
)
from console.core.choices import ACTIVE_JOB_STATES, HOST_STATE_COLOURS, CheckStatus, GpuHealth
from console.core.models import Allocation, CoreClaim, Host, Job, SavedFilter
from console.core.selectors.hosts import host_facts_for
from console.core.usage import Figures, capacity
from console.filtersets import HostFilterSet
from console.ui.access import get_host, staff_required
from console.ui.faults import open_hardware_faults
from console.ui.forms import ConfirmForm
from console.ui.saved_filters import saved_filters_context
from coupler_common.cpulist import format_cpulist


def host_rows(hosts):
    """Hosts annotated with what the list and the cluster view show."""
    hosts = hosts.select_related("cluster").annotate(
        gpu_total=Count("gpus", distinct=True),
        gpu_failed=Count("gpus", filter=Q(gpus__health=GpuHealth.FAILED), distinct=True),
        gpu_degraded=Count("gpus", filter=Q(gpus__health=GpuHealth.DEGRADED), distinct=True),
        gpu_cordoned=Count("gpus", filter=Q(gpus__cordoned=True), distinct=True),
    ).prefetch_related("gpus")
    failing = Counter(
        Host.objects.filter(check_results__status=CheckStatus.FAIL).values_list("pk", flat=True)
    )
    figures = capacity().gpus_by_host
    rows = []
    for host in hosts:
        gpus = list(host.gpus.all())
        rows.append({
            "host": host,
            "colour": HOST_STATE_COLOURS.get(host.state, "grey"),
            "gpus": gpus,
            "models": sorted({g.model for g in gpus}),
            "figures": figures.get(host.pk, Figures("gpus", scale=1000)),
            "failing_checks": failing.get(host.pk, 0),
        })
    return rows


@login_required
def host_list(request):
    filterset = HostFilterSet(request.GET, queryset=Host.objects.all(), request=request)
    return render(request, "hosts/list.html", {
        "section": "hosts", "filter": filterset, "rows": host_rows(filterset.qs),
        **saved_filters_context(request, SavedFilter.List.HOSTS),
    })


@login_required
def host_detail(request, name):
    host = get_host(name)
    visible_jobs = Job.objects.for_user(request.user)
    holders = {}
    for alloc in Allocation.objects.filter(
        host=host, gpu__isnull=False, job__state__in=ACTIVE_JOB_STATES
    ).select_related("job"):
        holders.setdefault(alloc.gpu_id, []).append(alloc.job)
    visible_ids = set(visible_jobs.filter(allocations__host=host).values_list("pk", flat=True))
    host_gpus = list(host.gpus.all())
    faults = open_hardware_faults(g.pk for g in host_gpus)
    gpus = [
        {"gpu": g, "jobs": holders.get(g.pk, []), "affinity": format_cpulist(g.cpu_affinity or []),
         "fault": faults.get(g.pk)}
        for g in host_gpus
    ]
    claimed = set(CoreClaim.objects.filter(host=host).values_list("core", flat=True))
    reserved = set(host.reserved_cores or [])
    numa = [
        {
            "node": n,
            "cpus": format_cpulist(n.cpus),
            "total": len(n.cpus),
            "claimed": len(claimed & set(n.cpus)),
            "reserved": len(reserved & set(n.cpus)),
            "gpus": [g.index for g in host.gpus.all() if g.numa_node == n.node_id],
        }
        for n in host.numa_nodes.all()
    ]
    jobs = (
        Job.objects.filter(allocations__host=host, state__in=ACTIVE_JOB_STATES)
        .select_related("tenant").distinct()
    )
    return render(request, "hosts/detail.html", {
        "section": "hosts",
        "host": host,
        "facts": host_facts_for(host, request.user),
        # Why a host runs QEMU/TCG (hardware facts: members see them too).
        "hypervisor_warnings": ((host.facts or {}).get("hypervisor") or {}).get(
            "hypervisor_warnings") or [],
        "colour": HOST_STATE_COLOURS.get(host.state, "grey"),
        "gpus": gpus,
        "visible_ids": visible_ids,
        "numa": numa,
        "jobs": jobs,
        "hidden_jobs": sum(1 for j in jobs if j.pk not in visible_ids),
        "events": host.events.order_by("-created_at", "-id")[:30] if request.user.is_staff else [],
        "failing_checks": host.check_results.filter(status=CheckStatus.FAIL).count(),
        "figures": capacity().gpus_by_host.get(host.pk, Figures("gpus", scale=1000)),
    })


HOST_ACTIONS = {
    "cordon": {
        "do": do_cordon_host,
        "title": gettext_lazy("Cordon"),
        "explain": gettext_lazy("No new job lands on the host. Jobs running there keep running."),
    },
    "drain": {
        "do": do_drain_host,
        "title": gettext_lazy("Drain"),
        "explain": gettext_lazy("Cordon the host and move every job off it: each is torn down and "
        "requeued, to be placed on another host. Running work not saved is lost."),
    },
    "uncordon": {
        "do": do_uncordon_host,
        "title": gettext_lazy("Uncordon"),
        "explain": gettext_lazy("The host takes new work again."),
    },
}


@staff_required
def host_action(request, name, action):
    if action not in HOST_ACTIONS:
        raise Http404(_("No such host action."))
    spec = HOST_ACTIONS[action]
    host = get_host(name)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        actor = request.user.get_username()
        reason = form.cleaned_data["reason"] or f"{action} by {actor}"
        try:
            spec["do"](host, actor=actor, reason=reason)
        except HostActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("%(action)s: %(host)s — recorded in the audit log.")
                             % {"action": spec["title"], "host": host.name})
        return redirect("host-detail", name=host.name)
    jobs = Job.objects.filter(allocations__host=host, state__in=ACTIVE_JOB_STATES).distinct()
    return render(request, "hosts/action.html", {
        "section": "hosts", "host": host, "action": action, "spec": spec, "form": form,
        "jobs": jobs.select_related("tenant"),
    })


@staff_required
@require_POST
def host_bulk_action(request):
    """Cordon or drain the selected hosts: a confirmation listing, per host, the
    jobs a drain moves, then one audited action per host."""
    action = request.POST.get("action", "")
    if action not in ("cordon", "drain"):
        raise Http404(_("No such host action."))
    spec = HOST_ACTIONS[action]
    names = sorted({n for n in request.POST.getlist("host") if "\x00" not in n})[:500]
    hosts = list(Host.objects.filter(name__in=names).order_by("name"))
    if not hosts:
        messages.info(request, _("Select at least one host."))
        return redirect("host-list")
    form = ConfirmForm(request.POST if request.POST.get("confirm") else None)
    if request.POST.get("confirm") and form.is_valid():
        actor = request.user.get_username()
        reason = form.cleaned_data["reason"] or f"{action} by {actor} (bulk)"
        done = []
        for host in hosts:
            try:
                spec["do"](host, actor=actor, reason=reason)
            except HostActionError as error:
                messages.error(request, f"{host.name}: {error}")
            else:
                done.append(host.name)
        if done:
            messages.success(request, _("%(action)s: %(hosts)s — recorded in the audit log.")
                             % {"action": spec["title"], "hosts": ", ".join(done)})
        return redirect("host-list")
    jobs = (Job.objects.filter(allocations__host__in=hosts, state__in=ACTIVE_JOB_STATES)
            .select_related("tenant").distinct())
    by_host = {h.pk: [] for h in hosts}
    for job in jobs:
        for host_id in set(job.allocations.values_list("host_id", flat=True)):
            if host_id in by_host:
                by_host[host_id].append(job)
    rows = [{"host": h, "jobs": by_host[h.pk]} for h in hosts]
    return render(request, "hosts/bulk_action.html", {
        "section": "hosts", "action": action, "spec": spec, "rows": rows, "form": form,
        "job_count": sum(len(r["jobs"]) for r in rows),
    })
