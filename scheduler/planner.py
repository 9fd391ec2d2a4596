"""`plan(snapshot) -> Plan`: one scheduling cycle.

1. Guaranteed phase: weighted DRF progressive filling over the jobs that fit inside their
   tenant's guarantee; one that finds no room preempts borrowed work of other tenants
   (`scheduler.preemption`) and waits for it, with the freed capacity held for it.
2. Borrowing phase: weighted DRF progressive filling over every job still queued, within
   limits, on what is left.

Every job not placed gets a `PendingReason` with numbers.

Cost: O(J log T) heap work for J jobs and T tenants, plus per job one `Placer.find`
(O(C) for C distinct host states, memoised per job shape), plus O(H) to build the
working cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from scheduler.cluster import Host
from scheduler.fairshare import FairShare, Vector, demand
from scheduler.model import (
    WHOLE_GPU_MILLI,
    HostState,
    JobRequest,
    PendingCode,
    PendingReason,
    Placement,
    Plan,
    Preemption,
    RunningJob,
    Snapshot,
    TenantState,
)
from scheduler.placement import Placer, shape_of
from scheduler.policies import workload_from_jobs
from scheduler.preemption import choose_victims
from scheduler.quotas import (
    Usage,
    add,
    check_limits,
    gpu_models,
    has_guarantee,
    placement_usage,
    within_guarantee,
)

_PLACED, _WAITING, _FINAL = "placed", "waiting", "final"


def cluster_capacity(placer: Placer, running: tuple[RunningJob, ...]) -> Vector:
    """Free capacity of uncordoned hosts plus what running jobs hold on them."""
    gpu = cpu = mem = 0.0
    for h in placer.cluster.hosts:
        if h.cordoned:
            continue
        gpu += h.free_gpu_milli()
        cpu += h.free_cores()
        mem += h.free_mem()
    for r in running:
        for hp in r.placement:
            h = placer.cluster.by_name.get(hp.host)
            if h is None or h.cordoned:
                continue
            gpu += hp.gpu_milli * len(hp.gpu_indices)
            cpu += len(hp.cores)
            mem += hp.memory_gib
    return (gpu, cpu, mem)


def _job_order(j: JobRequest) -> tuple:
    return (-j.priority, j.submit_time, j.id)


def plan(snapshot: Snapshot) -> Plan:
    """Decide placements, preemptions and pending reasons for one snapshot. Pure."""
    workload = snapshot.workload or workload_from_jobs(snapshot.queued)
    placer = Placer(snapshot.hosts, snapshot.policy, workload)
    model_of = gpu_models(snapshot.hosts)
    cluster_models = frozenset(g.model for h in snapshot.hosts for g in h.gpus)
    tenants = {t.name: t for t in snapshot.tenants}
    usage: dict[str, Usage] = {n: dict(t.usage) for n, t in tenants.items()}
    capacity = cluster_capacity(placer, snapshot.running)
    fs = FairShare(snapshot.tenants, capacity, usage)
    alive = list(snapshot.running)

    state: dict[str, str] = {}
    pending: dict[str, PendingReason] = {}
    placements: list[Placement] = []
    reserved: list[Placement] = []
    preemptions: list[Preemption] = []
    queues: dict[str, list[JobRequest]] = {}
    for j in snapshot.queued:
        if j.tenant not in tenants:
            pending[j.id] = PendingReason(
                PendingCode.UNKNOWN_TENANT, f"Tenant {j.tenant!r} is not known to the scheduler.", {}
            )
            state[j.id] = _FINAL
            continue
        queues.setdefault(j.tenant, []).append(j)
    for q in queues.values():
        q.sort(key=_job_order)
    placed_in_cycle: dict[str, int] = {}
    placed_total = [0]
    initial: list[Placer] = []
    after_leaving: list[tuple[Placer, dict[str, Usage], list[RunningJob]]] = []

    def explain(job: JobRequest, models: frozenset[str] | None) -> PendingReason:
        if not initial:
            initial.append(Placer(snapshot.hosts, "first-fit", ()))
        return _capacity_reason(
            job, models, initial[0], placer, placed_in_cycle, placed_total[0]
        )

    for guaranteed_phase in (True, False):
        pos = dict.fromkeys(queues, 0)
        for name in queues:
            if not guaranteed_phase or has_guarantee(tenants[name]):
                fs.push(name)
        while True:
            name = fs.pop()
            if name is None:
                break
            q = queues[name]
            i = pos[name]
            while i < len(q) and (
                q[i].id in state
                or (guaranteed_phase and not within_guarantee(tenants[name], usage[name], q[i]))
            ):
                i += 1
            if i >= len(q):
                continue
            pos[name] = i + 1
            job = q[i]
            tenant = tenants[name]
            reason, models = check_limits(tenant, usage[name], job, cluster_models)
            if reason is not None:
                pending[job.id] = reason
                state[job.id] = _FINAL
            else:
                chosen = placer.find(job, models)
                if chosen is not None:
                    p = placer.commit(job, chosen)
                    placements.append(p)
                    _charge(p, name, usage, fs, model_of, job)
                    state[job.id] = _PLACED
                    placed_in_cycle[name] = placed_in_cycle.get(name, 0) + 1
                    placed_total[0] += 1
                elif guaranteed_phase and snapshot.leaving:
                    # Preemptions already in flight: their capacity is coming back. No new
                    # preemption until they have stopped (so one waiting job never preempts
                    # a fresh set each cycle, and a victim tenant's usage still counting the
                    # leaving jobs never makes it look further above its guarantee).
                    state[job.id] = _FINAL
                    if not after_leaving:
                        after_leaving.append(_after_leaving(snapshot, usage, model_of))
                    pending[job.id] = _await_leaving(
                        job, models, after_leaving[0], tenants, model_of, len(snapshot.leaving)
                    ) or explain(job, models)
                elif guaranteed_phase:
                    r = _preempt_for(
                        job, models, placer, tenants, usage, fs, alive, model_of, preemptions
                    )
                    if r is not None:
                        reserved.append(r)
                        _charge(r, name, usage, fs, model_of, job)
                        state[job.id] = _WAITING
                        n = sum(1 for x in preemptions if x.for_job == job.id)
                        pending[job.id] = PendingReason(
                            PendingCode.WAITING_FOR_PREEMPTION,
                            f"Reclaiming capacity guaranteed to tenant {name}: {n} borrowed "
                            f"job(s) of other tenants are being preempted; the job starts "
                            f"when they have stopped.",
                            {"preempted_jobs": n},
                        )
                    else:
                        state[job.id] = _FINAL
                        pending[job.id] = explain(job, models)
                else:
                    state[job.id] = _FINAL
                    pending[job.id] = explain(job, models)
            if pos[name] < len(q):
                fs.push(name)

    final_shares = fs.shares()
    lowest = sorted(final_shares.items(), key=lambda kv: kv[1])[:2]
    tenant_of = {j.id: j.tenant for j in snapshot.queued}
    for jid, reason in pending.items():
        if reason.code == PendingCode.WAITING_FOR_FAIR_SHARE:
            pending[jid] = _fair_share_reason(tenant_of[jid], reason, final_shares, lowest)
    return Plan(
        placements=tuple(placements),
        preemptions=tuple(preemptions),
        pending=tuple((j.id, pending[j.id]) for j in snapshot.queued if j.id in pending),
        dominant_shares=tuple(sorted(fs.shares().items())),
        reserved=tuple(reserved),
    )


def _charge(
    p: Placement,
    tenant: str,
    usage: dict[str, Usage],
    fs: FairShare,
    model_of: Mapping[tuple[str, int], str],
    job: JobRequest,
) -> None:
    add(usage[tenant], placement_usage(p.hosts, model_of))
    fs.charge(tenant, demand(job))


def _after_leaving(
    snapshot: Snapshot, usage: Mapping[str, Usage], model_of: Mapping[tuple[str, int], str]
) -> tuple[Placer, dict[str, Usage], list[RunningJob]]:
    """The cluster, usage and running jobs as they will be once the leaving jobs stopped."""
    workload = snapshot.workload or workload_from_jobs(snapshot.queued)
    future = Placer(snapshot.hosts, snapshot.policy, workload)
    settled = {n: dict(u) for n, u in usage.items()}
    for r in snapshot.leaving:
        for hp in r.placement:
            if hp.host in future.cluster.by_name:
                future.cluster.release(hp)
        if r.tenant in settled:
            add(settled[r.tenant], placement_usage(r.placement, model_of), -1.0)
    return future, settled, list(snapshot.running)


def _await_leaving(
    job: JobRequest,
    models: frozenset[str] | None,
    after: tuple[Placer, dict[str, Usage], list[RunningJob]],
    tenants: Mapping[str, TenantState],
    model_of: Mapping[tuple[str, int], str],
    leaving: int,
) -> PendingReason | None:
    """`waiting_for_preemption` when the capacity being freed (or, after it, borrowed work
    still running) can make room for ``job``; None when it cannot."""
    future, settled, running = after
    if future.find(job, models) is None and choose_victims(
        future, job, models, tenants, settled, running, model_of
    ) is None:
        return None
    return PendingReason(
        PendingCode.WAITING_FOR_PREEMPTION,
        f"Reclaiming capacity guaranteed to tenant {job.tenant}: {leaving} preempted job(s) "
        f"are still stopping; no more are preempted until they have, and the job is "
        f"considered again then.",
        {"preempted_jobs": 0, "leaving_jobs": leaving},
    )


def _preempt_for(
    job: JobRequest,
    models: frozenset[str] | None,
    placer: Placer,
    tenants: Mapping[str, TenantState],
    usage: dict[str, Usage],
    fs: FairShare,
    alive: list[RunningJob],
    model_of: Mapping[tuple[str, int], str],
    preemptions: list[Preemption],
) -> Placement | None:
    choice = choose_victims(placer, job, models, tenants, usage, alive, model_of)
    if choice is None:
        return None
    t = tenants[job.tenant]
    for v in choice.victims:
        for hp in v.placement:
            placer.cluster.release(hp)
        lost = placement_usage(v.placement, model_of)
        if v.tenant in usage:
            add(usage[v.tenant], lost, -1.0)
            fs.charge(v.tenant, _vector(lost), -1.0)
        alive.remove(v)
        guaranteed = {q.resource: q.guaranteed for q in t.quotas if q.guaranteed > 0}
        short = ", ".join(sorted(choice.resources))
        preemptions.append(
            Preemption(
                job_id=v.id,
                reason=(
                    f"Borrowed capacity reclaimed: tenant {job.tenant} is below its guarantee "
                    f"({', '.join(f'{k} {g:g}' for k, g in guaranteed.items())}) and job "
                    f"{job.id} is short of {short}; tenant {v.tenant} keeps at least its own "
                    f"guarantee on {short}."
                ),
                for_job=job.id,
                resources=tuple(sorted(choice.resources)),
            )
        )
    chosen = placer.find(job, models)
    if chosen is None:  # the victims' hosts could not be used after all; keep them freed
        return None
    return placer.commit(job, chosen)


def _vector(u: Mapping[str, float]) -> Vector:
    return (
        u.get("gpus", 0.0) * WHOLE_GPU_MILLI + u.get("gpu_milli", 0.0),
        u.get("vcpus", 0.0),
        u.get("memory_gib", 0.0),
    )


def _models_text(models: frozenset[str] | None) -> str:
    return "" if not models else " of model " + "/".join(sorted(models))


def _capacity_reason(
    job: JobRequest,
    models: frozenset[str] | None,
    initial: Placer,
    now: Placer,
    placed_in_cycle: Mapping[str, int],
    placed_total: int,
) -> PendingReason:
    """Why a job found no room at this point of the cycle. O(T + C)."""
    others = placed_total - placed_in_cycle.get(job.tenant, 0)
    if others and initial.find(job, models) is not None:
        # numbers are filled in at the end of the cycle (see `_fair_share_reason`)
        return PendingReason(PendingCode.WAITING_FOR_FAIR_SHARE, "", {"placed_for_others": others})
    return explain_no_room(job, models, now)


def _fair_share_reason(
    tenant: str,
    reason: PendingReason,
    shares: Mapping[str, float],
    lowest: list[tuple[str, float]],
) -> PendingReason:
    share = shares.get(tenant, 0.0)
    other = next((s for t, s in lowest if t != tenant), 0.0)
    others = int(reason.data["placed_for_others"])
    return PendingReason(
        PendingCode.WAITING_FOR_FAIR_SHARE,
        f"Waiting for fair share: the capacity this job needs went to {others} job(s) of "
        f"tenants with a lower weighted dominant share this cycle (yours is {share:.3f}, "
        f"the lowest other is {other:.3f}).",
        {"dominant_share": share, "lowest_other_share": other, "placed_for_others": others},
    )


def explain_no_room(job: JobRequest, models: frozenset[str] | None, placer: Placer) -> PendingReason:
    """Why no set of hosts can take the job now, with the closest numbers. O(C + cordoned)."""
    k, n = job.gpus_per_host, job.hosts
    cluster = placer.cluster
    shape = shape_of(job, models)
    fit_cordoned = sum(1 for h in cluster.hosts if h.cordoned and h.fit(job, models) is not None)
    open_fit = 0
    with_gpus = 0
    best = 0
    best_cpu = best_mem = 0
    share = job.is_share
    milli = job.milli_per_gpu
    for cid, members in cluster.classes.items():
        h = cluster.hosts[members[0]]
        if placer.class_candidate(cid, job, shape) is not None:
            open_fit += len(members)
        best_cpu = max(best_cpu, h.free_cores())
        best_mem = max(best_mem, h.free_mem())
        if k:
            usable = sum(
                1
                for i, f in enumerate(h.free)
                if (models is None or h.models[i] in models)
                and (f >= milli if share else (f == WHOLE_GPU_MILLI and not h.shared[i]))
            )
            best = max(best, usable)
            if usable >= k:
                with_gpus += len(members)
    if fit_cordoned and open_fit < n:
        return PendingReason(
            PendingCode.HOSTS_CORDONED,
            f"{fit_cordoned} host(s) that could take this job are cordoned; "
            f"{open_fit} of the {n} needed are open.",
            {"cordoned_hosts_that_fit": fit_cordoned, "open_hosts_that_fit": open_fit,
             "hosts_needed": n},
        )
    mtext = _models_text(models)
    if (job.require_kvm or job.image) and open_fit < n:
        why = _requirement_reason(job, models, cluster.hosts, open_fit)
        if why is not None:
            return why
    if open_fit >= n and job.single_leaf:
        per_leaf: dict[str, int] = {}
        for cid, members in cluster.classes.items():
            if placer.class_candidate(cid, job, shape) is not None:
                for i in members:
                    g = cluster.hosts[i].group
                    per_leaf[g] = per_leaf.get(g, 0) + (1 if g else 0)
        most = max(per_leaf.values(), default=0)
        return PendingReason(
            PendingCode.NO_SINGLE_LEAF,
            f"Waiting for one leaf switch: the job asks for all {n} hosts under one leaf, "
            f"{open_fit} hosts could take a member but at most {most} share a leaf.",
            {"hosts_needed": n, "hosts_that_fit": open_fit, "max_hosts_on_one_leaf": most},
        )
    if k and job.needs_nic_vfs and with_gpus >= n:
        plain = replace(job, rdma=False, hosts=1)
        without = sum(len(m) for cid, m in cluster.classes.items()
                      if cluster.hosts[m[0]].fit(plain, models) is not None)
        if open_fit < n <= without:
            return PendingReason(
                PendingCode.NO_HOST_WITH_FREE_NIC_VF,
                f"No room: {without} host(s) have the GPUs{mtext}, cores and memory, but "
                f"only {open_fit} also have a free NIC virtual function at PIX/PXB distance "
                f"from those GPUs (GPUDirect RDMA), {n} needed.",
                {"hosts_needed": n, "hosts_that_fit_without_nic": without,
                 "hosts_with_close_free_vf": open_fit},
            )
    if k and with_gpus < n:
        what = f"{milli} milli-GPU share(s) on {k} GPU(s)" if share else f"{k} connected free GPU(s)"
        return PendingReason(
            PendingCode.NO_HOST_WITH_FREE_GPUS,
            f"No room: {with_gpus} host(s) have {what}{mtext}, {n} needed; "
            f"the most any host has is {best}.",
            {"gpus_per_host": k, "gpu_milli": milli, "hosts_needed": n,
             "hosts_with_enough_gpus": with_gpus, "max_free_gpus_on_a_host": best},
        )
    return PendingReason(
        PendingCode.NO_HOST_WITH_FREE_CPU_MEMORY,
        f"No room: {open_fit} host(s) can give {job.vcpus_per_host} vCPUs and "
        f"{job.memory_gib_per_host} GiB on the NUMA nodes of free GPUs{mtext} (split in "
        f"proportion to the GPUs on each node), {n} needed "
        f"(most free on a host: {best_cpu} vCPUs, {best_mem} GiB).",
        {"vcpus_per_host": job.vcpus_per_host, "memory_gib_per_host": job.memory_gib_per_host,
         "hosts_needed": n, "hosts_that_fit": open_fit, "max_free_vcpus": best_cpu,
         "max_free_memory_gib": best_mem},
    )


def _requirement_reason(
    job: JobRequest, models: frozenset[str] | None, hosts: Sequence[Host], req_fit: int
) -> PendingReason | None:
    """A job short of hosts only because of what it requires of them: its boot image
    (in their cluster's catalogue) or KVM. None when room is short anyway. O(H)."""

    def fitting(j: JobRequest) -> int:
        return sum(1 for h in hosts if not h.cordoned and h.fit(j, models) is not None)

    if job.image:
        fit = fitting(replace(job, image=""))
        if fit >= job.hosts:
            holding = sum(1 for h in hosts if job.image in h.images and not h.cordoned)
            return PendingReason(
                PendingCode.NO_HOST_WITH_IMAGE,
                f"Waiting for a host with the image {job.image}: {holding} open host(s) are "
                f"in clusters whose catalogue holds it, {req_fit} of them have room, "
                f"{job.hosts} needed; {fit} host(s) elsewhere have room.",
                {"image": job.image, "hosts_needed": job.hosts, "hosts_with_image": holding,
                 "hosts_with_image_that_fit": req_fit, "hosts_that_fit_without_image": fit},
            )
    if not job.require_kvm:
        return None
    fit = fitting(replace(job, require_kvm=False))
    if fit < job.hosts:
        return None
    kvm_hosts = sum(1 for h in hosts if h.kvm and not h.cordoned)
    return PendingReason(
        PendingCode.NO_HOST_WITH_KVM,
        f"Waiting: no host with KVM can take this job: it requires KVM (hardware "
        f"virtualisation); {kvm_hosts} open host(s) run KVM, {req_fit} of them have room, "
        f"{job.hosts} needed; {fit} host(s) without KVM (QEMU emulation) have room.",
        {"hosts_needed": job.hosts, "kvm_hosts": kvm_hosts, "kvm_hosts_that_fit": req_fit,
         "hosts_that_fit_without_kvm": fit},
    )


def admissible(
    job: JobRequest, tenant: TenantState, hosts: tuple[HostState, ...] | list[HostState]
) -> PendingReason | None:
    """Whether ``job`` could EVER run: within the tenant's limits with nothing else running,
    and on ``hosts`` taken at full size (pass hosts with their total, not free, capacity;
    GPUs are treated as idle). None when it can; otherwise why not. O(H * fit)."""
    cluster_models = frozenset(g.model for h in hosts for g in h.gpus)
    reason, models = check_limits(tenant, {}, job, cluster_models)
    if reason is not None:
        d = reason.data
        return PendingReason(
            PendingCode.EXCEEDS_LIMIT,
            f"Can never run: the job asks for {d['request']:g} {d['resource']}, more than "
            f"the tenant's limit of {d['limit']:g}.",
            dict(d),
        )
    empty = [
        replace(h, gpus=tuple(replace(g, free_milli=WHOLE_GPU_MILLI, shared=False)
                              for g in h.gpus))
        for h in hosts
    ]
    work = [Host(h, i) for i, h in enumerate(empty)]
    open_fit = sum(1 for h in work if not h.cordoned and h.fit(job, models) is not None)
    if open_fit >= job.hosts:
        return None
    if job.require_kvm or job.image:  # it waits for such hosts (they may come)
        why = _requirement_reason(job, models, work, open_fit)
        if why is not None:
            return why
    all_fit = sum(1 for h in work if h.fit(job, models) is not None)
    if all_fit >= job.hosts:
        return PendingReason(
            PendingCode.HOSTS_CORDONED,
            f"Only {open_fit} open host(s) are large enough, {job.hosts} needed; "
            f"{all_fit - open_fit} more are cordoned.",
            {"open_hosts_that_fit": open_fit, "cordoned_hosts_that_fit": all_fit - open_fit,
             "hosts_needed": job.hosts},
        )
    largest = max((sum(1 for g in h.gpus if g.healthy and (models is None or g.model in models))
                   for h in hosts), default=0)
    return PendingReason(
        PendingCode.LARGER_THAN_ANY_HOST,
        f"Can never run: {all_fit} host(s) can hold {job.gpus_per_host} GPU(s){_models_text(models)}"
        f" with {job.vcpus_per_host} vCPUs and {job.memory_gib_per_host} GiB on the GPUs' NUMA "
        f"nodes, {job.hosts} needed (largest host has {largest} such GPUs).",
        {"hosts_that_fit": all_fit, "hosts_needed": job.hosts,
         "largest_host_gpus": largest, "gpus_per_host": job.gpus_per_host},
    )
