"""A year of job history, written in bulk, for benchmarks of the read paths.

``seed_history(jobs=N, new_tenants=T)`` spreads N jobs over the existing
tenants and T new ones, in a production-like mix:

- job shapes drawn from the Alibaba GPU trace (``alibaba_job_mix.csv``: GPUs,
  GPU shares, vCPUs, memory, with the trace's frequencies);
- one tenant (the first new one) holds an eighth of the jobs, the others a
  Zipf-like share each, as a few large teams and many small ones do;
- finished jobs (succeeded, failed, cancelled) over the past 365 days with
  their timestamps and transition events; a queue of a couple of hundred jobs
  waiting with a reason; running jobs on up to 60 % of the free GPUs, with
  their allocations, pinned cores and GPU accounting, so the dashboard, the
  snapshot and /metrics see a busy cluster. The live part does not grow with
  N: a fleet's history grows, its queue and its running set do not.

Jobs and events go in with PostgreSQL's COPY (multi-row INSERTs elsewhere);
the finished-job and latency counters (``console.core.counters``) are added to
in the same transaction. Job ids follow submit time, as they do in production.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Max

from console.core import counters
from console.core.choices import (
    EventKind,
    GpuHealth,
    HostState,
    JobState,
    MemberStatus,
    PendingCode,
)
from console.core.models import (
    Allocation,
    CoreClaim,
    Event,
    Gpu,
    Host,
    Job,
    JobMember,
    Tenant,
)

MIX_PATH = Path(__file__).with_name("alibaba_job_mix.csv")
NAME_PREFIXES = ("llm-pretrain", "finetune", "eval", "notebook", "sweep", "infer-batch",
                 "embed", "rl-rollout")
FAILURES = ("Xid 79: GPU has fallen off the bus", "The VM exited with status 1",
            "Provisioning failed 3 times: domain did not start",
            "Xid 48: double-bit ECC error")
HISTORY_DAYS = 365
QUEUE_LENGTH = 200  # jobs waiting, whatever the size of history
RUNNING_GPU_FRACTION = 0.6


@dataclass(frozen=True)
class Shape:
    gpus: int
    gpu_milli: int  # 0: whole GPUs
    vcpus: int
    memory_gib: int


@dataclass
class SeedReport:
    jobs: int
    events: int
    running: int
    queued: int
    tenants_created: int
    seconds: float = 0.0


def load_mix() -> tuple[list[Shape], list[int]]:
    shapes, weights = [], []
    with MIX_PATH.open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        for row in rows:
            shapes.append(Shape(int(row["gpus"]), int(row["gpu_milli"]), int(row["vcpus"]),
                                int(row["memory_gib"])))
            weights.append(int(row["tasks"]))
    return shapes, weights


# --- bulk writing -------------------------------------------------------------


def _pg_text(value) -> str:
    """One value in COPY's text format (the values here hold no tab, newline or
    backslash: names, reasons and JSON are generated above)."""
    if value is None:
        return "\\N"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _column_defaults(model, given: Sequence[str]) -> dict[str, object]:
    """Every other concrete column with its default, so a column added later
    (with a default) does not break the seeder."""
    out = {}
    for field in model._meta.concrete_fields:
        if field.column in given or field.primary_key:
            continue
        out[field.column] = field.get_default()
    return out


def bulk_insert(model, columns: Sequence[str], rows: Iterable[tuple], chunk: int = 20_000) -> int:
    """Insert rows (values in ``columns`` order, the id first when given):
    COPY on PostgreSQL, multi-row INSERT elsewhere."""
    defaults = _column_defaults(model, columns)
    all_columns = [*columns, *defaults]
    tail = tuple(defaults.values())
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in all_columns)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            tail_text = "".join("\t" + _pg_text(v) for v in tail)
            raw = cursor.cursor  # psycopg's own cursor: Django's does not wrap copy()
            with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                buffer = io.StringIO()
                for row in rows:
                    buffer.write("\t".join(_pg_text(v) for v in row))
                    buffer.write(tail_text)
                    buffer.write("\n")
                    count += 1
                    if count % chunk == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
        else:
            marks = ", ".join(["%s"] * len(all_columns))
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 (names from _meta)
            batch: list[tuple] = []
            for row in rows:
                batch.append(tuple(_sqlite_value(v) for v in (*row, *tail)))
                count += 1
                if len(batch) == chunk:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
    return count


def reserve_ids(model, count: int) -> int:
    """First of ``count`` consecutive ids no other row has or will be given."""
    table = model._meta.db_table
    first = (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
            last, called = cursor.fetchone()
            first = max(first, last + 1 if called else last)
            cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
    return first


# --- the history ----------------------------------------------------------------


def _tenant_weights(tenant_ids: list[int], heavy: int | None) -> list[float]:
    """An eighth for the heavy tenant, Zipf-like shares for the others."""
    others = [t for t in tenant_ids if t != heavy]
    zipf = [1 / (rank + 1) ** 0.7 for rank in range(len(others))]
    scale = (7 / 8 if heavy is not None else 1.0) / (sum(zipf) or 1)
    weights = {t: w * scale for t, w in zip(others, zipf, strict=True)}
    if heavy is not None:
        weights[heavy] = 1 / 8
    return [weights[t] for t in tenant_ids]


def _finished_state(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.84:
        return JobState.SUCCEEDED
    if roll < 0.91:
        return JobState.FAILED
    return JobState.CANCELLED


JOB_COLUMNS = (
    "id", "tenant_id", "name", "gpus_per_host", "host_count", "gpu_model", "gpu_milli",
    "vcpus_per_host", "memory_gib_per_host", "priority", "preemptible", "state",
    "pending_reason", "pending_code", "failure_reason", "attempts", "generation",
    "submitted_at", "queued_at", "scheduled_at", "provisioning_at", "running_at",
    "teardown_at", "finished_at", "updated_at",
)
EVENT_COLUMNS = ("job_id", "kind", "from_state", "to_state", "reason", "actor", "created_at")


class _History:
    def __init__(self, *, rng: random.Random, tenant_ids: list[int], heavy: int | None,
                 gpu_models: list[str], now: datetime) -> None:
        self.rng = rng
        self.tenant_ids = tenant_ids
        self.tenant_weights = _tenant_weights(tenant_ids, heavy)
        self.shapes, self.shape_weights = load_mix()
        self.gpu_models = gpu_models
        self.now = now
        self.events: list[tuple] = []
        self.finished: dict[tuple[int, str], int] = defaultdict(int)
        self.latency: dict[tuple[int, int], list] = defaultdict(lambda: [0, 0.0])

    def pick_tenants(self, n: int) -> list[int]:
        return self.rng.choices(self.tenant_ids, weights=self.tenant_weights, k=n)

    def pick_shapes(self, n: int) -> list[Shape]:
        return self.rng.choices(self.shapes, weights=self.shape_weights, k=n)

    def gpu_model(self, shape: Shape) -> str:
        if not shape.gpus or not self.gpu_models or self.rng.random() < 0.5:
            return ""
        return self.rng.choice(self.gpu_models)

    def job_rows(self, first_id: int, count: int, *, start: datetime, end: datetime,
                 state_of, events: list[tuple]) -> Iterator[tuple]:
        """Rows of ``count`` jobs submitted evenly between start and end (ids in
        submit order); their events are appended to ``events`` as they go."""
        rng = self.rng
        step = (end - start) / max(count, 1)
        tenants = self.pick_tenants(count)
        shapes = self.pick_shapes(count)
        for i in range(count):
            job_id = first_id + i
            tenant_id = tenants[i]
            shape = shapes[i]
            state = state_of(rng)
            submitted = start + step * i
            queued = submitted
            scheduled = provisioning = running = teardown = finished = None
            path = [("", JobState.QUEUED, "submitted")]
            pending_reason = pending_code = failure = ""
            wait = timedelta(seconds=rng.expovariate(1 / 40))
            if state == JobState.QUEUED:
                pending_code = PendingCode.OVER_LIMIT
                pending_reason = "Waiting for capacity: no host has the GPUs free."
            elif state == JobState.CANCELLED and rng.random() < 0.6:
                finished = submitted + wait
                path.append((JobState.QUEUED, JobState.CANCELLED, "cancelled by user"))
            else:
                scheduled = submitted + wait
                provisioning = scheduled + timedelta(milliseconds=rng.randint(5, 200))
                running = provisioning + timedelta(seconds=rng.uniform(0.5, 30))
                path += [(JobState.QUEUED, JobState.SCHEDULED, "placed"),
                         (JobState.SCHEDULED, JobState.PROVISIONING, ""),
                         (JobState.PROVISIONING, JobState.RUNNING, "")]
                seconds = (running - submitted).total_seconds()
                entry = self.latency[(tenant_id, bisect.bisect_left(
                    counters.LATENCY_BUCKETS, seconds))]
                entry[0] += 1
                entry[1] += seconds
                if state != JobState.RUNNING:
                    duration = timedelta(seconds=rng.lognormvariate(8, 1.5))
                    finished = min(running + duration, self.now)
                    if state == JobState.CANCELLED:
                        teardown = finished - timedelta(seconds=5)
                        path += [(JobState.RUNNING, JobState.TEARDOWN, "cancelled by user"),
                                 (JobState.TEARDOWN, JobState.CANCELLED, "")]
                    else:
                        if state == JobState.FAILED:
                            failure = rng.choice(FAILURES)
                        path.append((JobState.RUNNING, state, failure or "the VM finished"))
            if state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
                self.finished[(tenant_id, state)] += 1
            stamps = [submitted, scheduled, provisioning, running, teardown, finished]
            moments = [s for s in stamps if s is not None]
            for (before, after, reason), at in zip(path, moments, strict=False):
                events.append((job_id, EventKind.TRANSITION, before, after, reason, "seed_history",
                               at))
            updated = moments[-1]
            yield (
                job_id, tenant_id, f"{rng.choice(NAME_PREFIXES)}-{job_id}", shape.gpus, 1,
                self.gpu_model(shape), shape.gpu_milli or None, shape.vcpus,
                shape.memory_gib, rng.choice((0, 0, 0, 10, -10)), rng.random() < 0.7, state,
                pending_reason, pending_code, failure, 0 if state == JobState.QUEUED else 1,
                0 if state == JobState.QUEUED else 1,
                submitted, queued, scheduled, provisioning, running, teardown, finished,
                updated,
            )


def _write_jobs(history: _History, first_id: int, count: int, *, start: datetime,
                end: datetime, state_of, batch: int = 50_000) -> int:
    """Jobs and their events, a batch at a time (a million jobs' events would not
    fit in memory at once). Returns the number of events."""
    events_written = 0
    step = (end - start) / max(count, 1)
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        events: list[tuple] = []
        bulk_insert(Job, JOB_COLUMNS, history.job_rows(
            first_id + offset, size, start=start + step * offset,
            end=start + step * (offset + size), state_of=state_of, events=events))
        events_written += bulk_insert(Event, EVENT_COLUMNS, events)
    return events_written


def _free_gpus(rng: random.Random) -> list[Gpu]:
    gpus = list(
        Gpu.objects.filter(host__state=HostState.READY, allocated_milli=0, cordoned=False)
        .exclude(health=GpuHealth.FAILED)
        .select_related("host")
        .order_by("host_id", "index")
    )
    rng.shuffle(gpus)
    return gpus[: int(len(gpus) * RUNNING_GPU_FRACTION)]


def _start_running_jobs(history: _History, gpus: list[Gpu], first_id: int) -> int:
    """Running 1-GPU jobs on ``gpus``, each with its cores pinned on the GPU's
    NUMA node, as a committed plan would leave them."""
    rng = history.rng
    claimed: dict[int, set[int]] = defaultdict(set)
    for host_id, core in CoreClaim.objects.values_list("host_id", "core"):
        claimed[host_id].add(core)
    nodes: dict[tuple[int, int], list[int]] = {}
    for host in Host.objects.filter(pk__in={g.host_id for g in gpus}).prefetch_related(
        "numa_nodes"
    ):
        reserved = set(host.reserved_cores or [])
        for node in host.numa_nodes.all():
            nodes[(host.pk, node.node_id)] = [c for c in node.cpus if c not in reserved]
    jobs, plans = [], []
    job_id = first_id
    for gpu in gpus:
        free = [c for c in nodes.get((gpu.host_id, gpu.numa_node or 0), [])
                if c not in claimed[gpu.host_id]]
        vcpus = 4
        if len(free) < vcpus:
            continue
        cores = free[:vcpus]
        claimed[gpu.host_id].update(cores)
        submitted = history.now - timedelta(hours=rng.uniform(0.5, 48))
        running = submitted + timedelta(seconds=rng.uniform(2, 120))
        tenant_id = history.pick_tenants(1)[0]
        jobs.append(Job(
            id=job_id, tenant_id=tenant_id, name=f"{rng.choice(NAME_PREFIXES)}-{job_id}",
            gpus_per_host=1, gpu_model=gpu.model, vcpus_per_host=vcpus,
            memory_gib_per_host=32, state=JobState.RUNNING, attempts=1, generation=1,
            queued_at=submitted, scheduled_at=submitted, provisioning_at=submitted,
            running_at=running,
        ))
        plans.append((job_id, gpu, cores, submitted, running))
        seconds = (running - submitted).total_seconds()
        entry = history.latency[(tenant_id, bisect.bisect_left(counters.LATENCY_BUCKETS,
                                                               seconds))]
        entry[0] += 1
        entry[1] += seconds
        job_id += 1
    Job.objects.bulk_create(jobs, batch_size=1000)
    # submitted_at is auto_now_add: set the seeded time afterwards.
    for job_id, _gpu, _cores, submitted, _running in plans:
        Job.objects.filter(pk=job_id).update(submitted_at=submitted, updated_at=submitted)
    allocations, events = [], []
    for job_id, gpu, cores, submitted, running in plans:
        allocations.append(Allocation(job_id=job_id, host_id=gpu.host_id, gpu=None, milli=1000,
                                      cpus=cores, numa_nodes=[gpu.numa_node or 0],
                                      memory_gib=32, memory_by_numa=[[gpu.numa_node or 0, 32]]))
        allocations.append(Allocation(job_id=job_id, host_id=gpu.host_id, gpu=gpu, milli=1000))
        for before, after, at in (("", JobState.QUEUED, submitted),
                                  (JobState.QUEUED, JobState.SCHEDULED, submitted),
                                  (JobState.SCHEDULED, JobState.PROVISIONING, submitted),
                                  (JobState.PROVISIONING, JobState.RUNNING, running)):
            events.append((job_id, EventKind.TRANSITION, before, after, "", "seed_history", at))
    Allocation.objects.bulk_create(allocations, batch_size=1000)
    JobMember.objects.bulk_create(
        [JobMember(job_id=job_id, host_id=gpu.host_id, status=MemberStatus.UP, generation=1)
         for job_id, gpu, _c, _s, _r in plans], batch_size=1000)
    cpu_rows = {a.job_id: a for a in allocations if a.gpu is None}
    CoreClaim.objects.bulk_create(
        [CoreClaim(allocation=cpu_rows[job_id], host_id=gpu.host_id, core=core)
         for job_id, gpu, cores, _s, _r in plans for core in cores],
        batch_size=2000,
    )
    Gpu.objects.filter(pk__in=[gpu.pk for _j, gpu, _c, _s, _r in plans]).update(
        allocated_milli=1000
    )
    bulk_insert(Event, EVENT_COLUMNS, events)
    return len(plans)


def create_tenants(count: int) -> list[Tenant]:
    taken = Tenant.objects.filter(slug__startswith="history-").count()
    tenants = [
        Tenant(name=f"History tenant {taken + i + 1:04d}", slug=f"history-{taken + i + 1:04d}",
               weight=1 + (i % 3))
        for i in range(count)
    ]
    return Tenant.objects.bulk_create(tenants)


def seed_history(*, jobs: int, new_tenants: int, seed: int = 1,
                 now: datetime | None = None) -> SeedReport:
    """Write ``jobs`` jobs of history (see the module docstring); returns counts."""
    import time

    started = time.perf_counter()
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    with transaction.atomic():
        created = create_tenants(new_tenants)
        tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
        if not tenant_ids:
            created = create_tenants(1)
            tenant_ids = [created[0].pk]
        # The first history tenant holds an eighth of every seeding's jobs.
        heavy = (Tenant.objects.filter(slug__startswith="history-").order_by("pk")
                 .values_list("pk", flat=True).first())
        gpu_models = sorted(set(Gpu.objects.values_list("model", flat=True)))
        history = _History(rng=rng, tenant_ids=tenant_ids, heavy=heavy,
                           gpu_models=gpu_models, now=now)
        gpus = _free_gpus(rng)
        queued = min(QUEUE_LENGTH, max(jobs // 50, 0))
        running_cap = min(len(gpus), max(jobs - queued, 0))
        finished = max(jobs - queued - running_cap, 0)
        first = reserve_ids(Job, finished + running_cap + queued)
        # Finished jobs over the past year, then the running set, then the queue.
        event_count = _write_jobs(history, first, finished,
                                  start=now - timedelta(days=HISTORY_DAYS),
                                  end=now - timedelta(days=2), state_of=_finished_state)
        running = _start_running_jobs(history, gpus[:running_cap], first + finished)
        event_count += _write_jobs(history, first + finished + running, queued,
                                   start=now - timedelta(hours=1), end=now,
                                   state_of=lambda _rng: JobState.QUEUED)
        for (tenant_id, state), count in history.finished.items():
            counters.add_finished(tenant_id, state, count)
        for (tenant_id, bucket), (count, seconds) in history.latency.items():
            counters.add_latency(tenant_id, bucket, count, seconds)
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # What autovacuum would do to a table written over a year: statistics for
        # the planner, and the visibility map that lets the lists' index-only
        # scans (the capped count) skip the heap.
        with connection.cursor() as cursor:
            for model in (Job, Event, Allocation):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"VACUUM (ANALYZE) {table}")
    return SeedReport(jobs=finished + running + queued, events=event_count + running * 4,
                      running=running, queued=queued, tenants_created=len(created),
                      seconds=time.perf_counter() - started)
