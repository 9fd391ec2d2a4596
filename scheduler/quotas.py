"""Quotas: usage accounting, hard limits, guarantees and borrowing.

Resource keys: ``gpus`` (whole GPUs, any model), ``gpus:<MODEL>`` (whole GPUs of one
model), ``gpu_milli`` (GPU shares), ``vcpus``, ``memory_gib``. A resource without a quota
row is unlimited with nothing guaranteed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from scheduler.model import (
    GPU_MILLI,
    GPUS,
    MEMORY_GIB,
    VCPUS,
    WHOLE_GPU_MILLI,
    HostPlacement,
    HostState,
    JobRequest,
    PendingCode,
    PendingReason,
    RunningJob,
    TenantState,
    gpus_of_model,
)

Usage = dict[str, float]
EPS = 1e-9


def job_request(job: JobRequest) -> Usage:
    """What a job adds to its tenant's usage, model-specific keys excluded. O(1)."""
    n = job.hosts
    out: Usage = {VCPUS: float(job.vcpus_per_host * n), MEMORY_GIB: float(job.memory_gib_per_host * n)}
    if job.gpus_per_host:
        if job.is_share:
            out[GPU_MILLI] = float(job.gpus_per_host * job.milli_per_gpu * n)
        else:
            out[GPUS] = float(job.gpus_per_host * n)
    return out


def placement_usage(hps: Iterable[HostPlacement], model_of: Mapping[tuple[str, int], str]) -> Usage:
    """Usage held by a placement; ``model_of`` maps (host, gpu index) to the GPU model."""
    out: Usage = {}
    for hp in hps:
        out[VCPUS] = out.get(VCPUS, 0.0) + len(hp.cores)
        out[MEMORY_GIB] = out.get(MEMORY_GIB, 0.0) + hp.memory_gib
        for gi in hp.gpu_indices:
            if hp.gpu_milli >= WHOLE_GPU_MILLI:
                out[GPUS] = out.get(GPUS, 0.0) + 1
                model = model_of.get((hp.host, gi))
                if model:
                    key = gpus_of_model(model)
                    out[key] = out.get(key, 0.0) + 1
            else:
                out[GPU_MILLI] = out.get(GPU_MILLI, 0.0) + hp.gpu_milli
    return out


def gpu_models(hosts: Iterable[HostState]) -> dict[tuple[str, int], str]:
    return {(h.name, g.index): g.model for h in hosts for g in h.gpus}


def usage_from_running(
    running: Iterable[RunningJob], hosts: Sequence[HostState]
) -> dict[str, Usage]:
    """Per-tenant usage derived from running jobs (for building `TenantState.usage`)."""
    models = gpu_models(hosts)
    out: dict[str, Usage] = {}
    for r in running:
        u = out.setdefault(r.tenant, {})
        for k, v in placement_usage(r.placement, models).items():
            u[k] = u.get(k, 0.0) + v
    return out


def add(usage: Usage, delta: Mapping[str, float], sign: float = 1.0) -> None:
    for k, v in delta.items():
        usage[k] = usage.get(k, 0.0) + sign * v


def check_limits(
    tenant: TenantState,
    usage: Mapping[str, float],
    job: JobRequest,
    cluster_models: frozenset[str],
) -> tuple[PendingReason | None, frozenset[str] | None]:
    """Whether ``job`` stays within the tenant's limits; also narrows the GPU models the
    job may use to those whose ``gpus:<MODEL>`` limit leaves room. O(q) for q quota rows."""
    req = job_request(job)
    for resource, amount in req.items():
        q = tenant.quota(resource)
        if q is None or amount <= 0:
            continue
        have = usage.get(resource, 0.0)
        if have + amount > q.limit + EPS:
            over = have + amount - q.limit
            return (
                PendingReason(
                    PendingCode.OVER_LIMIT,
                    f"Over the {resource} limit by {_num(over)}: the job asks for {_num(amount)}, "
                    f"the tenant uses {_num(have)} of its limit {_num(q.limit)}.",
                    {
                        "resource": resource,
                        "limit": q.limit,
                        "usage": have,
                        "request": amount,
                        "over_by": over,
                    },
                ),
                None,
            )
    models: frozenset[str] | None = frozenset(job.gpu_models) if job.gpu_models else None
    whole = req.get(GPUS, 0.0)
    if whole:
        wanted = models if models is not None else cluster_models
        ok = set()
        blocked: list[tuple[str, float, float]] = []
        for m in wanted:
            q = tenant.quota(gpus_of_model(m))
            have = usage.get(gpus_of_model(m), 0.0)
            if q is None or have + whole <= q.limit + EPS:
                ok.add(m)
            else:
                blocked.append((m, have, q.limit))
        if not ok:
            m, have, lim = min(blocked) if blocked else ("", 0.0, 0.0)
            return (
                PendingReason(
                    PendingCode.OVER_LIMIT,
                    f"Over the gpus:{m} limit by {_num(have + whole - lim)}: the job asks for "
                    f"{_num(whole)} GPUs, the tenant uses {_num(have)} of its limit {_num(lim)}.",
                    {
                        "resource": gpus_of_model(m),
                        "limit": lim,
                        "usage": have,
                        "request": whole,
                        "over_by": have + whole - lim,
                    },
                ),
                None,
            )
        if blocked:
            models = frozenset(ok)
    return None, models


def has_guarantee(tenant: TenantState) -> bool:
    return any(q.guaranteed > 0 for q in tenant.quotas)


def within_guarantee(tenant: TenantState, usage: Mapping[str, float], job: JobRequest) -> bool:
    """True when the job asks for a guaranteed resource and, on every resource it asks for
    that has a quota row, usage plus request stays within ``guaranteed``."""
    req = job_request(job)
    covered = False
    for resource, amount in req.items():
        if amount <= 0:
            continue
        q = tenant.quota(resource)
        if q is None:
            continue
        if usage.get(resource, 0.0) + amount > q.guaranteed + EPS:
            return False
        if q.guaranteed > 0:
            covered = True
    return covered


def is_contested(resource: str, contested: Collection[str] | None) -> bool:
    """Whether ``resource`` is among ``contested`` (None: every resource is). A contested
    ``gpus`` covers the per-model ``gpus:<MODEL>`` keys too."""
    if contested is None or resource in contested:
        return True
    return resource.startswith(GPUS + ":") and GPUS in contested


def may_lose(
    tenant: TenantState,
    usage: Mapping[str, float],
    lost: Mapping[str, float],
    contested: Collection[str] | None = None,
) -> bool:
    """Whether taking ``lost`` away keeps the tenant at or above its guarantee on every
    guaranteed, contested resource the lost work used (only work borrowed on what the
    preemptor is short of may be preempted). ``contested`` None: every resource counts.

    A tenant below its guarantee on a resource nobody is short of (memory, say) still
    lends what it borrows on the contested ones (GPUs)."""
    for resource, amount in lost.items():
        if amount <= 0 or not is_contested(resource, contested):
            continue
        q = tenant.quota(resource)
        if q is None or q.guaranteed <= 0:
            continue
        if usage.get(resource, 0.0) - amount < q.guaranteed - EPS:
            return False
    return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"
