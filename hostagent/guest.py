"""What a job's guest says, and how a domain ended.

The guest writes lines ``COUPLER up`` and ``COUPLER exit <status>`` to its
virtio-serial port ``org.coupler.status.0``; QEMU appends them to the job's
channel file (``images.job_files(...).channel_log``).  ``GuestStatus`` reads
that file.  ``outcome`` turns libvirt's state *and reason* plus the reported
exit status into the job's end: only a clean poweroff with status 0 succeeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DomainEnd", "GuestStatus", "outcome", "read_guest_status"]

_LINE = re.compile(r"^COUPLER (up|exit (-?\d+))\s*$")

# libvirt's virDomainShutoffReason and virDomainCrashedReason, by number.
SHUTOFF_REASONS = {0: "unknown", 1: "shutdown", 2: "destroyed", 3: "crashed", 4: "migrated",
                   5: "saved", 6: "failed", 7: "from-snapshot", 8: "daemon"}
CRASHED_REASONS = {0: "unknown", 1: "panicked"}


@dataclass(frozen=True)
class GuestStatus:
    up: bool = False
    exit_status: int | None = None


def read_guest_status(channel_log: Path | str) -> GuestStatus:
    try:
        text = Path(channel_log).read_bytes().decode("utf-8", "replace")
    except OSError:
        return GuestStatus()
    up, status = False, None
    for line in text.replace("\r", "").split("\n"):
        m = _LINE.match(line.strip())
        if not m:
            continue
        if m.group(1) == "up":
            up = True
        else:
            status = int(m.group(2))
    return GuestStatus(up=up, exit_status=status)


@dataclass(frozen=True)
class DomainEnd:
    """A finished domain: ``succeeded`` or not, and why (for the job's reason)."""

    succeeded: bool
    reason: str
    exit_status: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"succeeded": self.succeeded, "reason": self.reason,
                "exit_status": self.exit_status}


def outcome(state: str, reason: str, guest: GuestStatus | None) -> DomainEnd | None:
    """The end of a domain in libvirt ``state`` (``shutoff``, ``crashed``, …) for
    ``reason``; None while it has not ended.  ``guest`` is None for a domain that
    has no guest channel (libvirt's test driver): then a shutdown is success."""
    if state == "crashed":
        return DomainEnd(False, "panicked" if reason == "panicked" else "crashed")
    if state != "shutoff":
        return None
    if reason == "crashed":  # QEMU killed (SIGKILL, OOM) or a panic with on_crash=destroy
        return DomainEnd(False, "crashed")
    if reason == "destroyed":
        return DomainEnd(False, "killed (destroyed outside Coupler)")
    if reason == "daemon":
        return DomainEnd(False, "killed by libvirtd while it reconnected")
    if reason == "failed":
        return DomainEnd(False, "QEMU failed to start")
    if reason not in ("shutdown",):
        # e.g. "unknown": found shut off after the host or libvirtd restarted.
        return DomainEnd(False, f"host-shutdown (found shut off, reason {reason})")
    if guest is None:
        return DomainEnd(True, "shut down")
    if guest.exit_status is None:
        return DomainEnd(False, "the guest powered off without reporting an exit status")
    if guest.exit_status == 0:
        return DomainEnd(True, "exit status 0", 0)
    return DomainEnd(False, f"exit status {guest.exit_status}", guest.exit_status)
