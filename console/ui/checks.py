"""Checklists: every item of CHECKS.md sections 1 (pre-deployment) and 2
(tuning), per host and fleet-wide, from CheckResult rows. An item with no row
is "not yet measured", never a pass."""

from dataclasses import dataclass

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from console.core.actions.agents import do_request_host_checks
from console.core.choices import CheckStatus, Risk
from console.core.models import CheckResult, Host
from console.ui.access import get_host, staff_required


@dataclass(frozen=True)
class CheckItem:
    id: str
    section: str
    standard: str
    risk: str
    evidence: str


PREDEPLOY = gettext_noop("1. Pre-deployment checklist")
TUNING = gettext_noop("2. Tuning matrix")

# CHECKS.md sections 1 and 2, in their order.
CATALOG = (
    CheckItem("bios.smt_disabled", PREDEPLOY, gettext_noop("Hyper-threading off in BIOS"), Risk.HIGH,
              "/sys/devices/system/cpu/smt/active = 0, or smt/control ∈ {off, forceoff, notsupported}"),
    CheckItem("firmware.baseline", PREDEPLOY,
              gettext_noop("Mainboard/BMC/GPU firmware at the admin's baseline for that host model"), Risk.MEDIUM,
              "DMI bios_version/board_name, NVML VBIOS and driver version vs the baseline"),
    CheckItem("network.hop_latency", PREDEPLOY,
              gettext_noop("Single-hop latency < 5 µs between hosts of a cluster"), Risk.CRITICAL,
              "Measured between host agents (RDMA when present, else TCP round trip)"),
    CheckItem("kvm.available", PREDEPLOY, gettext_noop("KVM usable"), Risk.CRITICAL,
              "/dev/kvm exists; kvm_intel or kvm_amd loaded"),
    CheckItem("iommu.enabled", PREDEPLOY, gettext_noop("IOMMU on (needed for passthrough)"), Risk.CRITICAL,
              "/sys/class/iommu/* present; intel_iommu=on / amd_iommu / iommu=pt in /proc/cmdline"),
    CheckItem("iommu.gpu_isolated", PREDEPLOY,
              gettext_noop("Each GPU in an IOMMU group with no foreign device"), Risk.HIGH,
              "/sys/kernel/iommu_groups/*/devices/"),
    CheckItem("pcie.acs", PREDEPLOY, gettext_noop("ACS enabled on the bridges above the GPUs"), Risk.MEDIUM,
              "ACS extended capability in the bridges' config space (ACSCtl)"),
    CheckItem("vfio.bound", PREDEPLOY, gettext_noop("GPUs meant for passthrough bound to vfio-pci"), Risk.HIGH,
              "/sys/bus/pci/devices/<bdf>/driver"),
    CheckItem("gpu.persistence_ecc", PREDEPLOY,
              gettext_noop("Persistence mode on, ECC on, no pending page retirement / row remap"), Risk.MEDIUM,
              "NVML"),
    CheckItem("memory.hugepages_1g", TUNING, gettext_noop("1 GiB hugepages reserved for VMs"), Risk.HIGH,
              "nr_hugepages of hugepages-1048576kB (per NUMA node); default_hugepagesz=1G"),
    CheckItem("sched.batch", TUNING, gettext_noop("Training vCPU threads run with SCHED_BATCH"), Risk.MEDIUM,
              "Scheduling policy of the domains' vCPU threads"),
    CheckItem("storage.raw_xfs", TUNING,
              gettext_noop("VM data disks on raw block devices, host data volumes on XFS"), Risk.MEDIUM,
              "/proc/mounts; domain disk type='block'"),
    CheckItem("memory.thp_madvise", TUNING, gettext_noop("Transparent hugepages = madvise"), Risk.MEDIUM,
              "/sys/kernel/mm/transparent_hugepage/enabled shows [madvise]"),
    CheckItem("numa.balancing_off", TUNING, gettext_noop("Automatic NUMA balancing off on pinned hosts"),
              Risk.LOW, "/proc/sys/kernel/numa_balancing = 0"),
    CheckItem("net.rps_flow_entries", TUNING, gettext_noop("rps_sock_flow_entries set (e.g. 32768)"), Risk.LOW,
              "/proc/sys/net/core/rps_sock_flow_entries"),
    CheckItem("rdma.roce_pfc", TUNING, gettext_noop("RoCE NICs: PFC on the RDMA traffic class"), Risk.HIGH,
              "dcb pfc show dev <if>"),
    CheckItem("rdma.roce_dcqcn", TUNING, gettext_noop("RoCE NICs: DCQCN (ECN notification + reaction) on"),
              Risk.HIGH, "mlx5 ecn/roce_np and roce_rp enable per priority"),
    CheckItem("storage.userspace_nvme", TUNING,
              gettext_noop("NVMe for high-IOPS scratch available to a userspace (SPDK) stack when enabled"),
              Risk.LOW, "NVMe devices bound to vfio-pci/uio"),
)
RISK_ORDER = {Risk.CRITICAL: 0, Risk.HIGH: 1, Risk.MEDIUM: 2, Risk.LOW: 3}
STATUS_COLOURS = {CheckStatus.PASS: "green", CheckStatus.FAIL: "red", CheckStatus.UNKNOWN: "grey"}
NOT_MEASURED = "not_measured"


def _filters(request) -> dict:
    risk = request.GET.get("risk", "")
    return {
        "failing": request.GET.get("failing") == "1",
        "risk": risk if risk in Risk.values else "",
    }


def _keep(item: CheckItem, statuses: list[str], filters: dict) -> bool:
    if filters["risk"] and item.risk != filters["risk"]:
        return False
    return not (filters["failing"] and CheckStatus.FAIL not in statuses)


def _row(item: CheckItem, result: CheckResult | None) -> dict:
    status = result.status if result else NOT_MEASURED
    return {
        "item": item,
        "result": result,
        "status": status,
        "status_label": result.get_status_display() if result else "not yet measured",
        "colour": STATUS_COLOURS.get(status, "grey") if result else "grey",
        "risk": result.risk if result else item.risk,
        "evidence": sorted((result.evidence or {}).items()) if result else [],
    }


@staff_required
def host_checks(request, name):
    host = get_host(name)
    filters = _filters(request)
    results = {r.check_id: r for r in host.check_results.all()}
    rows = []
    for item in CATALOG:
        row = _row(item, results.get(item.id))
        if _keep(item, [row["status"]], filters):
            rows.append(row)
    extra = [r for cid, r in results.items() if cid not in {i.id for i in CATALOG}]
    summary = {s: sum(1 for i in CATALOG if (results.get(i.id) and results[i.id].status == s))
               for s in CheckStatus.values}
    summary[NOT_MEASURED] = sum(1 for i in CATALOG if i.id not in results)
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
    for item in CATALOG:
        results = by_check.get(item.id, {})
        statuses = [r.status for r in results.values()]
        if not _keep(item, statuses, filters):
            continue
        failing = sorted((r for r in results.values() if r.status == CheckStatus.FAIL),
                         key=lambda r: r.host.name)
        items.append({
            "item": item,
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
