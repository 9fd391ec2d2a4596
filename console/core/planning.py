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

import json
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, IntegerField, JSONField, Value, When
from django.utils import timezone

import scheduler
from console.core import enqueue
from console.core.choices import GpuHealth, HostState, JobState, PendingCode, TeardownOutcome
from console.core.models import (
    Allocation,
    CoreClaim,
    Gpu,
    Host,
    Job,
    JobMember,
    NicVf,
    NicVfClaim,
)
from console.core.snapshot import SnapshotContext, build_snapshot_context
from console.core.transitions import transition_job, transition_jobs

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


def acquire_leader_lock(wait: bool = False) -> bool:
    """Take the scheduler's lock for the current transaction; False if another holds it
    (``wait``: block until the other leader's transaction ends)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if wait:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEDULER_LOCK_KEY])
                return True
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
            job = Job.objects.filter(pk=job_id).values("submitted_at", "state", "generation").first()
            if job is None:
                raise _PlacementConflict("job vanished")
            moved = transition_job(
                job_id,
                JobState.SCHEDULED,
                from_states=[JobState.QUEUED],
                reason="placed by the scheduling cycle",
                actor="scheduler",
                data=_placement_data(placement, job["submitted_at"], timezone.now()),
            )
            if not moved:
                raise _PlacementConflict("job no longer queued")
            Job.objects.filter(pk=job_id).update(leaves=placement.leaves)
            for hp in placement.hosts:
                host = hosts.get(hp.host)
                if host is None:
                    raise _PlacementConflict(f"unknown host {hp.host}")
                _allocate_host(job_id, host, hp, gpus)
            JobMember.objects.bulk_create(
                JobMember(job_id=job_id, host=hosts[hp.host], generation=job["generation"])
                for hp in placement.hosts)
    except (_PlacementConflict, IntegrityError) as exc:
        log.info("placement of job %s not committed: %s", job_id, exc)
        return False
    enqueue.on_commit_send("console.core.tasks.workflow.provision_job", job_id)
    return True


def _placement_data(placement: scheduler.Placement, submitted_at, now) -> dict:
    return {
        "hosts": [hp.host for hp in placement.hosts],
        "gpus": {hp.host: list(hp.gpu_indices) for hp in placement.hosts},
        "link_kind": placement.link_kind,
        "numa_local": placement.local,
        "leaves": placement.leaves,
        "nic_vfs": {hp.host: dict(hp.nic_vfs) for hp in placement.hosts if hp.nic_vfs},
        "submit_to_scheduled_s": round((now - submitted_at).total_seconds(), 3),
    }


def insert_rows(model, rows: list[dict], *, returning: tuple[str, ...] = ()) -> list[tuple]:
    """Insert ``rows`` (column attname -> value; a column left out gets the field's
    default, ``auto_now``/``auto_now_add`` the time) in one statement; returns the
    ``returning`` columns of each row. On PostgreSQL one ``INSERT … SELECT FROM
    unnest(<one array per column>)`` built from the values as given (a cycle writes
    over 100,000 core claims: no model instance per row); elsewhere ``bulk_create``.
    Constraints and triggers apply exactly as to any INSERT."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        created = model.objects.bulk_create([model(**row) for row in rows])
        return [tuple(getattr(obj, "pk" if c == "id" else c) for c in returning)
                for obj in created]
    now = timezone.now()
    names, casts, arrays = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if f.attname in rows[0]:
            values = [row[f.attname] for row in rows]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            values = [now] * len(rows)
        else:
            values = [f.get_default()] * len(rows)
        db_type = f.db_type(connection)
        if isinstance(f, JSONField):
            values = [json.dumps(v) for v in values]
            db_type = "jsonb"
        names.append(connection.ops.quote_name(f.column))
        casts.append(f"%s::{db_type}[]")
        arrays.append(values)
    q = connection.ops.quote_name
    sql = (f"INSERT INTO {q(model._meta.db_table)} ({', '.join(names)}) "  # noqa: S608 (names from _meta)
           f"SELECT * FROM unnest({', '.join(casts)})")
    if returning:
        sql += " RETURNING " + ", ".join(q(model._meta.get_field(c).column) for c in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return [tuple(r) for r in cursor.fetchall()] if returning else []


def _add_milli(milli_by_gpu: dict[int, int]) -> int:
    """Add each GPU's milli in one UPDATE, only to GPUs still in service (not cordoned,
    not failed); returns how many were updated. The check constraint refuses any sum
    past 1000, so the database refuses an over-commit whatever the snapshot said."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                'UPDATE "core_gpu" SET "allocated_milli" = "core_gpu"."allocated_milli" + v.milli'
                " FROM unnest(%s::bigint[], %s::integer[]) AS v(id, milli)"
                ' WHERE "core_gpu"."id" = v.id AND NOT "core_gpu"."cordoned"'
                ' AND "core_gpu"."health" <> %s',
                [list(milli_by_gpu), list(milli_by_gpu.values()), GpuHealth.FAILED])
            return cursor.rowcount
    return (
        Gpu.objects.filter(pk__in=list(milli_by_gpu), cordoned=False)
        .exclude(health=GpuHealth.FAILED)
        .update(allocated_milli=F("allocated_milli") + Case(
            *(When(pk=pk, then=Value(milli)) for pk, milli in milli_by_gpu.items()),
            default=Value(0), output_field=IntegerField()))
    )


def _commit_placements_bulk(placements: list[scheduler.Placement], hosts: dict[str, Host],
                            gpus: dict[tuple[int, int], Gpu]) -> tuple[list[int], list]:
    """Commit many placements in a fixed number of statements, whatever their number:
    lock the hosts and re-check they are READY, move the jobs QUEUED→SCHEDULED in one
    compare-and-swap (``transition_jobs``), insert every allocation, core claim and GPU
    row in bulk, and add every GPU's milli in one UPDATE. The database's checks are the
    same as one by one (milli ≤ 1000, one exclusive row per GPU, one claim per core):
    if any refuses, or a GPU left service, the whole batch rolls back (savepoint) and
    the caller commits those placements one by one (``_commit_placement``), so only the
    conflicting job waits. Returns (placed job ids, placements left to the caller)."""
    if len(placements) < 2:
        return [], list(placements)
    now = timezone.now()
    by_job = {int(p.job_id): p for p in placements}
    try:
        with transaction.atomic():
            names = sorted({hp.host for p in placements for hp in p.hosts})
            ready = set(
                Host.objects.select_for_update().filter(name__in=names, state=HostState.READY)
                .order_by("pk").values_list("name", flat=True)
            )
            # Placements holding NIC virtual functions claim them one by one
            # (``_allocate_host``): they are left to the caller.
            batch = {job_id: p for job_id, p in by_job.items()
                     if all(hp.host in ready and hp.host in hosts and not hp.nic_vfs
                            for hp in p.hosts)}
            if len(batch) < 2:
                raise _PlacementConflict("nothing to batch")
            moved = transition_jobs(
                list(batch), JobState.SCHEDULED, from_state=JobState.QUEUED,
                reason="placed by the scheduling cycle", actor="scheduler",
                data_for=lambda job: _placement_data(batch[job.pk], job.submitted_at, now),
            )
            if not moved:
                raise _PlacementConflict("no job still queued")
            bases: list[dict] = []          # one Allocation row per job and host
            cores: list[tuple[int, int, list[int]]] = []  # (job, host, pinned cores)
            members: list[dict] = []
            gpu_rows: list[dict] = []
            milli_by_gpu: dict[int, int] = {}
            for job_id in sorted(moved):
                for hp in batch[job_id].hosts:
                    host = hosts[hp.host]
                    bases.append({"job_id": job_id, "host_id": host.pk, "gpu_id": None,
                                  "milli": 1000, "cpus": list(hp.cores),
                                  "numa_nodes": list(hp.numa_nodes), "memory_gib": hp.memory_gib,
                                  "memory_by_numa": [[node, gib] for node, gib
                                                     in hp.memory_by_numa]})
                    members.append({"job_id": job_id, "host_id": host.pk,
                                    "generation": moved[job_id].generation})
                    cores.append((job_id, host.pk, list(hp.cores)))
                    for index in hp.gpu_indices:
                        gpu = gpus.get((host.pk, index))
                        if gpu is None:
                            raise _PlacementConflict(f"{host.name} has no GPU{index}")
                        milli_by_gpu[gpu.pk] = milli_by_gpu.get(gpu.pk, 0) + hp.gpu_milli
                        gpu_rows.append({"job_id": job_id, "host_id": host.pk,
                                         "gpu_id": gpu.pk, "milli": hp.gpu_milli})
            by_leaves: dict[int | None, list[int]] = {}
            for job_id in moved:
                by_leaves.setdefault(batch[job_id].leaves, []).append(job_id)
            for leaves, job_ids in by_leaves.items():
                Job.objects.filter(pk__in=job_ids).update(leaves=leaves)
            base_ids = {(job_id, host_id): pk for pk, job_id, host_id in insert_rows(
                Allocation, bases, returning=("id", "job_id", "host_id"))}
            insert_rows(JobMember, members)
            insert_rows(CoreClaim, [
                {"allocation_id": base_ids[(job_id, host_id)], "host_id": host_id, "core": core}
                for job_id, host_id, pinned in cores for core in pinned])
            if milli_by_gpu:
                # One UPDATE for every GPU; the check constraint refuses any past 1000, and
                # a GPU cordoned or failed since the snapshot matches no row.
                if _add_milli(milli_by_gpu) != len(milli_by_gpu):
                    raise _PlacementConflict("a GPU left service")
                insert_rows(Allocation, gpu_rows)
    except (_PlacementConflict, IntegrityError) as exc:
        log.info("bulk commit of %d placements fell back to one by one: %s", len(by_job), exc)
        return [], list(placements)
    placed = sorted(moved)
    rest = [p for job_id, p in by_job.items() if job_id not in moved]
    return placed, rest


def _preempt(preemption: scheduler.Preemption) -> bool:
    job_id = int(preemption.job_id)
    # The victim's tenant reads this reason: it names no other tenant, quota or job.
    # The scheduler's full reason (and the preempting job) stay in the event's data,
    # which the API shows to staff only (console.api.serializers.EventSerializer).
    short = ", ".join(preemption.resources) or "capacity"
    moved = transition_job(
        job_id,
        JobState.TEARDOWN,
        from_states=[JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING],
        reason=f"preempted: borrowed capacity ({short}) reclaimed for a tenant below its "
               "guarantee; your tenant keeps at least its own guarantee",
        actor="scheduler",
        data={"for_job": preemption.for_job, "preemption_reason": preemption.reason,
              "contested": list(preemption.resources)},
        teardown_outcome=TeardownOutcome.PREEMPTED,
    )
    if moved:
        enqueue.request_teardown(job_id)
    return moved


def _changed_pending(job_id: int, code: str, reason: str, data: dict,
                     context: SnapshotContext) -> tuple | None:
    """A queued job's pending reason as stored, or None when the stored one is the same
    (a long queue would otherwise cost a write per job per cycle)."""
    value = (code[:64], reason[:1000], json.loads(json.dumps(data)))  # as stored: lists
    if context.pending.get(job_id) == value:
        return None
    return (job_id, *value)


def _store_pending(rows: list[tuple]) -> None:
    """Write ``(job id, code, reason, data)`` to the jobs still QUEUED: on PostgreSQL in
    one UPDATE whatever their number, elsewhere one per job."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                'UPDATE "core_job" SET "pending_code" = v.code, "pending_reason" = v.reason,'
                ' "pending_data" = v.data::jsonb'
                " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])"
                " AS v(id, code, reason, data)"
                ' WHERE "core_job"."id" = v.id AND "core_job"."state" = %s',
                [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                 [json.dumps(r[3]) for r in rows], JobState.QUEUED])
        return
    for job_id, code, reason, data in rows:
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            pending_code=code, pending_reason=reason, pending_data=data)


def _record_pending(plan: scheduler.Plan, context: SnapshotContext) -> int:
    count = 0
    changed = []
    for job_id, reason in plan.pending:
        changed.append(_changed_pending(int(job_id), reason.code, reason.message,
                                        dict(reason.data), context))
        count += 1
    for job_id, not_before in context.backoff.items():
        changed.append(_changed_pending(
            job_id, PendingCode.RETRY_BACKOFF,
            f"Waiting before retry: the last start failed; next try after "
            f"{not_before.isoformat(timespec='seconds')}.",
            {"not_before": not_before.isoformat()}, context))
        count += 1
    _store_pending([row for row in changed if row is not None])
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
    placed, rest = _commit_placements_bulk(list(plan.placements), hosts, gpus)
    report.placed.extend(placed)
    for placement in rest:
        if _commit_placement(placement, hosts, gpus):
            report.placed.append(int(placement.job_id))
        else:
            report.conflicts.append(int(placement.job_id))
    if placed:
        enqueue.on_commit_send("console.core.tasks.workflow.provision_jobs", placed)
    report.pending = _record_pending(plan, context)
    for job_id in report.conflicts:
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            pending_code=PendingCode.PLACEMENT_CONFLICT,
            pending_reason="Another scheduling cycle took the capacity first; retrying.",
            pending_data={},
        )
    if report.conflicts:
        enqueue.request_scheduling_cycle()
    return report


def run_cycle(*, wait: bool = False) -> CycleReport:
    """One scheduling cycle, as leader; returns what it did (``ran=False`` if not leader;
    ``wait``: wait for the leader lock instead)."""
    with transaction.atomic():
        if not (acquire_leader_lock(wait=True) if wait else acquire_leader_lock()):
            return CycleReport(ran=False)
        # Most cycles are asked for by a change that left nothing queued (a cancel,
        # a finish): one indexed EXISTS instead of a whole snapshot.
        if not Job.objects.filter(state=JobState.QUEUED).exists():
            return CycleReport()
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
        JobMember.objects.filter(job_id=job_id).delete()
        _, per_model = Allocation.objects.filter(job_id=job_id).delete()
    return per_model.get(Allocation._meta.label, 0)
