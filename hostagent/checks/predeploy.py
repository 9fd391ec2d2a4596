"""Section 1 of CHECKS.md: the pre-deployment checklist."""

from __future__ import annotations

import re
from typing import Any

from hostagent import hypervisor
from hostagent.checks.base import Check, CheckContext, check
from hostagent.inventory import iommu_foreign
from hostagent.protocol import CheckResult

SMT_OFF = {"off", "forceoff", "notsupported"}


@check("bios.smt_disabled")
def smt_disabled(ctx: CheckContext, c: Check) -> CheckResult:
    active = ctx.read("sys/devices/system/cpu/smt/active")
    control = ctx.read("sys/devices/system/cpu/smt/control")
    ev = {"sys/devices/system/cpu/smt/active": active,
          "sys/devices/system/cpu/smt/control": control}
    if control in SMT_OFF or active == "0":
        return c.result("pass", ev)
    if active == "1" or control in ("on", "forceon"):
        return c.result("fail", ev)
    return c.result("unknown", ev, "smt/active and smt/control are not readable")


@check("firmware.baseline")
def firmware_baseline(ctx: CheckContext, c: Check) -> CheckResult:
    sources = {"bios_version": "/sys/class/dmi/id/bios_version",
               "bios_date": "/sys/class/dmi/id/bios_date",
               "board_name": "/sys/class/dmi/id/board_name"}
    observed: dict[str, Any] = {
        "bios_version": ctx.read("sys/class/dmi/id/bios_version"),
        "bios_date": ctx.read("sys/class/dmi/id/bios_date"),
        "board_name": ctx.read("sys/class/dmi/id/board_name"),
        "driver_version": ctx.driver_version,
    }
    sources["driver_version"] = "NVML"
    if observed["driver_version"] is None:
        # Without NVML, the kernel module's own report (present while it is loaded).
        observed["driver_version"] = _proc_driver_version(ctx)
        sources["driver_version"] = "/proc/driver/nvidia/version"
    vbios = []
    if ctx.gpus:
        vbios = sorted({str(g.get("vbios_version")) for g in ctx.gpus if g.get("vbios_version")})
        sources["vbios_version"] = "NVML"
    if not vbios:
        vbios = _proc_vbios(ctx)
        sources["vbios_version"] = "/proc/driver/nvidia/gpus/*/information"
    if vbios or ctx.gpus:
        observed["vbios_version"] = vbios[0] if len(vbios) == 1 else (vbios or None)
    ev = {"observed": observed, "baseline": dict(ctx.baseline or {}), "sources": sources}
    if not ctx.baseline:
        return c.result("unknown", ev, "no firmware baseline set for this host model")
    mismatches, missing = {}, []
    for key, want in ctx.baseline.items():
        have = observed.get(key)
        if have is None:
            missing.append(key)
        elif str(have) != str(want):
            mismatches[key] = {"have": have, "want": want}
    ev["mismatches"] = mismatches
    if mismatches:
        return c.result("fail", ev)
    if missing:
        return c.result("unknown", ev, f"not measurable here: {', '.join(missing)}")
    return c.result("pass", ev)


def _proc_driver_version(ctx: CheckContext) -> str | None:
    text = ctx.read("proc/driver/nvidia/version") or ""
    m = re.search(r"Kernel Module(?: for \S+)?\s+(\d[\w.-]*)", text)
    return m.group(1) if m else None


def _proc_vbios(ctx: CheckContext) -> list[str]:
    gpus_dir = ctx.path("proc/driver/nvidia/gpus")
    found = set()
    if gpus_dir.is_dir():
        for info in sorted(gpus_dir.glob("*/information")):
            m = re.search(r"^Video BIOS:\s*(\S+)", info.read_text(errors="replace"), re.M)
            if m:
                found.add(m.group(1))
    return sorted(found)


@check("kvm.available")
def kvm_available(ctx: CheckContext, c: Check) -> CheckResult:
    node = ctx.path("dev/kvm")
    if node.is_char_device():  # a real host: ask the kernel, not the module list
        probe = hypervisor.probe_kvm(node, ctx.path("proc/cpuinfo"))
        return c.result("pass" if probe.usable else "fail", {"probe": probe.to_dict()},
                        "" if probe.usable else probe.reason)
    dev = node.exists()
    modules_text = ctx.read("proc/modules")
    loaded = sorted({ln.split()[0] for ln in (modules_text or "").splitlines()
                     if ln.split() and ln.split()[0] in ("kvm_intel", "kvm_amd")})
    builtin = [m for m in ("kvm_intel", "kvm_amd") if ctx.path(f"sys/module/{m}").exists()]
    flags = hypervisor.cpu_virt_flags(ctx.path("proc/cpuinfo"))
    ev = {"/dev/kvm": dev, "/proc/modules kvm modules": loaded, "/sys/module": builtin,
          "cpu_flags": list(flags), "method": "captured tree: files only, no ioctl"}
    if dev and (loaded or builtin):
        if ctx.path("proc/cpuinfo").exists() and not flags:
            return c.result("fail", ev, "the CPUs show neither vmx nor svm")
        return c.result("pass", ev)
    if not ctx.path("dev").exists() and modules_text is None:
        return c.result("unknown", ev, "neither /dev nor /proc/modules is present in this tree")
    if modules_text is None and not builtin and dev:
        return c.result("unknown", ev, "/proc/modules not readable")
    return c.result("fail", ev)


@check("iommu.enabled")
def iommu_enabled(ctx: CheckContext, c: Check) -> CheckResult:
    cmdline = ctx.read("proc/cmdline")
    flags = re.findall(r"\b(intel_iommu=\S+|amd_iommu=\S+|iommu=\S+)", cmdline or "")
    units_dir = ctx.path("sys/class/iommu")
    units = sorted(p.name for p in units_dir.iterdir()) if units_dir.is_dir() else None
    ev = {"/sys/class/iommu": units, "/proc/cmdline iommu flags": flags}
    off = any(f in ("intel_iommu=off", "amd_iommu=off", "iommu=off") for f in flags)
    if units and not off:
        return c.result("pass", ev)
    if units is None and cmdline is None:
        return c.result("unknown", ev, "/sys/class/iommu and /proc/cmdline are not readable")
    return c.result("fail", ev)


@check("iommu.gpu_isolated")
def gpu_isolated(ctx: CheckContext, c: Check) -> CheckResult:
    gpus = ctx.nvidia_gpus()
    if not gpus:
        return c.result("unknown", {"gpus": []}, "no NVIDIA GPU found under /sys/bus/pci/devices")
    groups_dir = ctx.path("sys/kernel/iommu_groups")
    membership: dict[str, list[str]] = {}
    if groups_dir.is_dir():
        for g in groups_dir.iterdir():
            devs = g / "devices"
            if devs.is_dir():
                membership[g.name] = sorted(p.name for p in devs.iterdir())
    if not membership:
        return c.result("unknown", {"gpus": gpus}, "no IOMMU groups under /sys/kernel/iommu_groups")
    ev: dict[str, Any] = {}
    bad = False
    for gpu in gpus:
        group = next((n for n, devs in membership.items() if gpu in devs), None)
        if group is None:
            ev[gpu] = {"group": None}
            bad = True
            continue
        foreign = iommu_foreign(gpu, membership[group],
                                lambda dev: ctx.read(f"sys/bus/pci/devices/{dev}/class"))
        ev[gpu] = {"group": int(group) if group.isdigit() else group,
                   "devices": membership[group], "foreign": foreign}
        bad = bad or bool(foreign)
    return c.result("fail" if bad else "pass", ev)


def _acs_ctrl(config: bytes) -> int | None:
    """ACS Control register from a PCIe config space, or None without the capability."""
    off = 0x100
    seen = set()
    while off and off + 8 <= len(config) and off not in seen:
        seen.add(off)
        header = int.from_bytes(config[off:off + 4], "little")
        if header in (0, 0xFFFFFFFF):
            return None
        if header & 0xFFFF == 0x000D:
            return int.from_bytes(config[off + 6:off + 8], "little")
        off = (header >> 20) & 0xFFC
    return None


@check("pcie.acs")
def pcie_acs(ctx: CheckContext, c: Check) -> CheckResult:
    gpus = ctx.nvidia_gpus()
    if not gpus:
        return c.result("unknown", {}, "no NVIDIA GPU found under /sys/bus/pci/devices")
    ev: dict[str, Any] = {}
    unknown: list[str] = []
    bad = False
    for gpu in gpus:
        link = ctx.path(f"sys/bus/pci/devices/{gpu}")
        parts = [p for p in link.resolve().parts if re.fullmatch(r"[0-9a-f]{4,}:[0-9a-f]{2}:"
                                                                  r"[0-9a-f]{2}\.[0-7]", p)]
        bridges = parts[:-1]
        if not bridges:
            unknown.append(f"{gpu}: upstream bridges unknown (sysfs path not resolvable)")
            continue
        for br in bridges:
            try:
                config = ctx.path(f"sys/bus/pci/devices/{br}/config").read_bytes()
            except OSError:
                config = b""
            if len(config) <= 256:
                unknown.append(f"{br}: extended config space not readable (needs root)")
                continue
            ctrl = _acs_ctrl(config)
            ok = ctrl is not None and (ctrl & 0b11101) == 0b11101
            ev[br] = {"acs_ctrl": None if ctrl is None else hex(ctrl), "above": gpu}
            bad = bad or (ctrl is not None and not ok)
    if bad:
        return c.result("fail", ev)
    if unknown or not ev:
        return c.result("unknown", ev, "; ".join(unknown) or "no bridge found above the GPUs")
    return c.result("pass", ev)


@check("vfio.bound")
def vfio_bound(ctx: CheckContext, c: Check) -> CheckResult:
    gpus = list(ctx.passthrough_gpus) if ctx.passthrough_gpus is not None else ctx.nvidia_gpus()
    if not gpus:
        return c.result("unknown", {}, "no NVIDIA GPU found under /sys/bus/pci/devices")
    drivers = {g: ctx.link_name(f"sys/bus/pci/devices/{g}/driver") for g in gpus}
    ev = {"drivers": drivers, "source": "/sys/bus/pci/devices/<bdf>/driver"}
    return c.result("pass" if all(d == "vfio-pci" for d in drivers.values()) else "fail", ev)


@check("gpu.persistence_ecc")
def persistence_ecc(ctx: CheckContext, c: Check) -> CheckResult:
    if ctx.gpus is None:
        return c.result("unknown", {"source": "NVML"},
                        "NVML unavailable (no driver, or GPUs bound to vfio-pci)")
    if not ctx.gpus:
        return c.result("unknown", {"source": "NVML"}, "NVML reports no GPUs")
    ev: dict[str, Any] = {}
    bad = False
    unknown = False
    for g in ctx.gpus:
        item = {k: g.get(k) for k in ("persistence_mode", "ecc_mode", "retired_pages_pending",
                                      "remapped_rows_pending", "remapped_rows_failure")}
        ev[str(g.get("pci_bus_id", g.get("index")))] = item
        if item["persistence_mode"] is False or item["ecc_mode"] is False or any(
                item[k] for k in ("retired_pages_pending", "remapped_rows_pending",
                                  "remapped_rows_failure")):
            bad = True
        if item["persistence_mode"] is None or item["ecc_mode"] is None:
            unknown = True
    if bad:
        return c.result("fail", ev)
    if unknown:
        return c.result("unknown", ev, "NVML did not report persistence or ECC mode")
    return c.result("pass", ev)
