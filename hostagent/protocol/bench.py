"""µs per heartbeat decode and validation: msgspec (what the console runs) against
the same type declared for pydantic v2 (only for the comparison; skipped when
pydantic is not installed: ``pip install --target DIR pydantic`` and
``PYTHONPATH=DIR``). ``python -m hostagent.protocol bench``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from hostagent.protocol.messages import CheckResult, DomainEnd, Heartbeat, XidEvent
from hostagent.protocol.wire import decode


def sample_heartbeats() -> dict[str, bytes]:
    """A usual beat of a busy host (4 VMs, one ended), and one with a check round."""
    names = [f"coupler-job-{i}" for i in range(100, 105)]
    beat = Heartbeat(
        host="dgx-a100-01", sent_at=datetime.now(UTC), agent_version="0.3.0",
        domains=tuple(names[:4]), gpus=tuple(f"0000:{b:02x}:00.0" for b in range(8)),
        stopped_domains=(names[4],),
        domain_states={**{n: "running" for n in names[:4]}, names[4]: "shutoff"},
        domain_ends={names[4]: DomainEnd(succeeded=True, reason="exit status 0", exit_status=0)},
        console_tail={n: ("[ OK ] Reached target Multi-User System.", "login:")
                      for n in names[:4]},
        hypervisor={"hypervisor": "kvm", "hypervisor_warnings": [], "cgroup_layout": "v2",
                    "hugetlbfs_1g": True, "cpu_mode": "host-passthrough"},
        xid_events=(XidEvent(kind="xid", line="NVRM: Xid (PCI:0000:07:00): 13, Graphics "
                             "Exception", xid=13, pci="0000:07:00", fault="application"),),
        latency_endpoint="10.0.0.1:7471")
    checks = tuple(CheckResult(id=f"check.{i}", status="pass", risk="high",
                               evidence={"observed": i, "limit": 10}, title=f"Check {i}")
                   for i in range(18))
    return {"usual": msgspec.json.encode(beat),
            "with 18 checks": msgspec.json.encode(msgspec.structs.replace(beat, checks=checks))}


def _pydantic_decoder() -> Callable[[bytes], Any] | None:
    try:
        import pydantic
    except ImportError:
        return None
    from typing import Literal

    class PDomainEnd(pydantic.BaseModel):
        succeeded: pydantic.StrictBool
        reason: str
        exit_status: int | None = None

    class PXidEvent(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(strict=True)
        kind: Literal["xid", "aer", "kvm"]
        line: str
        message: str = ""
        xid: int | None = None
        pci: str | None = None
        pid: int | None = None
        process: str | None = None
        timestamp: str | None = None
        fault: Literal["application", "hardware", "driver", "unknown"] = "unknown"
        name: str = ""
        action: str = ""
        host: str = ""
        cordon: bool = False

    class PCheckResult(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(strict=True)
        id: str
        status: Literal["pass", "fail", "unknown"]
        risk: Literal["critical", "high", "medium", "low"]
        evidence: dict[str, Any] = {}
        remediation: str = ""
        reason: str = ""
        title: str = ""

    class PHeartbeat(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(strict=True, frozen=True)
        version: int = 2
        host: str = ""
        sent_at: pydantic.AwareDatetime
        agent_version: str = ""
        domains: tuple[str, ...] = ()
        gpus: tuple[str, ...] = ()
        healthy: bool = True
        load: dict[str, float] = {}
        stopped_domains: tuple[str, ...] | None = None
        domain_states: dict[str, str] | None = None
        domain_ends: dict[str, PDomainEnd] | None = None
        console_tail: dict[str, tuple[str, ...]] | None = None
        hypervisor: dict[str, Any] | None = None
        libvirt_error: str = ""
        xid_events: tuple[PXidEvent, ...] = ()
        checks: tuple[PCheckResult, ...] | None = None
        latency_endpoint: str | None = None

    return PHeartbeat.model_validate_json


def _us(fn: Callable[[bytes], Any], body: bytes, n: int) -> float:
    fn(body)  # warm caches (decoders, validators)
    best = float("inf")
    for _ in range(3):  # the best of three: least disturbed by other processes
        start = time.process_time()
        for _ in range(n):
            fn(body)
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def report(n: int = 20000) -> str:
    pyd = _pydantic_decoder()
    lines = [f"CPU µs per heartbeat, decode + validate from JSON bytes (best of 3 × {n}):"]
    for label, body in sample_heartbeats().items():
        row = f"  {label:15} {len(body):5} B   msgspec {_us(lambda b: decode(Heartbeat, b), body, n):6.1f}"
        if pyd is not None:
            row += f"   pydantic v2 {_us(pyd, body, n):6.1f}"
        lines.append(row)
    if pyd is None:
        lines.append("  pydantic: not installed, skipped")
    return "\n".join(lines)
