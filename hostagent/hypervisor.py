"""Which hypervisor this host can run: KVM, probed by ioctl, or QEMU's TCG.

``probe_kvm`` opens ``/dev/kvm``, asks ``KVM_GET_API_VERSION`` (12 on every
kernel since 2.6.22) and creates a VM (``KVM_CREATE_VM``), and reads the CPU's
virtualization flags (``vmx``/``svm``) from ``/proc/cpuinfo``.  ``choose``
picks the domain type: ``kvm`` when usable, otherwise ``qemu`` (TCG) with a
warning, unless the operator's configuration says otherwise.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KVM_API_VERSION", "HypervisorChoice", "KvmProbe", "choose", "cpu_virt_flags",
           "probe_kvm"]

# <linux/kvm.h>: _IO(KVMIO, 0x00) and _IO(KVMIO, 0x01), KVMIO = 0xAE.
KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_API_VERSION = 12


@dataclass(frozen=True)
class KvmProbe:
    usable: bool
    reason: str
    api_version: int | None = None
    cpu_flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"usable": self.usable, "reason": self.reason, "api_version": self.api_version,
                "cpu_flags": list(self.cpu_flags)}


def cpu_virt_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """``("vmx",)`` or ``("svm",)`` when the CPUs offer hardware virtualization."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return tuple(f for f in ("vmx", "svm") if f in flags)
    return ()


def probe_kvm(dev: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")) -> KvmProbe:
    flags = cpu_virt_flags(cpuinfo)
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        why = "absent (kvm module not loaded?)" if exc.errno == errno.ENOENT else exc.strerror
        return KvmProbe(False, f"cannot open {dev}: {why}", cpu_flags=flags)
    try:
        try:
            version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        except OSError as exc:
            return KvmProbe(False, f"KVM_GET_API_VERSION on {dev}: {exc.strerror}",
                            cpu_flags=flags)
        if version != KVM_API_VERSION:
            return KvmProbe(False, f"KVM API version {version}, expected {KVM_API_VERSION}",
                            version, flags)
        try:
            vm_fd = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        except OSError as exc:
            return KvmProbe(False, f"KVM_CREATE_VM on {dev}: {exc.strerror}", version, flags)
        os.close(vm_fd)
    finally:
        os.close(fd)
    if not flags:
        return KvmProbe(False, "/dev/kvm works but /proc/cpuinfo shows neither vmx nor svm",
                        version, flags)
    return KvmProbe(True, f"KVM API {version}, VM created, CPU flags {','.join(flags)}",
                    version, flags)


@dataclass(frozen=True)
class HypervisorChoice:
    domain_type: str  # kvm | qemu | test
    kvm: KvmProbe | None = None
    warnings: tuple[str, ...] = field(default=())

    def facts(self) -> dict[str, object]:
        return {"hypervisor": self.domain_type, "kvm_probe": self.kvm.to_dict() if self.kvm else None,
                "hypervisor_warnings": list(self.warnings)}


def choose(libvirt_uri: str, override: str = "", probe: KvmProbe | None = None) -> HypervisorChoice:
    """The domain type for this host: ``test`` on libvirt's test driver; the
    operator's ``override`` (``kvm``/``qemu``) if set; else ``kvm`` when the probe
    passes, ``qemu`` (TCG, slow) with a warning when it does not."""
    if libvirt_uri.startswith("test:"):
        return HypervisorChoice("test")
    probe = probe or probe_kvm()
    if override:
        warnings = ()
        if override == "kvm" and not probe.usable:
            warnings = (f"domain type kvm configured but KVM is not usable: {probe.reason}",)
        elif override == "qemu" and probe.usable:
            warnings = ("domain type qemu (TCG emulation) configured although KVM is usable",)
        return HypervisorChoice(override, probe, warnings)
    if probe.usable:
        return HypervisorChoice("kvm", probe)
    return HypervisorChoice("qemu", probe, (
        f"KVM not usable ({probe.reason}): VMs run under QEMU's TCG emulation, "
        "many times slower; no GPU passthrough performance",))
