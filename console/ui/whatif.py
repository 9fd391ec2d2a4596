"""What-if: run the scheduler on the live queue with proposed quotas and
weights, next to a run with the current ones, and say which jobs would start,
wait or be preempted because of the change."""

import dataclasses
import math

from console.core.models import Job, Tenant
from console.core.snapshot import build_snapshot
from scheduler import plan


def _with_weight(snapshot, slug: str, weight: float | None):
    if weight is None:
        return snapshot
    tenants = tuple(
        dataclasses.replace(t, weight=float(weight)) if t.name == slug else t
        for t in snapshot.tenants
    )
    return dataclasses.replace(snapshot, tenants=tenants)


def _outcomes(result, queued_ids, running_ids) -> dict[str, tuple[str, str]]:
    """job id → (outcome, why) for every queued and running job."""
    out: dict[str, tuple[str, str]] = {}
    preempted = {p.job_id: p.reason for p in result.preemptions}
    placed = {p.job_id for p in result.placements}
    pending = dict(result.pending)
    for job_id in queued_ids:
        if job_id in placed:
            out[job_id] = ("start", "placed by this cycle")
        else:
            reason = pending.get(job_id)
            out[job_id] = ("wait", reason.message if reason else "not reached this cycle")
    for job_id in running_ids:
        if job_id in preempted:
            out[job_id] = ("preempt", preempted[job_id])
        else:
            out[job_id] = ("keep running", "")
    return out


def what_if(tenant: Tenant, *, weight=None, quotas: list[dict] | None = None,
            removed: list[str] | None = None) -> dict:
    """Compare plan(now) with plan(proposed). ``quotas``: rows with resource_key,
    guaranteed, limit; ``removed``: resource keys whose quota is dropped (no limit)."""
    overrides: dict[str, tuple[float, float]] = {}
    for row in quotas or []:
        overrides[row["resource_key"]] = (row["guaranteed"], row["limit"])
    for key in removed or []:
        overrides[key] = (0, math.inf)
    current = build_snapshot()
    proposed = _with_weight(build_snapshot(quota_overrides={tenant.slug: overrides}),
                            tenant.slug, weight)
    queued_ids = [j.id for j in current.queued]
    running_ids = [r.id for r in current.running]
    before = _outcomes(plan(current), queued_ids, running_ids)
    after = _outcomes(plan(proposed), queued_ids, running_ids)
    jobs = Job.objects.select_related("tenant").in_bulk([int(i) for i in before])
    rows = []
    for job_id, (outcome, why) in after.items():
        job = jobs.get(int(job_id))
        if job is None:
            continue
        was, _ = before.get(job_id, ("", ""))
        rows.append({"job": job, "before": was, "after": outcome, "why": why,
                     "changed": was != outcome})
    rows.sort(key=lambda r: (not r["changed"], r["after"] == "keep running", r["job"].pk))
    counts = {k: sum(1 for r in rows if r["after"] == k)
              for k in ("start", "wait", "preempt", "keep running")}
    return {"rows": rows, "counts": counts, "changed": sum(1 for r in rows if r["changed"])}
