"""Host checks from CHECKS.md sections 1 and 2.

``run_checks(root=...)`` runs every check against ``/`` or a captured tree and
returns one ``CheckResult`` per id; a check without evidence says ``unknown``
with the reason and never crashes the list.

What each check is (id, risk, title, remediation) is ``catalogue``: pure data
that the console reads too. The checks themselves (``runner`` and the modules
it registers) load on first use of a name below, so importing the catalogue
loads no driver (NVML, sysfs readers) into the console's process.
"""

from __future__ import annotations

from typing import Any

from hostagent.protocol.checks import CHECK_IDS

__all__ = ["CHECK_IDS", "REGISTRY", "Check", "CheckContext", "echo_responder", "run_checks",
           "tcp_round_trip_us"]

_FROM_RUNNER = frozenset(__all__) - {"CHECK_IDS"}


def __getattr__(name: str) -> Any:
    if name in _FROM_RUNNER:
        from hostagent.checks import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
