"""Running the host checks of CHECKS.md sections 1 and 2.

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
from hostagent.protocol.checks import CHECK_IDS

__all__ = ["CHECK_IDS", "REGISTRY", "Check", "CheckContext", "echo_responder", "run_checks",
           "tcp_round_trip_us"]

_ = (network, predeploy, tuning)  # imported for their registrations
# The catalogue's order (CHECKS.md's), so reports read like the checklist.
REGISTRY.sort(key=lambda c: CHECK_IDS.index(c.id))
if [c.id for c in REGISTRY] != list(CHECK_IDS):
    raise RuntimeError("every catalogue entry needs exactly one check function")


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
