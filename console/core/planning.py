"""The scheduling cycle: snapshot → ``scheduler.plan`` → allocations, in one transaction.

One leader at a time: on PostgreSQL a transaction-scoped advisory lock
(``pg_try_advisory_xact_lock``); a cycle that finds it taken does nothing and
asks for another cycle a moment later. On SQLite the settings open every
transaction with ``BEGIN IMMEDIATE``, so the cycle's transaction itself holds
the database's single write lock: cycles run one after the other.

Whatever the planner says, the database has the last word: every GPU a job
gets is added to ``Gpu.allocated_milli`` with ``F()`` (a check constraint
keeps it ≤ 1000), a passed-through GPU has one exclusive allocation row
(partial unique index) and every pinned core one ``CoreClaim`` (unique per
host and core). A placement that conflicts with a racing cycle is rolled back
alone (savepoint) and its job stays queued for the next cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

import scheduler
from console.core import enqueue
from console.core.choices import GpuHealth, HostState, JobState, TeardownOutcome
from console.core.models import Allocation, CoreClaim, Gpu, Host, Job, NicVf, NicVfClaim
from console.core.snapshot import SnapshotContext, build_snapshot_context
from console.core.transitions import transition_job

log = logging.getLogger(__name__)

# An arbitrary constant naming the scheduler's advisory lock on PostgreSQL.
SCHEDULER_LOCK_KEY = 0x436F75706C6572  # "Coupler"


@dataclass
class CycleReport:
    ran: bool = True
    placed: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)
    preempted: list[int] = field(default_factory=list)
    pending: int = 0
    queued: int = 0

    def as_dict(self) -> dict:
        return {
            "ran": self.ran,
            "placed": self.placed,
            "conflicts": self.conflicts,
            "preempted": self.preempted,
            "pending": self.pending,
            "queued": self.queued,
        }


class _PlacementConflict(Exception):
    """Roll back one placement's savepoint (the job moved, or the database refused)."""


def acquire_leader_lock() -> bool:
    """Take the scheduler's lock for the current transaction; False if another holds it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SCHEDULER_LOCK_KEY])
            return bool(cursor.fetchone()[0])
    # SQLite: BEGIN IMMEDIATE (settings) already made this transaction the only writer.
    return True


def _allocate_host(job_id: int, host: Host, hp: scheduler.HostPlacement,
                   gpus: dict[tuple[int, int], Gpu]) -> None:
    base = Allocation.objects.create(
        job_id=job_id,
        host=host,
        gpu=None,
        milli=1000,
        cpus=list(hp.cores),
        numa_nodes=list(hp.numa_nodes),
        memory_gib=hp.memory_gib,
        memory_by_numa=[[node, gib] for node, gib in hp.memory_by_numa],
    )
    CoreClaim.objects.bulk_create(
        CoreClaim(allocation=base, host=host, core=core) for core in hp.cores
    )
    for nic, count in hp.nic_vfs:
        # Free VFs of that NIC; the unique claim per VF refuses a racing cycle's double.
        vfs = list(NicVf.objects.filter(host=host, nic__name=nic, claim__isnull=True)
                   .order_by("index")[:count])
        if len(vfs) < count:
            raise _PlacementConflict(f"{host.name} {nic} has {len(vfs)} free VFs, {count} needed")
        NicVfClaim.objects.bulk_create(NicVfClaim(allocation=base, vf=vf) for vf in vfs)
    for index in hp.gpu_indices:
        gpu = gpus.get((host.pk, index))
        if gpu is None:
            raise _PlacementConflict(f"{host.name} has no GPU{index}")
        # The check constraint refuses the update past 1000: over-commit never commits.
        # A GPU cordoned or failed since the snapshot matches no row: conflict.
        bumped = (
            Gpu.objects.filter(pk=gpu.pk, cordoned=False)
            .exclude(health=GpuHealth.FAILED)
            .update(allocated_milli=F("allocated_milli") + hp.gpu_milli)
        )
        if bumped != 1:
            raise _PlacementConflict(f"{host.name} GPU{index} left service")
        Allocation.objects.create(job_id=job_id, host=host, gpu=gpu, milli=hp.gpu_milli)


def _commit_placement(placement: scheduler.Placement, hosts: dict[str, Host],
                      gpus: dict[tuple[int, int], Gpu]) -> bool:
    job_id = int(placement.job_id)
    try:
        with transaction.atomic():
            # The snapshot may be older than a cordon, drain or host failure that
            # committed meanwhile. Lock the hosts (in id order, before the job, as
            # the host actions do) and re-read their state: an action that
            # committed first wins and the job waits for the next cycle; one that
            # comes later waits for this commit and then sees the job on the host.
            names = sorted({hp.host for hp in placement.hosts})
            locked = {
                h.name: h.state
                for h in Host.objects.select_for_update().filter(name__in=names).order_by("pk")
            }
            for name in names:
                if locked.get(name) != HostState.READY:
                    raise _PlacementConflict(f"{name} is {locked.get(name, 'gone')}")
            job = Job.objects.filter(pk=job_id).values("submitted_at", "state").first()
            if job is None:
                raise _PlacementConflict("job vanished")
            wait = (timezone.now() - job["submitted_at"]).total_seconds()
            moved = transition_job(
                job_id,
                JobState.SCHEDULED,
                from_states=[JobState.QUEUED],
                reason="placed by the scheduling cycle",
                actor="scheduler",
                data={
                    "hosts": [hp.host for hp in placement.hosts],
                    "gpus": {hp.host: list(hp.gpu_indices) for hp in placement.hosts},
                    "link_kind": placement.link_kind,
                    "numa_local": placement.local,
                    "leaves": placement.leaves,
                    "nic_vfs": {hp.host: dict(hp.nic_vfs) for hp in placement.hosts
                                if hp.nic_vfs},
                    "submit_to_scheduled_s": round(wait, 3),
                },
            )
            if not moved:
                raise _PlacementConflict("job no longer queued")
            Job.objects.filter(pk=job_id).update(leaves=placement.leaves)
            for hp in placement.hosts:
                host = hosts.get(hp.host)
                if host is None:
                    raise _PlacementConflict(f"unknown host {hp.host}")
                _allocate_host(job_id, host, hp, gpus)
    except (_PlacementConflict, IntegrityError) as exc:
        log.info("placement of job %s not committed: %s", job_id, exc)
        return False
    enqueue.on_commit_send("console.core.tasks.workflow.provision_job", job_id)
    return True


def _preempt(preemption: scheduler.Preemption) -> bool:
    job_id = int(preemption.job_id)
    moved = transition_job(
        job_id,
        JobState.TEARDOWN,
        from_states=[JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING],
        reason=f"preempted: {preemption.reason}",
        actor="scheduler",
        data={"for_job": preemption.for_job, "preemption_reason": preemption.reason,
              "contested": list(preemption.resources)},
        teardown_outcome=TeardownOutcome.PREEMPTED,
    )
    if moved:
        enqueue.request_teardown(job_id)
    return moved


def _record_pending(plan: scheduler.Plan, context: SnapshotContext) -> int:
    count = 0
    for job_id, reason in plan.pending:
        Job.objects.filter(pk=int(job_id), state=JobState.QUEUED).update(
            pending_code=reason.code[:64],
            pending_reason=reason.message[:1000],
            pending_data=dict(reason.data),
        )
        count += 1
    for job_id, not_before in context.backoff.items():
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            pending_code="retry_backoff",
            pending_reason=f"Waiting before retry: the last start failed; next try after "
            f"{not_before.isoformat(timespec='seconds')}.",
            pending_data={"not_before": not_before.isoformat()},
        )
        count += 1
    return count


def commit_plan(plan: scheduler.Plan, context: SnapshotContext) -> CycleReport:
    """Write the plan: allocations and SCHEDULED for placements, TEARDOWN for
    preemptions, pending reasons for the rest. Call inside the cycle's transaction."""
    report = CycleReport(queued=len(context.snapshot.queued))
    names = {hp.host for p in plan.placements for hp in p.hosts}
    hosts = {h.name: h for h in Host.objects.filter(name__in=names)}
    gpus = {(g.host_id, g.index): g for g in Gpu.objects.filter(host__in=hosts.values())}
    for preemption in plan.preemptions:
        if _preempt(preemption):
            report.preempted.append(int(preemption.job_id))
    for placement in plan.placements:
        if _commit_placement(placement, hosts, gpus):
            report.placed.append(int(placement.job_id))
        else:
            report.conflicts.append(int(placement.job_id))
    report.pending = _record_pending(plan, context)
    for job_id in report.conflicts:
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            pending_code="placement_conflict",
            pending_reason="Another scheduling cycle took the capacity first; retrying.",
            pending_data={},
        )
    if report.conflicts:
        enqueue.request_scheduling_cycle()
    return report


def run_cycle() -> CycleReport:
    """One scheduling cycle, as leader; returns what it did (``ran=False`` if not leader)."""
    with transaction.atomic():
        if not acquire_leader_lock():
            return CycleReport(ran=False)
        context = build_snapshot_context()
        if not context.snapshot.queued and not context.backoff:
            return CycleReport()
        plan = scheduler.plan(context.snapshot)
        return commit_plan(plan, context)


def release_allocations(job_id: int) -> int:
    """Give back everything the job holds (GPUs with F(), cores, memory). Idempotent."""
    with transaction.atomic():
        rows = list(
            Allocation.objects.select_for_update().filter(job_id=job_id, gpu__isnull=False)
            .values_list("gpu_id", "milli")
        )
        for gpu_id, milli in rows:
            Gpu.objects.filter(pk=gpu_id).update(allocated_milli=F("allocated_milli") - milli)
        _, per_model = Allocation.objects.filter(job_id=job_id).delete()
    return per_model.get(Allocation._meta.label, 0)
