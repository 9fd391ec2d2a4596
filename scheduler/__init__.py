"""Coupler's decision core: fair share, quotas, topology-aware placement, gangs, GPU
sharing and preemption. Pure: frozen dataclasses in, a `Plan` out; no Django, no I/O."""

from scheduler.model import (
    DEFAULT_POLICY,
    GpuState,
    HostPlacement,
    HostState,
    JobRequest,
    NicState,
    NumaState,
    PendingCode,
    PendingReason,
    Placement,
    Plan,
    Preemption,
    Quota,
    RunningJob,
    Snapshot,
    TenantState,
    WorkloadClass,
)
from scheduler.planner import admissible, plan
from scheduler.policies import POLICIES, fragmentation_rate, workload_from_jobs
from scheduler.quotas import usage_from_running

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "GpuState",
    "HostPlacement",
    "HostState",
    "JobRequest",
    "NicState",
    "NumaState",
    "PendingCode",
    "PendingReason",
    "Placement",
    "Plan",
    "Preemption",
    "Quota",
    "RunningJob",
    "Snapshot",
    "TenantState",
    "WorkloadClass",
    "admissible",
    "fragmentation_rate",
    "plan",
    "usage_from_running",
    "workload_from_jobs",
]
