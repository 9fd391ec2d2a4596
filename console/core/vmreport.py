"""What a job's VMs look like on their hosts, for the job page: the hypervisor,
the guest's last console lines (from the host's heartbeats) and the isolation
the host read back from the kernel when the VM came up (its member_up event)."""

from console.core.choices import EventKind
from console.core.models import Allocation, Event, Host, Job


def vm_report(job: Job) -> list[dict]:
    host_ids = set(Allocation.objects.filter(job=job).values_list("host_id", flat=True))
    ups = {}
    for event in Event.objects.filter(job=job, kind=EventKind.MEMBER_UP).order_by("created_at"):
        if event.host_id is not None:
            ups[event.host_id] = event  # the latest attempt's
    host_ids |= set(ups)
    out = []
    for host in Host.objects.filter(pk__in=host_ids).order_by("name"):
        facts = host.facts or {}
        reported = facts.get("reported_domains") or {}
        hyper = facts.get("hypervisor") or {}
        event = ups.get(host.pk)
        evidence = (event.data or {}).get("evidence") if event else None
        out.append({
            "host": host.name,
            "hypervisor": hyper.get("hypervisor", ""),
            "hypervisor_warnings": hyper.get("hypervisor_warnings") or [],
            "console": (reported.get("console") or {}).get(job.domain_name) or [],
            "evidence": evidence or None,
        })
    return out
