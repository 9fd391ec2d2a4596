"""Provisioning and teardown of placed jobs: the workflow's state changes.

The database is the source of truth. A job's members (one per host of its
allocations) report through ``host_result`` messages; each report is recorded
as an ``Event`` (``member_up`` / ``member_down``) and the job advances when
every member has reported for the current generation (``Job.generation``, which,
unlike ``Job.attempts``, never restarts). Reports from an earlier generation, or for a job that has moved on, change nothing, so a
message delivered twice has no second effect.

- PROVISIONING → RUNNING when every member is up (a gang starts all at once);
- any member failing → TEARDOWN of every member, then QUEUED with a backoff
  (``TeardownOutcome.RETRY``) or FAILED when the attempts are spent;
- TEARDOWN → the job's ``teardown_outcome`` once every member is down, in the
  same transaction as the release of its allocations.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.core import enqueue
from console.core.choices import (
    EventKind,
    HostState,
    JobState,
    MemberStatus,
    PendingCode,
    TeardownOutcome,
)
from console.core.models import (
    Allocation,
    Event,
    Host,
    Image,
    Job,
    JobMember,
    NicVfClaim,
    NumaNode,
)
from console.core.planning import release_allocations
from console.core.snapshot import memory_by_numa
from console.core.transitions import transition_job, transition_jobs
from hostagent.protocol import CgroupSettings, GpuShare, NumaCell, ProvisionSpec

log = logging.getLogger(__name__)
security_log = logging.getLogger("coupler.security")

ACTOR = "workflow"


def max_attempts() -> int:
    return int(getattr(settings, "COUPLER_PROVISION_MAX_ATTEMPTS", 3))


def retry_backoff(attempts: int) -> timedelta:
    base = float(getattr(settings, "COUPLER_RETRY_BACKOFF_S", 5))
    return timedelta(seconds=base * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class MemberCommand:
    """One host's share of a job: where to send it and what to send."""

    host: str
    job_id: int
    generation: int
    spec: dict | None = None  # provision only
    domain: str = ""


# --- building the provision spec -------------------------------------------------------


def provision_spec(job: Job, host: Host) -> ProvisionSpec:
    """The fully specified VM of ``job`` on ``host``, from its allocation rows."""
    rows = list(Allocation.objects.filter(job=job, host=host).select_related("gpu").order_by())
    return spec_from_rows(job, host, rows, list(NumaNode.objects.filter(host=host)))


def spec_from_rows(job: Job, host: Host, rows: list[Allocation], host_nodes: list[NumaNode],
                   images: list | None = None,
                   nic_vfs: tuple[str, ...] | None = None) -> ProvisionSpec:
    """``provision_spec`` from rows already read (``gpu`` selected): the job's
    allocation rows on ``host`` and that host's NUMA nodes; ``images`` and
    ``nic_vfs`` (the PCI addresses of the VFs the job holds there) when a batch has
    read them already."""
    base = next((r for r in rows if r.gpu_id is None), None)
    if base is None:
        raise ValueError(f"job {job.pk} holds no cores on {host.name}")
    nodes = list(base.numa_nodes) or [0]
    # Whole GPUs are passed through by PCI address; a time-sliced share gets a
    # mediated device (vGPU) on its GPU, named by a UUID stable for this job
    # and GPU so a redelivered command finds the same device.
    gpus = sorted(r.gpu.pci_address for r in rows if r.gpu_id is not None and r.milli >= 1000)
    shares = tuple(
        GpuShare(
            pci=r.gpu.pci_address,
            milli=r.milli,
            mdev_uuid=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                     f"coupler:job:{job.pk}:{host.name}:{r.gpu.pci_address}")),
        )
        for r in sorted(rows, key=lambda r: r.gpu.pci_address if r.gpu_id else "")
        if r.gpu_id is not None and r.milli < 1000
    )
    # 1 GiB hugepages back the VM only when its nodes hold enough of them for its
    # whole memory (not merely some): the agent's pre-flight refuses a VM it cannot
    # back, and a host whose agent found no 1 GiB hugetlbfs mount backs none.
    pages = {n.node_id: n.hugepages_1g for n in host_nodes}
    hugepages = (
        all(pages.get(n, 0) > 0 for n in nodes)
        and sum(pages.get(n, 0) for n in nodes) >= base.memory_gib
        and host.hugetlbfs_1g is not False
    )
    cells = numa_cells(base, host_nodes)
    if nic_vfs is None:
        nic_vfs = tuple(sorted(base.nic_vf_claims.values_list("vf__pci_address", flat=True)))
    gib = 1024**3
    return ProvisionSpec(
        image=_boot_image(job, host, images),
        job_id=str(job.pk),
        name=job.domain_name,
        vcpus=len(base.cpus),
        memory_mib=base.memory_gib * 1024,
        # vCPU i is pinned to cpus[i]: cell by cell, so each guest cell's vCPUs are
        # consecutive and sit on that cell's host node.
        cpus=tuple(c for cell in cells for c in cell.cpus) or tuple(base.cpus),
        numa_cells=cells,
        nic_vfs=nic_vfs,
        # A GPU's node that got neither cores nor memory (a job smaller than its GPU
        # count) binds nothing: the memory is where the cells are.
        numa_nodes=tuple(sorted(c.host_node for c in cells) or sorted(nodes)),
        gpus=tuple(gpus),
        gpu_shares=shares,
        hugepages=hugepages,
        require_kvm=job.require_kvm,  # the agent's pre-flight refuses a host without KVM
        # The VM's memory comes from hugepages; the cgroup bounds the QEMU process's
        # own overhead above it: throttle at +1 GiB, kill at +2 GiB.
        cgroup=CgroupSettings(
            cpu_weight=100,
            memory_high=(base.memory_gib + 1) * gib,
            memory_max=(base.memory_gib + 2) * gib,
        ),
    )


def _boot_image(job: Job, host: Host, images: list | None = None):
    """The job's image (by name, else the cluster's default) as the agent's
    ImageSpec; None when the catalogue has none (simulated hosts). ``images``:
    the catalogue already read (any clusters), so a batch costs one query."""
    if images is None:
        images = list(Image.objects.filter(cluster_id=host.cluster_id))
    for image in images:
        if image.cluster_id != host.cluster_id:
            continue
        if (image.name == job.image) if job.image else image.is_default:
            return image.to_spec()
    return None


def numa_cells(base: Allocation, host_nodes: list[NumaNode]) -> tuple[NumaCell, ...]:
    """The guest NUMA topology of one allocation: a cell per host node it holds, with the
    cores pinned there and the memory stored for it at commit (``memory_by_numa``), so
    the guest sees the locality the planner chose. Empty for an allocation whose cores
    or memory cannot be told apart by node (rows from before ``memory_by_numa``)."""
    node_of = {c: n.node_id for n in host_nodes for c in n.cpus}
    memory = memory_by_numa(base.memory_gib, base.numa_nodes, base.memory_by_numa)
    if not base.memory_by_numa or any(c not in node_of for c in base.cpus):
        return ()
    cells = []
    for node in sorted(base.numa_nodes):
        cpus = tuple(c for c in base.cpus if node_of[c] == node)
        gib = memory.get(node, 0)
        if cpus or gib:
            cells.append(NumaCell(host_node=node, cpus=cpus, memory_mib=gib * 1024))
    return tuple(cells)


def _job_hosts(job_id: int) -> list[Host]:
    # One query; no default ordering (it would join the GPU table into the DISTINCT).
    host_ids = Allocation.objects.filter(job_id=job_id).order_by().values("host_id")
    return list(Host.objects.filter(pk__in=host_ids).order_by("name"))


def _mark_member(job: Job, host: Host, status: str, generation: int) -> None:
    """Record a host's answer on its member row (created if the placement wrote none:
    the caller has checked that the host holds part of the job)."""
    if not JobMember.objects.filter(job=job, host=host).update(status=status,
                                                               generation=generation):
        JobMember.objects.create(job=job, host=host, status=status, generation=generation)


# --- provisioning ---------------------------------------------------------------------


def do_start_provisioning(job_id: int) -> list[MemberCommand]:
    """SCHEDULED → PROVISIONING (a new attempt) and the commands for every member.

    On a job already PROVISIONING (a redelivered task, or the reconciler's
    retry of a stuck step) the commands for the members not yet up are returned
    again; hosts take them idempotently. Any other state: nothing to do.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return []
        if job.state == JobState.SCHEDULED:
            transition_job(
                job_id,
                JobState.PROVISIONING,
                from_states=[JobState.SCHEDULED],
                reason=f"provisioning, attempt {job.attempts + 1}",
                actor=ACTOR,
                attempts=job.attempts + 1,
                generation=job.generation + 1,
            )
            job.refresh_from_db()
        elif job.state != JobState.PROVISIONING:
            return []
        up = job.member_hosts(MemberStatus.UP)
        commands = []
        for host in _job_hosts(job_id):
            if host.pk in up:
                continue
            spec = provision_spec(job, host)
            commands.append(
                MemberCommand(host=host.name, job_id=job_id, generation=job.generation,
                              spec=spec.to_dict(), domain=spec.name)
            )
        return commands


def do_start_provisioning_many(job_ids: list[int]) -> list[MemberCommand]:
    """``do_start_provisioning`` for the jobs one scheduling cycle placed, in a fixed
    number of statements: every job still SCHEDULED moves to PROVISIONING (a new
    attempt and generation) in one compare-and-swap, and the specs are built from
    one read of their allocation rows and one of their hosts' hugepages. A job in
    another state (already provisioning: a redelivered task) is handled one by one."""
    with transaction.atomic():
        moved = transition_jobs(
            job_ids, JobState.PROVISIONING, from_state=JobState.SCHEDULED,
            reason_for=lambda job: f"provisioning, attempt {job.attempts + 1}", actor=ACTOR,
            attempts=F("attempts") + 1, generation=F("generation") + 1,
        )
        jobs = {j.pk: j for j in Job.objects.filter(pk__in=list(moved)).order_by()}
        rows: dict[tuple[int, int], list[Allocation]] = {}
        for row in (Allocation.objects.filter(job_id__in=list(jobs))
                    .select_related("gpu", "host").order_by()):
            rows.setdefault((row.job_id, row.host_id), []).append(row)
        host_nodes: dict[int, list[NumaNode]] = {}
        for node in NumaNode.objects.filter(host_id__in={h for _job, h in rows}).order_by():
            host_nodes.setdefault(node.host_id, []).append(node)
        vfs: dict[int, list[str]] = {}
        for alloc_id, address in NicVfClaim.objects.filter(
                allocation__job_id__in=list(jobs)).values_list("allocation_id", "vf__pci_address"):
            vfs.setdefault(alloc_id, []).append(address)
        images = list(Image.objects.filter(
            cluster_id__in={r[0].host.cluster_id for r in rows.values()}))
        commands = []
        for (job_id, host_id), host_rows in sorted(
                rows.items(), key=lambda item: (item[0][0], item[1][0].host.name)):
            job, host = jobs[job_id], host_rows[0].host
            base_ids = [r.pk for r in host_rows if r.gpu_id is None]
            spec = spec_from_rows(
                job, host, host_rows, host_nodes.get(host_id, []), images,
                tuple(sorted(a for b in base_ids for a in vfs.get(b, []))))
            commands.append(MemberCommand(host=host.name, job_id=job_id, generation=job.generation,
                                          spec=spec.to_dict(), domain=spec.name))
    for job_id in sorted(set(job_ids) - set(moved)):
        commands.extend(do_start_provisioning(job_id))
    return commands


def _first_report(job_id: int, host_name: str, generation: int, *, state: str,
                  status: str) -> tuple[Job | None, Host | None]:
    """Lock the job and return it with the host when this is the first ``status``
    report of the current generation from that host, in ``state``; else (None, None)
    (a stale, late or repeated answer changes nothing)."""
    job = Job.objects.select_for_update().filter(pk=job_id).first()
    host = Host.objects.filter(name=host_name).first()
    if job is None or host is None or job.state != state or generation != job.generation:
        return None, None
    if not _holds(host, job):
        return None, None
    if host.pk in job.member_hosts(status):
        return None, None
    return job, host


def _holds(host: Host | None, job: Job) -> bool:
    """Whether ``host`` holds part of ``job``: only such a host's answers count.
    Refusals are logged: a host answering for a job it does not hold is forged
    or badly broken, never a late message."""
    if host is not None and Allocation.objects.filter(job=job, host=host).exists():
        return True
    security_log.warning("refused an answer about job %s from %s, which holds no part of it",
                         job.pk, host.name if host else "an unknown host")
    return False


def do_record_member_up(job_id: int, host_name: str, generation: int, *, domain: str = "",
                        state: str = "", evidence: dict | None = None) -> bool:
    """One member's VM runs. Returns True when this report made the job RUNNING."""
    with transaction.atomic():
        job, host = _first_report(job_id, host_name, generation, state=JobState.PROVISIONING,
                                  status=MemberStatus.UP)
        if job is None:
            return False
        Event.objects.create(
            job=job, host=host, kind=EventKind.MEMBER_UP, actor=f"agent:{host_name}",
            reason=f"domain {domain or job.domain_name} {state or 'running'} on {host_name}",
            # evidence: the VM's isolation as the host read it back (hostagent.isolation)
            data={"generation": generation, "domain": domain, "state": state,
                  **({"evidence": evidence} if evidence else {})},
        )
        members = {h.pk for h in _job_hosts(job_id)}
        _mark_member(job, host, MemberStatus.UP, generation)
        if not members <= job.member_hosts(MemberStatus.UP):
            return False
        latency = (timezone.now() - job.submitted_at).total_seconds()
        moved = transition_job(
            job_id,
            JobState.RUNNING,
            from_states=[JobState.PROVISIONING],
            reason="every member is up" if len(members) > 1 else "domain running",
            actor=ACTOR,
            data={"submit_to_running_s": round(latency, 3), "hosts": len(members)},
        )
        return moved


def do_record_member_failed(job_id: int, host_name: str, generation: int, *,
                            error: str) -> bool:
    """A member could not start: tear every member down, then retry or fail."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in (JobState.SCHEDULED, JobState.PROVISIONING):
            return False
        if generation != job.generation:
            return False
        host = Host.objects.filter(name=host_name).first()
        if not _holds(host, job):
            return False
        Event.objects.create(
            job=job, host=host, kind=EventKind.MEMBER_FAILED, actor=f"agent:{host_name}",
            reason=f"{host_name}: {error}"[:1000],
            data={"generation": generation, "error": error[:2000]},
        )
        _mark_member(job, host, MemberStatus.FAILED, generation)
        spent = job.attempts >= max_attempts()
        outcome = TeardownOutcome.FAILED if spent else TeardownOutcome.RETRY
        reason = f"provisioning failed on {host_name}: {error}"
        moved = transition_job(
            job_id,
            JobState.TEARDOWN,
            from_states=[job.state],
            reason=reason + (" (attempts spent)" if spent else " (will retry)"),
            actor=ACTOR,
            teardown_outcome=outcome,
            failure_reason=reason[:1000],
        )
        if moved:
            enqueue.request_teardown(job_id)
        return moved


# --- teardown -------------------------------------------------------------------------


def do_begin_teardown(job_id: int, outcome: str, *, reason: str, actor: str = ACTOR,
                      failure_reason: str = "") -> bool:
    """Move a placed job to TEARDOWN (its hosts are cleaned, then ``outcome``)."""
    fields = {"teardown_outcome": outcome}
    if failure_reason:
        fields["failure_reason"] = failure_reason[:1000]
    moved = transition_job(
        job_id,
        JobState.TEARDOWN,
        from_states=[JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING],
        reason=reason,
        actor=actor,
        **fields,
    )
    if moved:
        enqueue.request_teardown(job_id)
    return moved


def do_finish_job(job_id: int, *, succeeded: bool, reason: str, actor: str = ACTOR) -> bool:
    """A running job's VM ended by itself: clean up, then SUCCEEDED or FAILED."""
    outcome = TeardownOutcome.SUCCEEDED if succeeded else TeardownOutcome.FAILED
    fields = {"teardown_outcome": outcome}
    if not succeeded:
        fields["failure_reason"] = reason[:1000]
    moved = transition_job(job_id, JobState.TEARDOWN, from_states=[JobState.RUNNING],
                           reason=reason, actor=actor, **fields)
    if moved:
        enqueue.request_teardown(job_id)
    return moved


def teardown_commands(job_id: int) -> list[MemberCommand]:
    """The members of a job in TEARDOWN still to be cleaned. Offline hosts are
    skipped (recorded down at once): their domains are destroyed by the reconciler
    when the host comes back and reports them."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != JobState.TEARDOWN:
            return []
        down = job.member_hosts(MemberStatus.DOWN)
        commands = []
        for host in _job_hosts(job_id):
            if host.pk in down:
                continue
            if host.state == HostState.OFFLINE:
                Event.objects.create(
                    job=job, host=host, kind=EventKind.MEMBER_DOWN, actor=ACTOR,
                    reason=f"{host.name} is offline: its domain is removed when it returns",
                    data={"generation": job.generation, "offline": True},
                )
                _mark_member(job, host, MemberStatus.DOWN, job.generation)
                continue
            commands.append(MemberCommand(host=host.name, job_id=job_id, generation=job.generation,
                                          domain=job.domain_name))
        return commands


def do_record_member_down(job_id: int, host_name: str, generation: int) -> bool:
    """One member is clean. Returns True when this report finished the teardown."""
    with transaction.atomic():
        job, host = _first_report(job_id, host_name, generation, state=JobState.TEARDOWN,
                                  status=MemberStatus.DOWN)
        if job is None:
            return False
        Event.objects.create(
            job=job, host=host, kind=EventKind.MEMBER_DOWN, actor=f"agent:{host_name}",
            reason=f"domain {job.domain_name} removed from {host_name}",
            data={"generation": generation},
        )
        _mark_member(job, host, MemberStatus.DOWN, generation)
    return do_finish_teardown_if_clean(job_id)


def do_finish_teardown_if_clean(job_id: int) -> bool:
    """When every member of a job in TEARDOWN is down: release and move on."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != JobState.TEARDOWN:
            return False
        members = {h.pk for h in _job_hosts(job_id)}
        if not members <= job.member_hosts(MemberStatus.DOWN):
            return False
        return _finish_teardown(job)


def _last_teardown_reason(job: Job) -> str:
    event = (
        Event.objects.filter(job=job, kind=EventKind.TRANSITION, to_state=JobState.TEARDOWN)
        .order_by("-created_at", "-id").first()
    )
    return event.reason if event else ""


def _finish_teardown(job: Job) -> bool:
    released = release_allocations(job.pk)
    outcome = job.teardown_outcome or TeardownOutcome.FAILED
    note = f"hosts clean, {released} allocation rows released"
    if outcome == TeardownOutcome.RETRY:
        not_before = timezone.now() + retry_backoff(job.attempts)
        moved = transition_job(
            job.pk, JobState.QUEUED, from_states=[JobState.TEARDOWN],
            reason=f"requeued for retry ({note})", actor=ACTOR,
            not_before=not_before, teardown_outcome="",
            pending_code=PendingCode.RETRY_BACKOFF,
            pending_reason=f"Start failed ({job.failure_reason[:200]}); retrying after "
            f"{not_before.isoformat(timespec='seconds')} (attempt {job.attempts + 1} of "
            f"{max_attempts()}).",
            pending_data={"attempts": job.attempts, "not_before": not_before.isoformat()},
        )
    elif outcome == TeardownOutcome.PREEMPTED:
        why = _last_teardown_reason(job) or "preempted"
        moved = transition_job(job.pk, JobState.PREEMPTED, from_states=[JobState.TEARDOWN],
                               reason=f"{why} ({note})", actor=ACTOR)
        if moved:
            transition_job(
                job.pk, JobState.QUEUED, from_states=[JobState.PREEMPTED],
                reason="requeued after preemption", actor=ACTOR, teardown_outcome="",
                not_before=None, attempts=0,
                pending_code=PendingCode.PREEMPTED,
                pending_reason=f"Requeued after preemption: {why}",
                pending_data={"preempted_at": timezone.now().isoformat()},
            )
    else:
        moved = transition_job(job.pk, outcome, from_states=[JobState.TEARDOWN],
                               reason=note, actor=ACTOR)
    if moved:
        enqueue.request_scheduling_cycle()
    return moved
