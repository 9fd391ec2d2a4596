"""This machine as a Coupler host: its console inventory and its daemons.

For ``make demo-host`` and the hypervisor tests: the inventory document the
console registers (``console.core.actions.inventory.do_register_host``) built
from this machine's sysfs (``inventory.sysfs_inventory``), and
``ensure_daemons`` starting ``virtlogd`` and ``libvirtd`` where no service
manager does (a container without systemd).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from hostagent.inventory import sysfs_inventory

__all__ = ["DaemonError", "console_inventory", "ensure_daemons", "libvirtd_running",
           "reserve_hugepages"]

HUGEPAGES_1G = Path("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages")
HUGETLBFS_1G = Path("/dev/hugepages1G")

PID_FILES = {"libvirtd": Path("/run/libvirtd.pid"), "virtlogd": Path("/run/virtlogd.pid")}
SOCKET = Path("/run/libvirt/libvirt-sock")


class DaemonError(RuntimeError):
    """libvirtd/virtlogd are missing or will not start; the text says which."""


def console_inventory(root: Path | str = "/", *, kind: str = "local") -> dict[str, Any]:
    """The console's inventory document for this machine (no GPUs: a CPU-only host).
    Core 0 is reserved for the host (agent, libvirtd) when there is more than one."""
    inv = sysfs_inventory(root)
    nodes = inv.get("numa_nodes") or [{"node": 0, "cpus": inv.get("cpus") or [0],
                                       "memory_mib": 1024, "hugepages": {}}]
    cpus = sorted(c for n in nodes for c in n.get("cpus") or [])
    return {
        "cpu_count": len(cpus),
        "memory_gib": sum(int(n.get("memory_mib") or 0) for n in nodes) // 1024,
        "reserved_cores": cpus[:1] if len(cpus) > 1 else [],
        "facts": {"kind": kind, "smt_active": inv.get("smt_active")},
        "numa_nodes": [{"node": n["node"], "cpus": n.get("cpus") or [],
                        "memory_gib": int(n.get("memory_mib") or 0) // 1024,
                        "hugepages_1g": int((n.get("hugepages") or {}).get("1048576kB") or 0)}
                       for n in nodes],
        "gpus": [], "nics": [], "links": [],
    }


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()


def libvirtd_running() -> bool:
    return _alive(PID_FILES["libvirtd"]) and SOCKET.exists()


def ensure_daemons(timeout: float = 20.0) -> list[str]:
    """Start virtlogd and libvirtd (``-d``, as root) unless they run; returns what
    was started. Raises DaemonError when they are not installed or do not come up."""
    started = []
    for daemon in ("virtlogd", "libvirtd"):
        if _alive(PID_FILES[daemon]):
            continue
        exe = shutil.which(daemon) or f"/usr/sbin/{daemon}"
        if not os.path.exists(exe):
            raise DaemonError(f"{daemon} is not installed (apt-get install libvirt-daemon-system)")
        if os.geteuid() != 0:
            raise DaemonError(f"{daemon} is not running and only root can start it")
        proc = subprocess.run([exe, "-d"], capture_output=True, text=True, timeout=30,
                              check=False)
        if proc.returncode != 0:
            raise DaemonError(f"{daemon} -d: {proc.stderr.strip() or proc.returncode}")
        started.append(daemon)
    deadline = time.monotonic() + timeout
    while not libvirtd_running():
        if time.monotonic() > deadline:
            raise DaemonError(f"libvirtd did not open {SOCKET} within {timeout:.0f} s")
        time.sleep(0.2)
    return started


def reserve_hugepages(count: int) -> dict[str, Any]:
    """Reserve ``count`` 1 GiB hugepages (as many as memory allows at run time) and
    mount hugetlbfs with pagesize=1G on /dev/hugepages1G."""
    try:
        HUGEPAGES_1G.write_text(str(count))
        got = int(HUGEPAGES_1G.read_text())
    except OSError as exc:
        raise DaemonError(f"cannot reserve 1 GiB hugepages: {exc}") from exc
    HUGETLBFS_1G.mkdir(parents=True, exist_ok=True)
    mounted = any(len(f) > 2 and f[1] == str(HUGETLBFS_1G)
                  for f in (ln.split() for ln in Path("/proc/self/mounts").read_text().splitlines()))
    if not mounted:
        subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=1G", "none",
                        str(HUGETLBFS_1G)], check=True)
    return {"asked": count, "reserved": got, "mount": str(HUGETLBFS_1G)}
