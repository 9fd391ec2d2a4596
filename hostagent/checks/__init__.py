"""Host checks from CHECKS.md sections 1 and 2.

``run_checks(root=...)`` runs every check against ``/`` or a captured tree and
returns one ``CheckResult`` per id; a check without evidence says ``unknown``
with the reason and never crashes the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hostagent.checks import network, predeploy, tuning
from hostagent.checks.base import REGISTRY, Check, CheckContext
from hostagent.checks.network import echo_responder, tcp_round_trip_us
from hostagent.protocol import CheckResult

__all__ = ["CHECK_IDS", "Check", "CheckContext", "echo_responder", "run_checks",
           "tcp_round_trip_us"]

_ = (network, predeploy, tuning)  # imported for their registrations
# The order of CHECKS.md, so reports read like the checklist.
ORDER = ("bios.smt_disabled", "firmware.baseline", "network.hop_latency", "kvm.available",
         "iommu.enabled", "iommu.gpu_isolated", "pcie.acs", "vfio.bound", "gpu.persistence_ecc",
         "memory.hugepages_1g", "sched.batch", "storage.raw_xfs", "memory.thp_madvise",
         "numa.balancing_off", "net.rps_flow_entries", "rdma.roce_pfc", "rdma.roce_dcqcn",
         "storage.userspace_nvme")
REGISTRY.sort(key=lambda c: ORDER.index(c.id))
CHECK_IDS: tuple[str, ...] = tuple(c.id for c in REGISTRY)


def run_checks(root: Path | str = "/", *, gpus: Sequence[Mapping[str, Any]] | None = None,
               driver_version: str | None = None, baseline: Mapping[str, str] | None = None,
               peers: Iterable[str] = (), only: Iterable[str] | None = None,
               **options: Any) -> list[CheckResult]:
    """Run the checks (all, or the ids in ``only``) and return their results in order."""
    ctx = CheckContext(root=Path(root), gpus=gpus, driver_version=driver_version,
                       baseline=baseline, peers=tuple(peers), **options)
    wanted = set(only) if only is not None else None
    if wanted is not None and (unknown := wanted - set(CHECK_IDS)):
        raise ValueError(f"unknown check ids: {sorted(unknown)}")
    return [c.run(ctx) for c in REGISTRY if wanted is None or c.id in wanted]
