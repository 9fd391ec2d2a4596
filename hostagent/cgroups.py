"""The one seam between the host agent and cgroupfs (cgroup v2, v1 and hybrid hosts).

On a libvirt host QEMU's cgroup is made by libvirt under Coupler's partition
(``<resource><partition>``, domain_xml.HostOptions.partition) and its limits come
from libvirt's tuning elements; this module then only *reads back* what the kernel
holds (``hostagent.isolation``).  Writing a job group directly (``apply_spec``) is
for what libvirt cannot express, and only into a real cgroupfs: ``layout`` tells
v2, v1 and hybrid hosts apart and ``check_cgroupfs`` refuses tmpfs (a hybrid
host's ``/sys/fs/cgroup``) or a plain directory, where writes would "succeed"
and limit nothing.

Each job gets a group ``<root>/<job name>`` with ``cpuset.cpus``,
``cpuset.mems``, ``memory.high``, ``memory.max``, ``io.max`` and ``cpu.weight``
written in the kernel's formats (Documentation/admin-guide/cgroup-v2.rst).
Every function is idempotent.  ``root`` is configurable so the same code runs
on a temporary directory tree in tests and on ``/sys/fs/cgroup/<slice>`` on a
host.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from coupler_common.cpulist import format_cpulist
from coupler_common.naming import CGROUP_SLICE
from hostagent.protocol import CgroupSettings, IoLimit, ProvisionSpec, validate_domain_name

__all__ = [
    "CONTROLLERS",
    "DEFAULT_ROOT",
    "CgroupError",
    "apply_spec",
    "check_cgroupfs",
    "create_job_cgroup",
    "enable_controllers",
    "ensure_partition",
    "format_io_max",
    "job_cgroup_path",
    "layout",
    "read_memory_events",
    "read_values",
    "remove_job_cgroup",
    "write_value",
]

DEFAULT_ROOT = Path("/sys/fs/cgroup") / CGROUP_SLICE
CONTROLLERS = ("cpuset", "cpu", "memory", "io")


class CgroupError(RuntimeError):
    """A cgroup file could not be read or written; names the file and the value."""


# statfs(2) f_type values (linux/magic.h).
CGROUP2_SUPER_MAGIC = 0x63677270
CGROUP_SUPER_MAGIC = 0x0027E0EB
TMPFS_MAGIC = 0x01021994


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("f_rest", ctypes.c_byte * 112)]


def _fs_type(path: Path) -> int | None:
    """statfs(2)'s f_type of ``path`` (None where statfs is unavailable)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    buf = _Statfs()
    if libc.statfs(str(path).encode(), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise CgroupError(f"statfs {path}: {os.strerror(err)}")
    return int(buf.f_type) & 0xFFFFFFFF


def check_cgroupfs(path: Path | str) -> str:
    """``"cgroup2"`` or ``"cgroup"`` (v1) for a path on cgroupfs (its nearest existing
    ancestor); raises CgroupError naming the filesystem otherwise."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    kind = _fs_type(p)
    if kind == CGROUP2_SUPER_MAGIC:
        return "cgroup2"
    if kind == CGROUP_SUPER_MAGIC:
        return "cgroup"
    what = "tmpfs" if kind == TMPFS_MAGIC else f"filesystem type {kind:#x}"
    raise CgroupError(
        f"{path} is not on cgroupfs but on {what}: writing limits there would limit nothing "
        "(on a hybrid host the cgroup v2 mount is /sys/fs/cgroup/unified)")


def layout(mounts: str | None = None) -> dict[str, object]:
    """This host's cgroup layout from /proc/self/mounts: ``{"mode": "v2"|"v1"|"hybrid",
    "v2_mount": path or "", "v1": {controller: mount}}``."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            mounts = ""
    v2, v1 = "", {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        if fields[2] == "cgroup2" and not v2:
            v2 = fields[1]
        elif fields[2] == "cgroup":
            for opt in fields[3].split(","):
                if opt in ("cpuset", "cpu", "cpuacct", "memory", "blkio", "pids", "devices",
                           "freezer", "hugetlb", "net_cls", "perf_event"):
                    v1.setdefault(opt, fields[1])
    mode = "hybrid" if v2 and v1 else "v2" if v2 else "v1" if v1 else "none"
    return {"mode": mode, "v2_mount": v2, "v1": v1}


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as fh:  # one write() per value, as the kernel expects
            fh.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from exc


def write_value(path: Path, value: str) -> None:
    """One value into one cgroup file (the caller checked it is cgroupfs)."""
    _write(path, value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read {path}: {exc.strerror or exc}") from exc


def job_cgroup_path(root: Path | str, name: str) -> Path:
    """``<root>/<name>``; the name is a domain name, so it cannot escape the root."""
    return Path(root) / validate_domain_name(name)


def enable_controllers(root: Path | str, controllers: Iterable[str] = CONTROLLERS, *,
                       required: Iterable[str] = ()) -> list[str]:
    """Create ``root`` and enable the controllers it offers for its children.

    Returns the controllers now enabled; a controller the kernel does not offer
    at ``root`` (e.g. bound to cgroup v1) is left out rather than failing, unless
    it is ``required``: then CgroupError names it and where to enable it.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    missing = _missing_controllers(root, required)
    if missing:
        raise CgroupError(missing)
    available_file = root / "cgroup.controllers"
    subtree = root / "cgroup.subtree_control"
    if not subtree.exists():
        return []
    available = set(_read(available_file).split()) if available_file.exists() else set()
    wanted = [c for c in controllers if c in available]
    if wanted:
        _write(subtree, " ".join(f"+{c}" for c in wanted))
    return wanted


def _missing_controllers(root: Path, controllers: Iterable[str]) -> str:
    """A message naming the wanted controllers ``root``'s parent does not pass down
    (empty when all are there, or when ``root`` is not a cgroup v2 group)."""
    parent_subtree = root.parent / "cgroup.subtree_control"
    own = root / "cgroup.controllers"
    if not own.exists():
        return ""
    available = set(_read(own).split())
    absent = [c for c in controllers if c not in available]
    if not absent:
        return ""
    where = f"{root.parent}/cgroup.subtree_control"
    if parent_subtree.exists():
        where += f" (has: {_read(parent_subtree).strip() or 'nothing'})"
    return (f"cgroup controller(s) {', '.join(absent)} not available in {root}: enable them in "
            f"{where}; on a hybrid host they are bound to cgroup v1")


def format_io_max(limit: IoLimit) -> str:
    """``8:16 rbps=2097152 wbps=max riops=max wiops=120`` (unset keys are ``max``)."""
    parts = [limit.device]
    for key in IoLimit.KEYS:
        value = getattr(limit, key)
        parts.append(f"{key}={'max' if value is None else value}")
    return " ".join(parts)


def _bytes_or_max(value: int | None) -> str:
    return "max" if value is None else str(value)


def create_job_cgroup(root: Path | str, name: str, *, cpus: Iterable[int], mems: Iterable[int],
                      settings: CgroupSettings) -> Path:
    """Create (or update) the job's group and write its limits; returns its path."""
    path = job_cgroup_path(root, name)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CgroupError(f"cannot create cgroup {path}: {exc.strerror or exc}") from exc
    cpulist = format_cpulist(cpus)
    memlist = format_cpulist(mems)
    # memory.max is written before memory.high so that lowering both never leaves high > max.
    writes = [
        ("cpuset.cpus", cpulist),
        ("cpuset.mems", memlist),
        ("cpu.weight", str(settings.cpu_weight)),
        ("memory.max", _bytes_or_max(settings.memory_max)),
        ("memory.high", _bytes_or_max(settings.memory_high)),
    ]
    writes += [("io.max", format_io_max(limit)) for limit in settings.io_max]
    for filename, value in writes:
        if filename.startswith("cpuset.") and not value:
            continue  # empty = inherit from the parent; nothing to write
        target = path / filename
        if not target.exists() and (path / "cgroup.controllers").exists():
            controller = filename.partition(".")[0]
            raise CgroupError(f"cannot write {filename} in {path}: the {controller} controller "
                              f"is not enabled for it (add +{controller} to "
                              f"{path.parent}/cgroup.subtree_control)")
        _write(target, value)
    return path


def apply_spec(root: Path | str, spec: ProvisionSpec, *, require_cgroupfs: bool = True) -> Path:
    """The job's group for a provision spec: its cores, NUMA nodes and cgroup settings.
    Refuses a root that is not on cgroupfs (``require_cgroupfs=False``: a test tree)."""
    if require_cgroupfs:
        check_cgroupfs(root)
    return create_job_cgroup(root, spec.name, cpus=spec.cpus, mems=spec.numa_nodes,
                             settings=spec.cgroup)


def read_values(path: Path | str) -> dict[str, str]:
    """The limit files of a group as the kernel shows them (for evidence and tests)."""
    out: dict[str, str] = {}
    for filename in ("cpuset.cpus", "cpuset.mems", "cpu.weight", "memory.high", "memory.max",
                     "io.max"):
        f = Path(path) / filename
        if f.exists():
            out[filename] = _read(f).strip()
    return out


def read_memory_events(path: Path | str) -> dict[str, int]:
    """``memory.events`` as a dict (``low``, ``high``, ``max``, ``oom``, ``oom_kill``, ...)."""
    f = Path(path) / "memory.events"
    events: dict[str, int] = {}
    for lineno, line in enumerate(_read(f).splitlines(), 1):
        if not line.strip():
            continue
        key, _, value = line.partition(" ")
        try:
            events[key] = int(value)
        except ValueError:
            raise CgroupError(f"{f}:{lineno}: cannot parse {line!r}") from None
    return events


def _is_cgroupfs(path: Path) -> bool:
    """True when ``path`` lies on a mounted cgroup2 filesystem."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    best, fstype = "", ""
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mnt = fields[1]
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best, fstype = mnt, fields[2]
    return fstype == "cgroup2"


def remove_job_cgroup(root: Path | str, name: str, *, timeout: float = 5.0) -> bool:
    """Remove the job's group (killing what still runs in it); True if it existed."""
    path = job_cgroup_path(root, name)
    if not path.exists():
        return False
    if not _is_cgroupfs(path):
        shutil.rmtree(path)  # a plain directory tree (tests, captured roots)
        return True
    # Children first: cgroupfs removes a group only when it has no children or tasks.
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        _rmdir_cgroup(child, timeout)
    _rmdir_cgroup(path, timeout)
    return True


def _rmdir_cgroup(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}") from exc
        kill = path / "cgroup.kill"
        if kill.exists():
            _write(kill, "1")
        time.sleep(0.05)


def partition_dirs(partition: str) -> list[str]:
    """libvirt's directory names for a partition: ``/coupler/gpu`` ->
    ``["coupler.partition", "gpu.partition"]``."""
    return [f"{part}.partition" for part in partition.strip("/").split("/") if part]


def ensure_partition(partition: str, *, mounts: str | None = None) -> list[Path]:
    """Create libvirt's ``<resource><partition>`` groups in every mounted hierarchy.

    Without systemd libvirt does not create a partition: it must exist, at the root
    of each hierarchy (v1 controllers and the v2 mount), before a domain starts.
    A v1 cpuset child starts with no CPUs or memory nodes, so those are copied
    from its parent. Idempotent; returns the groups."""
    if not partition.strip("/"):
        return []
    lay = layout(mounts)
    roots = {str(m) for m in dict(lay["v1"]).values()}  # type: ignore[arg-type]
    if lay["v2_mount"]:
        roots.add(str(lay["v2_mount"]))
    made = []
    for mount in sorted(roots):
        group = Path(mount)
        for name in partition_dirs(partition):
            parent, group = group, group / name
            if not group.exists():
                try:
                    group.mkdir()
                except OSError as exc:
                    raise CgroupError(f"cannot create partition {group}: "
                                      f"{exc.strerror or exc}") from exc
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (group / f).exists() and not _read(group / f).strip():
                    _write(group / f, _read(parent / f).strip())
        made.append(group)
    return made
