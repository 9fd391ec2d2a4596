"""Checklists: every item of CHECKS.md sections 1 (pre-deployment) and 2
(tuning), per host and fleet-wide, from CheckResult rows. An item with no row
is "not yet measured", never a pass."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from console.core.actions.agent_checks import do_request_host_checks
from console.core.choices import CheckStatus, Risk
from console.core.models import CheckResult, Host
from console.ui.access import get_host, staff_required
from hostagent.protocol.checks import CATALOGUE, CheckSpec

# What each check is (id, section, risk, title, remediation): the agent's
# catalogue, the one list both sides read; titles and remediations are
# translated here by check id, whatever language the agent reported in
# (hostagent.protocol.checks).
RISK_ORDER = {Risk.CRITICAL: 0, Risk.HIGH: 1, Risk.MEDIUM: 2, Risk.LOW: 3}
STATUS_COLOURS = {CheckStatus.PASS: "green", CheckStatus.FAIL: "red", CheckStatus.UNKNOWN: "grey"}
NOT_MEASURED = "not_measured"


def _filters(request) -> dict:
    risk = request.GET.get("risk", "")
    return {
        "failing": request.GET.get("failing") == "1",
        "risk": risk if risk in Risk.values else "",
    }


def _keep(item: CheckSpec, statuses: list[str], filters: dict) -> bool:
    if filters["risk"] and item.risk != filters["risk"]:
        return False
    return not (filters["failing"] and CheckStatus.FAIL not in statuses)


def _row(item: CheckSpec, result: CheckResult | None) -> dict:
    status = result.status if result else NOT_MEASURED
    return {
        "item": item,
        "result": result,
        "status": status,
        "status_label": result.get_status_display() if result else _("not yet measured"),
        "colour": STATUS_COLOURS.get(status, "grey") if result else "grey",
        "risk": item.risk,
        "risk_label": Risk(item.risk).label,
        "evidence": sorted((result.evidence or {}).items()) if result else [],
        # The catalogue's remediation in the reader's language, where there is
        # something to remedy (the agent sends it for every result but a pass).
        "remediation": _(item.remediation) if result and status != CheckStatus.PASS else "",
    }


@staff_required
def host_checks(request, name):
    host = get_host(name)
    filters = _filters(request)
    results = {r.check_id: r for r in host.check_results.all()}
    rows = []
    for item in CATALOGUE:
        row = _row(item, results.get(item.id))
        if _keep(item, [row["status"]], filters):
            rows.append(row)
    extra = [r for cid, r in results.items() if cid not in {i.id for i in CATALOGUE}]
    summary = {s: sum(1 for i in CATALOGUE if (results.get(i.id) and results[i.id].status == s))
               for s in CheckStatus.values}
    summary[NOT_MEASURED] = sum(1 for i in CATALOGUE if i.id not in results)
    return render(request, "checks/host.html", {
        "section": "checks", "host": host, "rows": rows, "filters": filters,
        "risks": Risk.choices, "extra": extra, "summary": summary,
        "can_rerun": _task() is not None,
    })


@staff_required
def fleet_checks(request):
    filters = _filters(request)
    hosts = list(Host.objects.order_by("name"))
    by_check: dict[str, dict[int, CheckResult]] = {}
    for r in CheckResult.objects.select_related("host"):
        by_check.setdefault(r.check_id, {})[r.host_id] = r
    items = []
    for item in CATALOGUE:
        results = by_check.get(item.id, {})
        statuses = [r.status for r in results.values()]
        if not _keep(item, statuses, filters):
            continue
        failing = sorted((r for r in results.values() if r.status == CheckStatus.FAIL),
                         key=lambda r: r.host.name)
        items.append({
            "item": item,
            "risk_label": Risk(item.risk).label,
            "pass": statuses.count(CheckStatus.PASS),
            "fail": len(failing),
            "unknown": statuses.count(CheckStatus.UNKNOWN),
            "not_measured": len(hosts) - len(results),
            "failing": [_row(item, r) for r in failing],
        })
    return render(request, "checks/fleet.html", {
        "section": "checks", "items": items, "filters": filters, "risks": Risk.choices,
        "host_count": len(hosts),
    })


def _task():
    """The workflow's host-check task, when that module exists."""
    try:
        from console.core.tasks.hosts import run_host_checks
    except ImportError:
        return None
    return run_host_checks


@staff_required
@require_POST
def rerun_host_checks(request, name):
    host = get_host(name)
    task = _task()
    if task is None:
        messages.error(request, _("Re-running checks is not available: the host-check task "
                                 "(console.core.tasks.hosts.run_host_checks) is not installed."))
    else:
        actor = request.user.get_username()
        do_request_host_checks(host, actor=actor)
        transaction.on_commit(lambda: task.delay(host.pk, actor=actor))
        messages.success(request, _("Checks of %(host)s queued: results appear here when the "
                                   "host agent reports them.") % {"host": host.name})
    return redirect("checks-host", name=host.name)
