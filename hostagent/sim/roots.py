"""Build small root trees (only the files the checks read) for simulated hosts.

``hostagent/sim/roots/`` holds the generic trees built by ``build_root`` for each
variant (a made-up board, ``SIM-BOARD-8GPU``); the tests build their own pass and
fail trees with it too. ``kind_root(base, kind, variant)`` builds the tree of one
simulated machine: the DMI facts, driver and VBIOS of its kind
(``hostagent.sim.KINDS``) and its GPUs' PCI addresses, plus the variant's
misconfiguration. The demo's hosts read those (``var/sim-roots/<kind>/<variant>``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["VARIANTS", "build_root", "kind_overrides", "kind_root", "write_variants"]

GOOD: dict[str, Any] = {
    "smt_active": "0", "smt_control": "off", "hugepages_1g": 64, "thp": "always [madvise] never",
    "numa_balancing": "0", "rps_sock_flow_entries": "32768",
    "cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/sda2 intel_iommu=on iommu=pt "
               "default_hugepagesz=1G hugepagesz=1G hugepages=64 transparent_hugepage=madvise",
    "gpus": ("0000:07:00.0", "0000:0f:00.0"), "gpu_driver": "vfio-pci", "foreign_in_group": False,
    "kvm": True, "iommu_units": ("dmar0",), "data_fs": "xfs",
    # /sys/class/dmi/id; the NVIDIA driver's procfs files only when a driver version is given.
    "board_name": "SIM-BOARD-8GPU", "bios_version": "2.3.1", "bios_date": "03/14/2024",
    "driver_version": None, "vbios": None,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "good": {},
    "misconfigured/smt_on": {"smt_active": "1", "smt_control": "on"},
    "misconfigured/no_hugepages": {
        "hugepages_1g": 0, "cmdline": GOOD["cmdline"].replace(
            " default_hugepagesz=1G hugepagesz=1G hugepages=64", "")},
    "misconfigured/thp_always": {"thp": "[always] madvise never"},
}


def _put(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def build_root(root: Path | str, **overrides: Any) -> Path:
    """Write a host tree; ``overrides`` change the well-configured defaults."""
    o = {**GOOD, **overrides}
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _put(root, "sys/devices/system/cpu/smt/active", o["smt_active"] + "\n")
    _put(root, "sys/devices/system/cpu/smt/control", o["smt_control"] + "\n")
    _put(root, "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", f"{o['hugepages_1g']}\n")
    _put(root, "sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages",
         f"{o['hugepages_1g']}\n")
    _put(root, "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0\n")
    for node in (0, 1):
        _put(root, f"sys/devices/system/node/node{node}/hugepages/hugepages-1048576kB/"
                   "nr_hugepages", f"{o['hugepages_1g'] // 2}\n")
    _put(root, "sys/kernel/mm/transparent_hugepage/enabled", o["thp"] + "\n")
    _put(root, "proc/sys/kernel/numa_balancing", o["numa_balancing"] + "\n")
    _put(root, "proc/sys/net/core/rps_sock_flow_entries", o["rps_sock_flow_entries"] + "\n")
    _put(root, "proc/cmdline", o["cmdline"] + "\n")
    _put(root, "proc/mounts", "/dev/sda2 / ext4 rw,relatime 0 0\n"
                              "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
                              f"/dev/nvme0n1 /var/lib/libvirt/images {o['data_fs']} rw,noatime 0 0\n"
                              + ("hugetlbfs /dev/hugepages1G hugetlbfs rw,relatime,pagesize=1024M 0 0\n"
                                 if o["hugepages_1g"] else ""))
    _put(root, "proc/modules", ("kvm_intel 409600 0 - Live 0x0\nkvm 1138688 1 kvm_intel, Live 0x0\n"
                                if o["kvm"] else "")
         + "vfio_pci 16384 0 - Live 0x0\n")
    if o["kvm"]:
        _put(root, "dev/kvm", "")
    else:
        (root / "dev").mkdir(exist_ok=True)
        _put(root, "dev/null", "")
    for unit in o["iommu_units"]:
        _put(root, f"sys/class/iommu/{unit}/uevent", "")
    for key in ("bios_version", "bios_date", "board_name"):
        _put(root, f"sys/class/dmi/id/{key}", o[key] + "\n")
    if o["driver_version"]:
        # The format of the NVIDIA kernel module's /proc/driver/nvidia/version.
        _put(root, "proc/driver/nvidia/version",
             f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {o['driver_version']}  "
             "Release Build  (dvs-builder@U16-I3-A10-1-1)\n"
             "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    for n, gpu in enumerate(o["gpus"]):
        base = f"sys/bus/pci/devices/{gpu}"
        _put(root, f"{base}/vendor", "0x10de\n")
        _put(root, f"{base}/class", "0x030200\n")
        link = root / base / "driver"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(f"../../../../bus/pci/drivers/{o['gpu_driver']}", link)
        if o["driver_version"] and o["vbios"]:
            _put(root, f"proc/driver/nvidia/gpus/{gpu}/information",
                 f"Model: \t\t NVIDIA GPU\nIRQ:   \t\t 0\nVideo BIOS: \t {o['vbios']}\n"
                 f"Bus Location: \t {gpu}\n")
        group = 16 + n
        _put(root, f"sys/kernel/iommu_groups/{group}/devices/{gpu}", "")
        if o["foreign_in_group"] and n == 0:
            _put(root, "sys/bus/pci/devices/0000:08:00.0/vendor", "0x15b3\n")
            _put(root, "sys/bus/pci/devices/0000:08:00.0/class", "0x020000\n")
            _put(root, f"sys/kernel/iommu_groups/{group}/devices/0000:08:00.0", "")
    return root


def write_variants(base: Path | str) -> list[Path]:
    """(Re)build every shipped variant under ``base`` (``hostagent/sim/roots``)."""
    out = []
    for name, overrides in VARIANTS.items():
        path = Path(base) / name
        if path.exists():
            shutil.rmtree(path)
        out.append(build_root(path, **overrides))
    return out


def kind_overrides(kind: str) -> dict[str, Any]:
    """``build_root`` overrides that make a tree read like a machine of ``kind``:
    its board and BIOS (DMI), driver and VBIOS (the driver's procfs) and GPUs."""
    from hostagent.sim import KINDS

    if kind not in KINDS:
        raise ValueError(f"unknown simulated host kind {kind!r}; one of {sorted(KINDS)}")
    k = KINDS[kind]
    return {"board_name": k.board_name, "bios_version": k.bios_version,
            "driver_version": k.driver_version, "vbios": k.vbios,
            "gpus": tuple(f"0000:{bus:02x}:00.0" for bus in k.buses)}


_STAMP = ".coupler-sim-root.json"


def kind_root(base: Path | str, kind: str, variant: str = "good") -> Path:
    """``base/<kind>/<variant>``: the check tree of a simulated host of ``kind`` with the
    misconfiguration of ``variant`` (``VARIANTS``). Built once, atomically (a temporary
    tree renamed into place), and rebuilt when its definition changed; safe to call
    from several processes at once."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown sim root {variant!r}; one of {list(VARIANTS)}")
    overrides = {**kind_overrides(kind), **VARIANTS[variant]}
    stamp = json.dumps({"kind": kind, "variant": variant, **{**GOOD, **overrides}},
                       sort_keys=True, default=list)
    target = Path(base) / kind / variant
    try:
        if (target / _STAMP).read_text() == stamp:
            return target
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    build_root(tmp, **overrides)
    (tmp / _STAMP).write_text(stamp)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        try:
            os.replace(target, old / "tree")
        except OSError:
            pass  # another process replaced it first
    try:
        os.replace(tmp, target)
    except OSError:  # another process put its (identical) tree there first
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
