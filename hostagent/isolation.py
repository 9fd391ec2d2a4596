"""Proof of a running VM's isolation, read back from the kernel.

After libvirt started a domain the agent reads, for QEMU's process and its vCPU
threads: which cgroup(s) QEMU is in (under Coupler's partition?), the effective
cpuset and memory nodes, the memory limits, the vCPU threads' CPU affinity
and scheduling policy, and compares them with the spec.  The result is the
``evidence`` of a provision result: ``verified`` true, or the list of
``mismatches``.  Works on cgroup v2, v1 and hybrid hosts (v1 controllers are
read from their own hierarchies).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from coupler_common.cpulist import parse_cpulist
from hostagent.protocol import ProvisionSpec

__all__ = ["collect", "domain_group_dir", "qemu_pid", "vcpu_threads"]

SCHED_POLICIES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
                  5: "SCHED_IDLE"}
# QEMU names vCPU threads "CPU <n>/KVM" under KVM and "CPU <n>/TCG" under TCG.
VCPU_THREAD_RE = re.compile(r"^CPU (\d+)/(KVM|TCG)$")
PID_DIRS = (Path("/run/libvirt/qemu"), Path("/var/run/libvirt/qemu"))


def qemu_pid(name: str, pid_dirs: Iterable[Path] = PID_DIRS) -> int | None:
    """QEMU's pid for a running domain, from libvirt's pid file."""
    for d in pid_dirs:
        f = d / f"{name}.pid"
        try:
            pid = int(f.read_text().strip())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            return pid
    return None


def vcpu_threads(pid: int) -> dict[int, int]:
    """vCPU index -> thread id for a QEMU process (KVM or TCG threads)."""
    out: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue
        m = VCPU_THREAD_RE.match(comm)
        if m:
            out[int(m.group(1))] = int(task.name)
    return out


def _cgroups_of(pid: int | str) -> dict[str, str]:
    """controller (``"cpuset"``, ``"memory"``, … or ``""`` for v2) -> path, from
    /proc/<pid>/cgroup."""
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _hid, controllers, path = line.split(":", 2)
        if not controllers:
            out[""] = path
        for c in controllers.split(","):
            out[c] = path
    return out


def _mounts() -> dict[str, str]:
    """controller -> mount point (``""`` for the cgroup2 mount)."""
    out: dict[str, str] = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        if f[2] == "cgroup2":
            out.setdefault("", f[1])
        elif f[2] == "cgroup":
            for opt in f[3].split(","):
                out.setdefault(opt, f[1])
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _group_dir(mounts: dict[str, str], groups: dict[str, str], controller: str) -> Path | None:
    """The directory of the thread's group for ``controller`` (v1 hierarchy if the
    controller is bound there, else the v2 group)."""
    if controller in mounts and controller in groups:
        return Path(mounts[controller] + groups[controller])
    if "" in mounts and "" in groups:
        d = Path(mounts[""] + groups[""])
        if (d / "cgroup.controllers").exists() and controller in (
                _read(d / "cgroup.controllers") or "").split():
            return d
    return None


def _domain_group(path: str) -> str:
    """libvirt puts vCPU and emulator threads in children of the domain's group;
    the domain's own group is the one whose limits memtune/blkiotune set."""
    return re.sub(r"/(vcpu\d+|emulator|iothread\d+)$", "", path)


def domain_group_dir(pid: int, controller: str) -> Path | None:
    """The directory of the domain's own group (above libvirt's vcpuN/emulator
    children) for ``controller``, for the QEMU process ``pid``."""
    groups = {k: _domain_group(v) for k, v in _cgroups_of(pid).items()}
    return _group_dir(_mounts(), groups, controller)


def collect(spec: ProvisionSpec, pid: int, *, partition: str = "") -> dict[str, Any]:
    """The evidence for a running domain of ``spec`` whose QEMU is ``pid``."""
    mounts = _mounts()
    groups = _cgroups_of(pid)
    mismatches: list[str] = []
    evidence: dict[str, Any] = {"qemu_pid": pid, "cgroups": groups}

    # 1. QEMU inside Coupler's partition, in every hierarchy that limits it.
    if partition:
        part_dir = partition.strip("/").split("/")[0]
        outside = sorted(c or "v2" for c, p in groups.items()
                         if c in ("", "cpuset", "cpu", "memory", "blkio")
                         and f"/{part_dir}" not in p)
        if outside:
            mismatches.append(f"QEMU is outside the partition {partition} for {outside}")

    # 2. Limits of the domain's group, as the kernel holds them.
    limits: dict[str, str | None] = {}
    mem_dir = _group_dir(mounts, {k: _domain_group(v) for k, v in groups.items()}, "memory")
    if mem_dir is not None:
        if (mem_dir / "memory.max").exists():
            limits["memory.max"] = _read(mem_dir / "memory.max")
            limits["memory.high"] = _read(mem_dir / "memory.high")
        else:
            limits["memory.limit_in_bytes"] = _read(mem_dir / "memory.limit_in_bytes")
            limits["memory.soft_limit_in_bytes"] = _read(mem_dir / "memory.soft_limit_in_bytes")
    cg = spec.cgroup
    hard = limits.get("memory.max") or limits.get("memory.limit_in_bytes")
    if cg.memory_max is not None:
        if hard is None or not hard.isdigit() or abs(int(hard) - cg.memory_max) > 4096:
            mismatches.append(f"memory hard limit is {hard}, wanted {cg.memory_max}")
    soft = limits.get("memory.high") or limits.get("memory.soft_limit_in_bytes")
    if cg.memory_high is not None:
        if soft is None or not soft.isdigit() or abs(int(soft) - cg.memory_high) > 4096:
            mismatches.append(f"memory soft limit is {soft}, wanted {cg.memory_high}")
    cpuset_dir = _group_dir(mounts, groups, "cpuset")
    if cpuset_dir is not None:
        mems = _read(cpuset_dir / "cpuset.mems.effective") or _read(cpuset_dir / "cpuset.mems")
        limits["cpuset.mems"] = mems
        if mems is not None and parse_cpulist(mems) != frozenset(spec.numa_nodes):
            mismatches.append(f"cpuset.mems is {mems}, wanted NUMA nodes {list(spec.numa_nodes)}")
    blk_dir = _group_dir(mounts, {k: _domain_group(v) for k, v in groups.items()}, "blkio")
    if blk_dir is not None:
        for f in ("blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"):
            if (blk_dir / f).exists():
                limits[f] = _read(blk_dir / f)
    io_dir = _group_dir(mounts, {k: _domain_group(v) for k, v in groups.items()}, "io")
    if io_dir is not None and (io_dir / "io.max").exists():
        limits["io.max"] = _read(io_dir / "io.max")
    evidence["limits"] = limits

    # 3. vCPU threads: affinity and policy.
    threads = vcpu_threads(pid)
    vcpus: dict[str, Any] = {}
    for index, tid in sorted(threads.items()):
        try:
            affinity = sorted(os.sched_getaffinity(tid))
            policy = SCHED_POLICIES.get(os.sched_getscheduler(tid), "unknown")
        except OSError as exc:
            vcpus[str(index)] = {"tid": tid, "error": exc.strerror}
            continue
        vcpus[str(index)] = {"tid": tid, "affinity": affinity, "policy": policy}
        want = spec.cpus[index] if index < len(spec.cpus) else None
        if affinity != [want]:
            mismatches.append(f"vCPU {index} runs on CPUs {affinity}, planned {want}")
        if policy != "SCHED_BATCH":
            mismatches.append(f"vCPU {index} has policy {policy}, wanted SCHED_BATCH")
    if len(threads) != spec.vcpus:
        mismatches.append(f"{len(threads)} vCPU threads found, {spec.vcpus} planned")
    evidence["vcpus"] = vcpus
    evidence["mismatches"] = mismatches
    evidence["verified"] = not mismatches
    return evidence
