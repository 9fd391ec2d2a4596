"""Pre-flight: is this spec possible on this host, before anything is defined?

Each check returns a specific message naming what is missing, so the console
can retry the job elsewhere or show why it waits, and no half-made domain is
left behind: CPUs and NUMA nodes exist, free 1 GiB hugepages on the right
nodes and a hugetlbfs mount for that size, a memory-lock limit that can be
raised for ``<locked/>``, KVM where the job requires it, disk space for the
overlay.  (The image's presence and checksum: ``images.verify_image``.)
"""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

from coupler_common.cpulist import parse_cpulist
from hostagent.protocol import ProvisionSpec

__all__ = ["PreflightError", "can_raise_memlock", "check", "hugetlbfs_mounts", "online_cpus"]

CAP_SYS_RESOURCE = 24
GIB = 1024**3


class PreflightError(RuntimeError):
    """The spec cannot run on this host; the text says why (prefixed ``pre-flight:``)."""


def online_cpus(sys: Path = Path("/sys")) -> set[int]:
    try:
        return set(parse_cpulist((sys / "devices/system/cpu/online").read_text()))
    except OSError:
        return set(range(os.cpu_count() or 1))


def numa_nodes(sys: Path = Path("/sys")) -> set[int]:
    try:
        return set(parse_cpulist((sys / "devices/system/node/online").read_text()))
    except OSError:
        return {0}


def hugetlbfs_mounts(mounts_text: str | None = None) -> dict[str, str]:
    """mount point -> page size (``"1G"``, ``"2M"``; default size ``""``) of hugetlbfs mounts."""
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/self/mounts").read_text()
        except OSError:
            return {}
    out = {}
    for line in mounts_text.splitlines():
        f = line.split()
        if len(f) >= 4 and f[2] == "hugetlbfs":
            size = next((o.split("=", 1)[1] for o in f[3].split(",") if o.startswith("pagesize=")),
                        "")
            out[f[1]] = _normal_size(size.upper())
    return out


def _normal_size(size: str) -> str:
    """``1024M`` (what /proc/mounts shows) -> ``1G``; ``2048K`` -> ``2M``."""
    units = {"K": 1, "M": 1024, "G": 1024**2}
    if not size or size[-1] not in units or not size[:-1].isdigit():
        return size
    kib = int(size[:-1]) * units[size[-1]]
    for unit in ("G", "M", "K"):
        if kib % units[unit] == 0:
            return f"{kib // units[unit]}{unit}"
    return size


def _free_1g_pages(node: int, sys: Path) -> int | None:
    f = sys / f"devices/system/node/node{node}/hugepages/hugepages-1048576kB/free_hugepages"
    try:
        return int(f.read_text())
    except (OSError, ValueError):
        return None


def _has_cap(cap: int) -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    except (OSError, ValueError):
        pass
    return False


def can_raise_memlock() -> bool:
    """Can libvirt raise QEMU's RLIMIT_MEMLOCK (for ``<locked/>`` and memtune's
    hard_limit)? Only with CAP_SYS_RESOURCE or an unlimited hard limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return hard == resource.RLIM_INFINITY or _has_cap(CAP_SYS_RESOURCE)


def check(spec: ProvisionSpec, *, sys: Path = Path("/sys"), mounts_text: str | None = None,
          domain_type: str = "kvm", overlay_dir: Path | None = None,
          image_size: int = 0) -> None:
    """Raise PreflightError naming the first thing this host lacks for ``spec``."""
    cpus = online_cpus(sys)
    missing = sorted(set(spec.cpus) - cpus)
    if missing:
        raise PreflightError(f"pre-flight: CPUs {missing} do not exist on this host "
                             f"(online: {sorted(cpus)})")
    nodes = numa_nodes(sys)
    missing = sorted(set(spec.numa_nodes) - nodes)
    if missing:
        raise PreflightError(f"pre-flight: NUMA node(s) {missing} do not exist on this host "
                             f"(online: {sorted(nodes)})")
    if spec.require_kvm and domain_type != "kvm":
        raise PreflightError(f"pre-flight: the job requires KVM; this host runs {domain_type}")
    if spec.hugepages:
        sizes = hugetlbfs_mounts(mounts_text)
        if not any(size == "1G" for size in sizes.values()):
            raise PreflightError(
                "pre-flight: no hugetlbfs mount with pagesize=1G (mounted: "
                f"{sizes or 'none'}); mount -t hugetlbfs -o pagesize=1G none /dev/hugepages1G")
        need = spec.memory_mib // 1024
        per_node = {n: _free_1g_pages(n, sys) for n in spec.numa_nodes}
        free = sum(v or 0 for v in per_node.values())
        if free < need:
            raise PreflightError(
                f"pre-flight: {need} free 1 GiB hugepages needed on NUMA node(s) "
                f"{list(spec.numa_nodes)}, {free} free ({per_node})")
    if spec.gpus or spec.gpu_shares:
        # <locked/>: libvirt raises QEMU's RLIMIT_MEMLOCK to the VM's size.
        _soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        wanted = spec.memory_mib * 1024 * 1024
        if hard != resource.RLIM_INFINITY and hard < wanted and not _has_cap(CAP_SYS_RESOURCE):
            raise PreflightError(
                f"pre-flight: locked memory ({spec.memory_mib} MiB) needs RLIMIT_MEMLOCK "
                f"raised, but the limit is {hard} bytes and CAP_SYS_RESOURCE is missing")
    if overlay_dir is not None:
        overlay_dir.mkdir(parents=True, exist_ok=True)
        free_bytes = shutil.disk_usage(overlay_dir).free
        # An overlay starts small; demand room for the image's size or 1 GiB.
        need_bytes = max(image_size, GIB)
        if free_bytes < need_bytes:
            raise PreflightError(f"pre-flight: {free_bytes // 2**20} MiB free in {overlay_dir}, "
                                 f"{need_bytes // 2**20} MiB needed for the job's disk overlay")
