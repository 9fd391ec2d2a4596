"""Kernel-log faults the agents report (Xid, PCIe AER, KVM): an ``Incident`` with the
evidence and the jobs and tenants it hits; a fatal one cordons its GPU (or the host
when the GPU is unknown) and moves the jobs on it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from console.core.actions.hosts import do_cordon_gpu, do_cordon_host
from console.core.actions.workflow import do_begin_teardown
from console.core.choices import (
    ACTIVE_JOB_STATES,
    FaultKind,
    HostState,
    TeardownOutcome,
)
from console.core.models import Gpu, Host, Incident, Job
from hostagent.protocol import XidEvent
from hostagent.protocol.faults import HARDWARE_XIDS, LAUNCH_FAILED_XIDS

log = logging.getLogger(__name__)


def jobs_on_host(host: Host, gpu: Gpu | None) -> list[Job]:
    jobs = Job.objects.filter(state__in=ACTIVE_JOB_STATES, allocations__host=host)
    if gpu is not None:
        jobs = jobs.filter(allocations__gpu=gpu)
    return list(jobs.select_related("tenant").distinct())


def event_time(timestamp: str | None, *, now: datetime | None = None) -> datetime | None:
    """The wall-clock time of a kernel-log line's timestamp (``hostagent.xid``: ISO,
    ``dmesg --ctime``, syslog without a year), aware; None for dmesg's seconds since
    boot, no timestamp, or one that does not parse. Naive times are the console's
    time zone; a syslog time is in the current year (the previous one if that is
    in the future)."""
    text = (timestamp or "").strip()
    if not text:
        return None
    now = now or timezone.now()
    parsed = None
    try:
        parsed = datetime.fromisoformat(text.replace(",", ".").replace("Z", "+00:00"))
    except ValueError:
        words = " ".join(text.split())
        for value, fmt in ((words, "%a %b %d %H:%M:%S %Y"),
                           (f"{now.year} {words}", "%Y %b %d %H:%M:%S")):
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            break
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        if len(text) <= 15 and parsed > now + timedelta(days=1):
            parsed = parsed.replace(year=parsed.year - 1)  # a syslog line from last year
    return parsed


def do_handle_xid(host: Host, event: XidEvent) -> Incident | None:
    """Classify one kernel-log event and open an Incident. Hardware: cordon the GPU
    (unknown GPU: the host) and requeue its jobs. Application: fail only the jobs that
    held the named GPU when the line was logged (``running_at`` no later than the
    event's time, when it has one); a GPU we cannot resolve fails no job."""
    gpu = None
    if event.pci:
        # Xid lines name the device without its function ("PCI:0000:07:00");
        # the inventory stores "0000:07:00.0".
        pci = event.pci.lower()
        candidates = [pci] if pci.count(".") else [pci, f"{pci}.0"]
        gpu = Gpu.objects.filter(host=host, pci_address__in=candidates).first()
    raw = event.line.strip()
    if Incident.objects.filter(host=host, raw_lines=raw, xid=event.xid).exists():
        return None  # the same line reported again (agent retried a heartbeat)
    fatal = event.cordon or event.fault == FaultKind.HARDWARE or (event.xid in HARDWARE_XIDS)
    fault = event.fault if event.fault in FaultKind.values else FaultKind.UNKNOWN
    if fatal and fault == FaultKind.UNKNOWN:
        fault = FaultKind.HARDWARE
    if fatal:
        # Hardware: everyone on the GPU (or, unknown GPU, on the host) is moved off.
        jobs = jobs_on_host(host, gpu)
    elif gpu is None:
        # An application fault we cannot tie to a GPU: whose process it was is
        # unknown, so no job is failed; the incident keeps the evidence.
        jobs = []
    else:
        # Only a job that held the GPU when the line was logged can have caused it.
        # Syslog and ctime stamps stop at the second: a job that started within the
        # second the line names may have caused it.
        at = event_time(event.timestamp)
        jobs = [j for j in jobs_on_host(host, gpu) if j.running_at is not None
                and (at is None or j.running_at < at + timedelta(seconds=1))]
    where = f"{host.name} GPU{gpu.index} ({gpu.pci_address})" if gpu else host.name
    title = (f"Xid {event.xid} on {where}" if event.xid is not None
             else f"{event.kind.upper()} error on {where}")
    with transaction.atomic():
        incident = Incident.objects.create(
            host=host, gpu=gpu, title=title[:200], xid=event.xid, fault=fault,
            pci_address=(event.pci or "")[:16], raw_lines=raw,
            meaning=event.name or event.message,
            # English at rest, marked so the pages show it in the reader's language
            recommended_action=event.action or (
                gettext_noop("Drain the GPU, reset it or replace it.") if fatal
                else gettext_noop("Check the application; the GPU stays in service.")),
            runbook="cuda_launch_failed" if event.xid in LAUNCH_FAILED_XIDS else "",
            runbook_evidence={"kernel_log": [raw], "timestamp": event.timestamp,
                              "pid": event.pid, "process": event.process},
        )
        incident.jobs.set(jobs)
        incident.tenants.set({j.tenant for j in jobs})
        actor = f"agent:{host.name}"
        if fatal:
            if gpu is not None:
                if not gpu.cordoned:
                    do_cordon_gpu(gpu, actor=actor, reason=title)
            elif host.state == HostState.READY:
                do_cordon_host(host, actor=actor, reason=title)
            for job in jobs:
                do_begin_teardown(job.pk, TeardownOutcome.PREEMPTED, actor=actor,
                                  reason=f"hardware fault: {title}; requeued elsewhere")
        else:
            for job in jobs:
                do_begin_teardown(job.pk, TeardownOutcome.FAILED, actor=actor,
                                  reason=f"application fault: {title}",
                                  failure_reason=f"{title}: {event.name or event.message}")
    return incident
