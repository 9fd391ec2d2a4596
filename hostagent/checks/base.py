"""What every check shares: the context it reads from and how it reports."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostagent.protocol import CheckResult
from hostagent.protocol.checks import BY_ID

NVIDIA_VENDOR = "0x10de"


@dataclass(frozen=True)
class CheckContext:
    """Where checks read from and what the agent knows besides files.

    ``root`` is ``/`` on a host, or a captured/built tree.  ``gpus`` is the NVML
    inventory (``hostagent.inventory``) or None when NVML is unavailable.
    """

    root: Path = Path("/")
    gpus: Sequence[Mapping[str, Any]] | None = None
    driver_version: str | None = None
    baseline: Mapping[str, str] | None = None
    peers: Sequence[str] = ()
    passthrough_gpus: Sequence[str] | None = None
    userspace_nvme: bool = False
    roce_priority: int = 3
    data_paths: Sequence[str] = ("/var/lib/libvirt/images", "/data", "/scratch")
    latency_rounds: int = 20
    extra: Mapping[str, Any] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def read(self, rel: str) -> str | None:
        try:
            return self.path(rel).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None

    def link_name(self, rel: str) -> str | None:
        """Basename of a sysfs symlink (``driver``), or a tree's plain file text."""
        p = self.path(rel)
        try:
            return os.path.basename(os.readlink(p))
        except OSError:
            return self.read(rel)

    def pci_devices(self) -> list[str]:
        try:
            return sorted(p.name for p in self.path("sys/bus/pci/devices").iterdir())
        except OSError:
            return []

    def nvidia_gpus(self) -> list[str]:
        """PCI addresses of NVIDIA display/3D controllers (class 0x03xxxx)."""
        out = []
        for bdf in self.pci_devices():
            base = f"sys/bus/pci/devices/{bdf}"
            cls = self.read(f"{base}/class") or ""
            if self.read(f"{base}/vendor") == NVIDIA_VENDOR and cls.startswith("0x03"):
                out.append(bdf)
        return out


CheckFn = Callable[[CheckContext], CheckResult]


@dataclass(frozen=True)
class Check:
    id: str
    risk: str
    title: str
    standard: str
    remediation: str
    fn: Callable[[CheckContext, Check], CheckResult]

    def result(self, status: str, evidence: Mapping[str, Any], reason: str = "") -> CheckResult:
        return CheckResult(id=self.id, status=status, risk=self.risk, evidence=dict(evidence),
                           remediation=self.remediation if status != "pass" else "",
                           reason=reason, title=self.title)

    def run(self, ctx: CheckContext) -> CheckResult:
        try:
            return self.fn(ctx, self)
        except Exception as exc:  # a check must never crash the checklist
            return self.result("unknown", {}, f"check raised {type(exc).__name__}: {exc}")


REGISTRY: list[Check] = []


def check(id: str) -> Callable[[Callable[[CheckContext, Check], CheckResult]],
                               Callable[[CheckContext, Check], CheckResult]]:
    """Register the function that measures catalogue entry ``id``: its risk,
    title, standard and remediation come from ``hostagent.protocol.checks``."""
    spec = BY_ID[id]

    def register(fn: Callable[[CheckContext, Check], CheckResult]
                 ) -> Callable[[CheckContext, Check], CheckResult]:
        REGISTRY.append(Check(spec.id, spec.risk, spec.title, spec.standard, spec.remediation,
                              fn))
        return fn
    return register
