"""Faults: incidents → host → GPU → raw kernel lines → what the Xid means →
recommended action → affected jobs and tenants, the guided
CUDA_ERROR_LAUNCH_FAILED runbook (CHECKS.md §4), and resolve/release."""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from console.core.actions.faults import IncidentActionError, do_resolve_incident
from console.core.choices import FaultKind, IncidentState, JobState
from console.core.models import Allocation, CheckResult, GpuLink, Incident, Job, SavedFilter
from console.filtersets import IncidentFilterSet
from console.ui.access import get_incident_for_user, staff_required
from console.ui.faulttext import fault_text, xid_catalog
from console.ui.forms import ResolveIncidentForm
from console.ui.saved_filters import saved_filters_context
from hostagent.protocol.checks import BY_ID

KERNEL_NOISE = re.compile(r"kvm|AER|pcieport|Xid|NVRM", re.IGNORECASE)


def open_hardware_faults(gpu_ids) -> dict[int, Incident]:
    """GPU id → its oldest open hardware incident. A GPU that fell off the bus
    reads as faulted until the incident is resolved, whatever its last
    inventory said."""
    faults: dict[int, Incident] = {}
    for incident in (Incident.objects.filter(gpu_id__in=list(gpu_ids), state=IncidentState.OPEN,
                                             fault=FaultKind.HARDWARE)
                     .order_by("opened_at", "id")):
        faults.setdefault(incident.gpu_id, incident)
    return faults


def _affected_jobs(incident: Incident, jobs) -> list[dict]:
    """Each affected job with where it is now: a job moved off the faulty
    host (requeued, then placed elsewhere) is not "running" there."""
    jobs = list(jobs)
    now_on: dict[int, set[str]] = {}
    for job_id, host_name in (Allocation.objects.filter(job__in=jobs)
                              .values_list("job_id", "host__name")):
        now_on.setdefault(job_id, set()).add(host_name)
    rows = []
    for job in jobs:
        hosts = sorted(now_on.get(job.pk, ()))
        hardware = incident.fault == FaultKind.HARDWARE
        rows.append({"job": job, "now_on": hosts,
                     "moved": hardware and incident.host.name not in hosts,
                     "moving": hardware and incident.host.name in hosts
                     and job.state == JobState.TEARDOWN})
    return rows


@login_required
def incident_list(request):
    incidents = Incident.objects.for_user(request.user).select_related("host", "gpu")
    filterset = IncidentFilterSet(request.GET, queryset=incidents, request=request)
    return render(request, "faults/list.html", {
        "section": "faults", "filter": filterset, "incidents": filterset.qs[:200],
        **saved_filters_context(request, SavedFilter.List.FAULTS),
    })


def _runbook_steps(incident: Incident) -> list[dict]:
    """The CUDA_ERROR_LAUNCH_FAILED runbook, each step with recorded and live evidence."""
    evidence = incident.runbook_evidence or {}
    host, gpu = incident.host, incident.gpu
    # 1. Topology: the GPU's recorded links and health vs what the runbook observed.
    topology = {"recorded": [], "observed": evidence.get("topology"), "verdict": ""}
    if gpu is not None:
        label = gpu.label
        links = GpuLink.objects.filter(Q(a_gpu=gpu.index) | Q(b_gpu=gpu.index), host=host)
        topology["recorded"] = [
            {"peer": link.b if link.a_gpu == gpu.index else link.a, "kind": link.kind}
            for link in links
        ]
        peers = host.gpus.count() - 1 + host.nics.count()
        missing = peers - len(topology["recorded"])
        if gpu.health == "failed":
            topology["verdict"] = _("%(gpu)s is missing from the host's current inventory: "
                                    "hardware fault.") % {"gpu": label}
        elif missing > 0:
            topology["verdict"] = _("%(missing)s of %(peers)s links of %(gpu)s are missing "
                                    "from the recorded topology: check for a degraded link.") % {
                "missing": missing, "peers": peers, "gpu": label}
        else:
            topology["verdict"] = _("%(gpu)s is in the inventory with all %(peers)s links "
                                    "recorded.") % {"gpu": label, "peers": peers}
    # 2. Kernel log: KVM, AER and Xid lines around the failure.
    lines = [line for line in (incident.raw_lines or "").splitlines() if KERNEL_NOISE.search(line)]
    kernel = {"lines": lines, "lines_text": "\n".join(lines),
              "observed": evidence.get("kernel_log")}
    # 3. Memory: transparent hugepages.
    thp = CheckResult.objects.filter(host=host, check_id="memory.thp_madvise").first()
    memory = {"check": thp, "observed": evidence.get("memory") or evidence.get("thp"),
              "remediation": _(BY_ID["memory.thp_madvise"].remediation)}
    return [
        {"n": 1, "title": _("Topology"), "key": "topology",
         "what": _("Compare the GPU's current topology (nvidia-smi topo -m / NVML) with the "
                   "host's recorded inventory: a GPU missing or a link degraded is a hardware "
                   "fault."),
         "data": topology},
        {"n": 2, "title": _("Kernel log"), "key": "kernel",
         "what": _("Look for KVM and PCIe (AER) errors and NVRM: Xid lines for the job's GPUs "
                   "around the failure time."),
         "data": kernel},
        {"n": 3, "title": _("Memory"), "key": "memory",
         "what": _("Check transparent hugepages; set /sys/kernel/mm/transparent_hugepage/enabled "
                   "to madvise if it is not."),
         "data": memory},
    ]


@login_required
def incident_detail(request, pk):
    incident = get_incident_for_user(request.user, pk)
    catalog = xid_catalog().get(incident.xid) if incident.xid is not None else None
    text = fault_text(incident.xid, incident.meaning, incident.recommended_action)
    jobs = Job.objects.for_user(request.user).filter(incidents=incident).select_related("tenant")
    tenants = incident.tenants.all()
    if not request.user.is_staff:
        tenants = tenants.filter(memberships__user=request.user).distinct()
    return render(request, "faults/detail.html", {
        "section": "faults",
        "incident": incident,
        "catalog": catalog,
        "text": text,
        "jobs": _affected_jobs(incident, jobs),
        "tenants": tenants,
        "gpu_fault": open_hardware_faults([incident.gpu_id]).get(incident.gpu_id)
        if incident.gpu_id else None,
        "runbook": _runbook_steps(incident) if incident.runbook == "cuda_launch_failed" else None,
        "other_evidence": sorted((incident.runbook_evidence or {}).items())
        if incident.runbook and incident.runbook != "cuda_launch_failed" else [],
        "form": ResolveIncidentForm() if incident.state == IncidentState.OPEN else None,
    })


@staff_required
def incident_resolve(request, pk):
    incident = get_incident_for_user(request.user, pk)
    if incident.state != IncidentState.OPEN:
        messages.info(request, _("Incident #%(n)s is already resolved.") % {"n": incident.pk})
        return redirect("incident-detail", pk=incident.pk)
    # A hardware fault's GPU goes back to service only when the operator says
    # so (repaired, replaced): not pre-ticked.
    form = ResolveIncidentForm(request.POST if request.method == "POST" else None,
                               initial={"release_gpu": incident.fault != FaultKind.HARDWARE})
    if request.method == "POST" and form.is_valid():
        try:
            do_resolve_incident(
                incident, request.user, form.cleaned_data["resolution"],
                release_gpu=form.cleaned_data["release_gpu"],
                uncordon_host=form.cleaned_data["uncordon_host"],
            )
        except IncidentActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Incident #%(n)s resolved; recorded in the audit log.")
                             % {"n": incident.pk})
            return redirect("incident-detail", pk=incident.pk)
    return render(request, "faults/resolve.html", {"section": "faults", "incident": incident,
                                                    "form": form})
