"""Messages exchanged between the console and the host agents.

The console imports this module (and only this one) from ``hostagent``; every
message is a frozen dataclass with ``to_dict()`` for the wire (JSON through
Celery) and ``from_dict()`` that validates what arrives.  Commands
(``ProvisionSpec``) reject unknown keys so a typo fails loudly; reports
(heartbeat, Xid event, check result) ignore unknown keys so a newer agent can
talk to an older console.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHECK_STATUSES",
    "FAULTS",
    "RISKS",
    "CgroupSettings",
    "CheckResult",
    "GpuShare",
    "Heartbeat",
    "ImageSpec",
    "IoLimit",
    "NumaCell",
    "ProvisionResult",
    "ProvisionSpec",
    "SpecError",
    "XidEvent",
    "validate_domain_name",
]

DOMAIN_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PCI_ADDRESS_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
MAJ_MIN_RE = re.compile(r"^\d+:\d+$")
CHECK_STATUSES = ("pass", "fail", "unknown")
RISKS = ("critical", "high", "medium", "low")
FAULTS = ("application", "hardware", "driver", "unknown")
EVENT_KINDS = ("xid", "aer", "kvm")
MAX_DOMAIN_NAME = 64


class SpecError(ValueError):
    """A message does not satisfy its schema; the text names the field."""


def validate_domain_name(name: object) -> str:
    """A libvirt domain name: ``[A-Za-z0-9_.-]``, 1 to 64 characters."""
    if not isinstance(name, str) or not DOMAIN_NAME_RE.match(name):
        raise SpecError(
            f"name: {name!r} is not a valid domain name "
            f"(1-{MAX_DOMAIN_NAME} characters from A-Z a-z 0-9 _ . -)"
        )
    if name in (".", ".."):
        raise SpecError(f"name: {name!r} is not a valid domain name")
    return name


def _int(data: Mapping[str, Any], key: str, *, minimum: int | None = None,
         maximum: int | None = None, where: str = "") -> int:
    value = data.get(key)
    label = f"{where}{key}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{label}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(f"{label}: {value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise SpecError(f"{label}: {value} is above the maximum {maximum}")
    return value


def _opt_int(data: Mapping[str, Any], key: str, *, minimum: int = 0, where: str = "") -> int | None:
    value = data.get(key)
    if value is None or value == "max":
        return None
    return _int(data, key, minimum=minimum, where=where)


def _int_list(data: Mapping[str, Any], key: str, *, where: str = "") -> tuple[int, ...]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        raise SpecError(f"{where}{key}: expected a list of integers, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise SpecError(f"{where}{key}: {item!r} is not a non-negative integer")
        out.append(item)
    if len(set(out)) != len(out):
        raise SpecError(f"{where}{key}: duplicate entries in {out}")
    return tuple(out)


def _str(data: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise SpecError(f"{key}: expected a string, got {value!r}")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{key}: expected a string or null, got {value!r}")
    return value


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SpecError(f"{what}: expected an object, got {type(data).__name__}")
    return data


def _reject_unknown(data: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"{what}: unknown keys {unknown}")


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MDEV_TYPE_RE = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")


@dataclass(frozen=True)
class GpuShare:
    """A time-sliced share of one GPU, given to the VM as a mediated device.

    ``milli`` is the share the scheduler allocated (1–999); ``mdev_uuid`` names
    the mediated device the agent creates on the GPU and passes through
    (``hostdev type='mdev'``); ``mdev_type`` is the vGPU profile on the host
    (empty: the agent picks the smallest profile that fits the share).
    """

    pci: str
    milli: int
    mdev_uuid: str
    mdev_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pci": self.pci, "milli": self.milli, "mdev_uuid": self.mdev_uuid,
                "mdev_type": self.mdev_type}

    @classmethod
    def from_dict(cls, data: object, *, where: str = "gpu_shares") -> GpuShare:
        d = _mapping(data, where)
        _reject_unknown(d, {"pci", "milli", "mdev_uuid", "mdev_type"}, where)
        pci = d.get("pci")
        pci = pci.lower() if isinstance(pci, str) else pci
        if not isinstance(pci, str) or not PCI_ADDRESS_RE.match(pci):
            raise SpecError(f"{where}.pci: {d.get('pci')!r} is not a PCI address like 0000:3b:00.0")
        milli = _int(d, "milli", minimum=1, maximum=999, where=f"{where}.")
        uuid = d.get("mdev_uuid")
        if not isinstance(uuid, str) or not UUID_RE.match(uuid.lower()):
            raise SpecError(f"{where}.mdev_uuid: {uuid!r} is not a UUID")
        mdev_type = d.get("mdev_type") or ""
        if not isinstance(mdev_type, str) or not MDEV_TYPE_RE.match(mdev_type):
            raise SpecError(f"{where}.mdev_type: {mdev_type!r} is not an mdev type name")
        return cls(pci=pci, milli=milli, mdev_uuid=uuid.lower(), mdev_type=mdev_type)


@dataclass(frozen=True)
class NumaCell:
    """One guest NUMA cell and the host NUMA node behind it: the vCPUs of the cell are
    pinned, in order, to ``cpus`` (host cores of ``host_node``) and its memory is bound
    to ``host_node``. A spec's cells, in order, hold its vCPUs 0..n-1 and its memory."""

    host_node: int
    cpus: tuple[int, ...]
    memory_mib: int

    def to_dict(self) -> dict[str, Any]:
        return {"host_node": self.host_node, "cpus": list(self.cpus),
                "memory_mib": self.memory_mib}

    @classmethod
    def from_dict(cls, data: object, *, where: str = "numa_cells") -> NumaCell:
        d = _mapping(data, where)
        _reject_unknown(d, {"host_node", "cpus", "memory_mib"}, where)
        node = _int(d, "host_node", minimum=0, where=f"{where}.")
        cpus = _int_list(d, "cpus", where=f"{where}.")
        memory = _int(d, "memory_mib", minimum=0, where=f"{where}.")
        if not cpus and not memory:
            raise SpecError(f"{where}: a cell needs vCPUs or memory")
        return cls(host_node=node, cpus=cpus, memory_mib=memory)


@dataclass(frozen=True)
class IoLimit:
    """Bandwidth and IOPS limits of one block device; None means unlimited.

    ``device`` is ``MAJ:MIN`` for cgroup ``io.max`` and an absolute ``/dev``
    path for the domain's ``blkiotune``.
    """

    device: str
    rbps: int | None = None
    wbps: int | None = None
    riops: int | None = None
    wiops: int | None = None

    KEYS = ("rbps", "wbps", "riops", "wiops")

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "rbps": self.rbps, "wbps": self.wbps,
                "riops": self.riops, "wiops": self.wiops}

    @classmethod
    def from_dict(cls, data: object, *, kind: str = "path", where: str = "io") -> IoLimit:
        d = _mapping(data, where)
        _reject_unknown(d, {"device", *cls.KEYS}, where)
        device = d.get("device")
        if kind == "majmin":
            if not isinstance(device, str) or not MAJ_MIN_RE.match(device):
                raise SpecError(f"{where}.device: {device!r} is not MAJ:MIN (e.g. 8:16)")
        elif not isinstance(device, str) or not re.match(r"^/dev/[A-Za-z0-9_./-]+$", device):
            raise SpecError(f"{where}.device: {device!r} is not a /dev path")
        limits = {k: _opt_int(d, k, minimum=1, where=f"{where}.") for k in cls.KEYS}
        return cls(device=device, **limits)


FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
IMAGE_FORMATS = ("qcow2", "raw")


@dataclass(frozen=True)
class ImageSpec:
    """The boot image of a job's VM, from the console's image catalogue.

    ``disk`` (and ``kernel``/``initrd`` for direct kernel boot) are file names in
    the agent's images directory, never paths: a job cannot name a file elsewhere
    on the host.  ``sha256`` is the disk file's checksum (empty: not verified);
    the agent refuses a disk whose checksum differs.  ``cmdline`` is the kernel
    command line of a direct kernel boot (the agent adds the serial console).
    """

    name: str
    disk: str
    format: str = "qcow2"
    sha256: str = ""
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    min_disk_gib: int = 0

    KEYS = ("name", "disk", "format", "sha256", "kernel", "initrd", "cmdline", "min_disk_gib")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_dict(cls, data: object) -> ImageSpec:
        d = _mapping(data, "image")
        _reject_unknown(d, set(cls.KEYS), "image")
        name = _str(d, "name")
        if not name or len(name) > 100:
            raise SpecError(f"image.name: {name!r} must be 1-100 characters")
        files = {}
        for key in ("disk", "kernel", "initrd"):
            value = _str(d, key, "")
            if (value or key == "disk") and not FILE_NAME_RE.match(value):
                raise SpecError(f"image.{key}: {value!r} is not a file name in the images "
                                "directory ([A-Za-z0-9_.+-], no slashes)")
            files[key] = value
        if files["initrd"] and not files["kernel"]:
            raise SpecError("image.initrd: an initrd needs a kernel")
        fmt = _str(d, "format", "qcow2")
        if fmt not in IMAGE_FORMATS:
            raise SpecError(f"image.format: {fmt!r} is not one of {IMAGE_FORMATS}")
        sha = _str(d, "sha256", "").lower()
        if sha and not SHA256_RE.match(sha):
            raise SpecError(f"image.sha256: {sha!r} is not a SHA-256 hex digest")
        cmdline = _str(d, "cmdline", "")
        if len(cmdline) > 1024 or any(c in cmdline for c in "\n\r\0"):
            raise SpecError("image.cmdline: at most 1024 characters on one line")
        min_gib = _int({"m": d.get("min_disk_gib", 0)}, "m", minimum=0, maximum=65536,
                       where="image.min_disk_gib/")
        return cls(name=name, format=fmt, sha256=sha, cmdline=cmdline, min_disk_gib=min_gib,
                   **files)


@dataclass(frozen=True)
class CgroupSettings:
    """The job's cgroup v2 limits; memory in bytes, None means ``max``."""

    cpu_weight: int = 100
    memory_high: int | None = None
    memory_max: int | None = None
    io_max: tuple[IoLimit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_weight": self.cpu_weight,
            "memory_high": self.memory_high,
            "memory_max": self.memory_max,
            "io_max": [io.to_dict() for io in self.io_max],
        }

    @classmethod
    def from_dict(cls, data: object) -> CgroupSettings:
        d = _mapping(data, "cgroup")
        _reject_unknown(d, {"cpu_weight", "memory_high", "memory_max", "io_max"}, "cgroup")
        weight = _int({"cpu_weight": d.get("cpu_weight", 100)}, "cpu_weight",
                      minimum=1, maximum=10000, where="cgroup.")
        high = _opt_int(d, "memory_high", minimum=1, where="cgroup.")
        hard = _opt_int(d, "memory_max", minimum=1, where="cgroup.")
        if high is not None and hard is not None and high > hard:
            raise SpecError(f"cgroup.memory_high ({high}) is above cgroup.memory_max ({hard})")
        io_raw = d.get("io_max", [])
        if not isinstance(io_raw, list | tuple):
            raise SpecError(f"cgroup.io_max: expected a list, got {io_raw!r}")
        io = tuple(IoLimit.from_dict(x, kind="majmin", where=f"cgroup.io_max[{i}]")
                   for i, x in enumerate(io_raw))
        return cls(cpu_weight=weight, memory_high=high, memory_max=hard, io_max=io)


@dataclass(frozen=True)
class ProvisionSpec:
    """Everything a host needs to start one job's VM; sent by the console."""

    job_id: str
    name: str
    vcpus: int
    memory_mib: int
    cpus: tuple[int, ...]
    numa_nodes: tuple[int, ...]
    gpus: tuple[str, ...]
    hugepages: bool
    cgroup: CgroupSettings = field(default_factory=CgroupSettings)
    io_limits: tuple[IoLimit, ...] = ()
    io_weight: int | None = None
    gpu_shares: tuple[GpuShare, ...] = ()
    # The boot image (catalogue entry); None: a domain without disk (test driver).
    image: ImageSpec | None = None
    # A job that must run under KVM (not QEMU's TCG emulation).
    require_kvm: bool = False
    # Guest NUMA topology mirroring the host nodes the job got (empty: one cell,
    # memory strict on ``numa_nodes``); NIC virtual functions passed through.
    numa_cells: tuple[NumaCell, ...] = ()
    nic_vfs: tuple[str, ...] = ()

    REQUIRED = ("name", "vcpus", "memory_mib", "cpus", "numa_nodes", "gpus", "hugepages")
    OPTIONAL = ("job_id", "cgroup", "io_limits", "io_weight", "gpu_shares", "image",
                "require_kvm", "numa_cells", "nic_vfs")

    def __post_init__(self) -> None:
        # Validate also when built directly, not only through from_dict.
        ProvisionSpec.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "name": self.name,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "cpus": list(self.cpus),
            "numa_nodes": list(self.numa_nodes),
            "gpus": list(self.gpus),
            "hugepages": self.hugepages,
            "cgroup": self.cgroup.to_dict() if isinstance(self.cgroup, CgroupSettings)
            else self.cgroup,
            "io_limits": [io.to_dict() if isinstance(io, IoLimit) else io
                          for io in self.io_limits],
            "io_weight": self.io_weight,
            "gpu_shares": [g.to_dict() if isinstance(g, GpuShare) else g
                           for g in self.gpu_shares],
            "image": self.image.to_dict() if isinstance(self.image, ImageSpec) else self.image,
            "require_kvm": self.require_kvm,
            "numa_cells": [c.to_dict() if isinstance(c, NumaCell) else c
                           for c in self.numa_cells],
            "nic_vfs": list(self.nic_vfs),
        }

    @classmethod
    def from_dict(cls, data: object) -> ProvisionSpec:
        d = _mapping(data, "provision spec")
        missing = [k for k in cls.REQUIRED if k not in d]
        if missing:
            raise SpecError(f"provision spec: missing required keys {missing}")
        _reject_unknown(d, {*cls.REQUIRED, *cls.OPTIONAL}, "provision spec")
        name = validate_domain_name(d["name"])
        job_id = d.get("job_id", name)
        if isinstance(job_id, bool) or not isinstance(job_id, str | int) or job_id == "":
            raise SpecError(f"job_id: expected a non-empty string or integer, got {job_id!r}")
        vcpus = _int(d, "vcpus", minimum=1, maximum=4096)
        memory_mib = _int(d, "memory_mib", minimum=1)
        cpus = _int_list(d, "cpus")
        if len(cpus) != vcpus:
            raise SpecError(f"cpus: {len(cpus)} host cores given for {vcpus} vcpus (one per vCPU)")
        numa_nodes = _int_list(d, "numa_nodes")
        if not numa_nodes:
            raise SpecError("numa_nodes: at least one NUMA node is required")
        gpus_raw = d["gpus"]
        if not isinstance(gpus_raw, list | tuple):
            raise SpecError(f"gpus: expected a list of PCI addresses, got {gpus_raw!r}")
        gpus = []
        for g in gpus_raw:
            addr = g.lower() if isinstance(g, str) else g
            if not isinstance(addr, str) or not PCI_ADDRESS_RE.match(addr):
                raise SpecError(f"gpus: {g!r} is not a PCI address like 0000:3b:00.0")
            gpus.append(addr)
        if len(set(gpus)) != len(gpus):
            raise SpecError(f"gpus: duplicate PCI addresses in {gpus}")
        hugepages = d["hugepages"]
        if not isinstance(hugepages, bool):
            raise SpecError(f"hugepages: expected true or false, got {hugepages!r}")
        if hugepages and memory_mib % 1024:
            raise SpecError(
                f"memory_mib: {memory_mib} is not a whole number of 1 GiB hugepages"
            )
        cgroup = d.get("cgroup") or {}
        cg = cgroup if isinstance(cgroup, CgroupSettings) else CgroupSettings.from_dict(cgroup)
        io_raw = d.get("io_limits") or []
        if not isinstance(io_raw, list | tuple):
            raise SpecError(f"io_limits: expected a list, got {io_raw!r}")
        io = tuple(x if isinstance(x, IoLimit) else
                   IoLimit.from_dict(x, where=f"io_limits[{i}]") for i, x in enumerate(io_raw))
        io_weight = d.get("io_weight")
        if io_weight is not None:
            io_weight = _int(d, "io_weight", minimum=1, maximum=10000)
        shares_raw = d.get("gpu_shares") or []
        if not isinstance(shares_raw, list | tuple):
            raise SpecError(f"gpu_shares: expected a list, got {shares_raw!r}")
        shares = tuple(x if isinstance(x, GpuShare) else
                       GpuShare.from_dict(x, where=f"gpu_shares[{i}]")
                       for i, x in enumerate(shares_raw))
        shared = [g.pci for g in shares]
        if set(shared) & set(gpus):
            raise SpecError(f"gpu_shares: {sorted(set(shared) & set(gpus))} are also passed "
                            "through whole: a GPU is never both")
        if len({g.mdev_uuid for g in shares}) != len(shares):
            raise SpecError("gpu_shares: duplicate mdev_uuid")
        image_raw = d.get("image")
        image = (image_raw if isinstance(image_raw, ImageSpec) or image_raw is None
                 else ImageSpec.from_dict(image_raw))
        require_kvm = d.get("require_kvm", False)
        if not isinstance(require_kvm, bool):
            raise SpecError(f"require_kvm: expected true or false, got {require_kvm!r}")
        cells_raw = d.get("numa_cells") or []
        if not isinstance(cells_raw, list | tuple):
            raise SpecError(f"numa_cells: expected a list, got {cells_raw!r}")
        cells = tuple(x if isinstance(x, NumaCell) else
                      NumaCell.from_dict(x, where=f"numa_cells[{i}]")
                      for i, x in enumerate(cells_raw))
        if cells:
            if tuple(c for cell in cells for c in cell.cpus) != cpus:
                raise SpecError("numa_cells: the cells' cpus, in order, must be the spec's cpus")
            if sum(cell.memory_mib for cell in cells) != memory_mib:
                raise SpecError(f"numa_cells: the cells' memory does not add up to "
                                f"memory_mib {memory_mib}")
            nodes = [cell.host_node for cell in cells]
            if len(set(nodes)) != len(nodes) or set(nodes) != set(numa_nodes):
                raise SpecError(f"numa_cells: host nodes {nodes} must be numa_nodes "
                                f"{sorted(numa_nodes)}, each once")
        vfs_raw = d.get("nic_vfs") or []
        if not isinstance(vfs_raw, list | tuple):
            raise SpecError(f"nic_vfs: expected a list of PCI addresses, got {vfs_raw!r}")
        vfs = []
        for v in vfs_raw:
            addr = v.lower() if isinstance(v, str) else v
            if not isinstance(addr, str) or not PCI_ADDRESS_RE.match(addr):
                raise SpecError(f"nic_vfs: {v!r} is not a PCI address like 0000:3b:00.2")
            vfs.append(addr)
        if len(set(vfs)) != len(vfs) or set(vfs) & set(gpus):
            raise SpecError(f"nic_vfs: duplicate PCI addresses in {vfs}")
        spec = object.__new__(cls)
        for key, value in {
            "job_id": str(job_id), "name": name, "vcpus": vcpus, "memory_mib": memory_mib,
            "cpus": cpus, "numa_nodes": numa_nodes, "gpus": tuple(gpus),
            "hugepages": hugepages, "cgroup": cg, "io_limits": io, "io_weight": io_weight,
            "gpu_shares": shares, "image": image, "require_kvm": require_kvm,
            "numa_cells": cells, "nic_vfs": tuple(vfs),
        }.items():
            object.__setattr__(spec, key, value)
        return spec


@dataclass(frozen=True)
class ProvisionResult:
    """What a host answers to a provision or teardown command."""

    job_id: str
    host: str
    ok: bool
    domain: str = ""
    state: str = ""
    error: str = ""
    # After a start: what the kernel holds for the VM (cgroup, affinity, policy) and
    # whether it matches the spec; see hostagent.isolation.
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "host": self.host, "ok": self.ok,
                "domain": self.domain, "state": self.state, "error": self.error,
                "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: object) -> ProvisionResult:
        d = _mapping(data, "provision result")
        ok = d.get("ok")
        if not isinstance(ok, bool):
            raise SpecError(f"ok: expected true or false, got {ok!r}")
        evidence = d.get("evidence") or {}
        if not isinstance(evidence, Mapping):
            raise SpecError(f"evidence: expected an object, got {evidence!r}")
        return cls(job_id=str(d.get("job_id", "")), host=_str(d, "host"), ok=ok,
                   domain=_str(d, "domain", ""), state=_str(d, "state", ""),
                   error=_str(d, "error", ""), evidence=dict(evidence))


@dataclass(frozen=True)
class Heartbeat:
    """Sent by every agent every few seconds; ``sent_at`` is Unix time."""

    host: str
    sent_at: float
    agent_version: str = ""
    domains: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    healthy: bool = True
    load: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "sent_at": self.sent_at, "agent_version": self.agent_version,
                "domains": list(self.domains), "gpus": list(self.gpus),
                "healthy": self.healthy, "load": dict(self.load)}

    @classmethod
    def from_dict(cls, data: object) -> Heartbeat:
        d = _mapping(data, "heartbeat")
        sent_at = d.get("sent_at")
        if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
            raise SpecError(f"sent_at: expected a Unix time, got {sent_at!r}")
        healthy = d.get("healthy", True)
        if not isinstance(healthy, bool):
            raise SpecError(f"healthy: expected true or false, got {healthy!r}")
        domains = d.get("domains", [])
        gpus = d.get("gpus", [])
        for key, seq in (("domains", domains), ("gpus", gpus)):
            if not isinstance(seq, list | tuple) or not all(isinstance(x, str) for x in seq):
                raise SpecError(f"{key}: expected a list of strings, got {seq!r}")
        load = d.get("load", {})
        if not isinstance(load, Mapping):
            raise SpecError(f"load: expected an object, got {load!r}")
        return cls(host=_str(d, "host"), sent_at=float(sent_at),
                   agent_version=_str(d, "agent_version", ""), domains=tuple(domains),
                   gpus=tuple(gpus), healthy=healthy,
                   load={str(k): float(v) for k, v in load.items()})


@dataclass(frozen=True)
class XidEvent:
    """One classified kernel-log line: an NVRM Xid, a PCIe AER or a KVM error."""

    kind: str
    line: str
    message: str = ""
    xid: int | None = None
    pci: str | None = None
    pid: int | None = None
    process: str | None = None
    timestamp: str | None = None
    fault: str = "unknown"
    name: str = ""
    action: str = ""
    host: str = ""
    cordon: bool = False

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise SpecError(f"kind: {self.kind!r} is not one of {EVENT_KINDS}")
        if self.fault not in FAULTS:
            raise SpecError(f"fault: {self.fault!r} is not one of {FAULTS}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "line": self.line, "message": self.message, "xid": self.xid,
                "pci": self.pci, "pid": self.pid, "process": self.process,
                "timestamp": self.timestamp, "fault": self.fault, "name": self.name,
                "action": self.action, "host": self.host, "cordon": self.cordon}

    @classmethod
    def from_dict(cls, data: object) -> XidEvent:
        d = _mapping(data, "xid event")
        xid = d.get("xid")
        pid = d.get("pid")
        for key, value in (("xid", xid), ("pid", pid)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SpecError(f"{key}: expected an integer or null, got {value!r}")
        return cls(kind=_str(d, "kind"), line=_str(d, "line"), message=_str(d, "message", ""),
                   xid=xid, pci=_opt_str(d, "pci"), pid=pid, process=_opt_str(d, "process"),
                   timestamp=_opt_str(d, "timestamp"), fault=_str(d, "fault", "unknown"),
                   name=_str(d, "name", ""), action=_str(d, "action", ""),
                   host=_str(d, "host", ""), cordon=bool(d.get("cordon", False)))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one host check (ids from CHECKS.md)."""

    id: str
    status: str
    risk: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remediation: str = ""
    reason: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise SpecError(f"status: {self.status!r} is not one of {CHECK_STATUSES}")
        if self.risk not in RISKS:
            raise SpecError(f"risk: {self.risk!r} is not one of {RISKS}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "risk": self.risk,
                "evidence": dict(self.evidence), "remediation": self.remediation,
                "reason": self.reason, "title": self.title}

    @classmethod
    def from_dict(cls, data: object) -> CheckResult:
        d = _mapping(data, "check result")
        evidence = d.get("evidence", {})
        if not isinstance(evidence, Mapping):
            raise SpecError(f"evidence: expected an object, got {evidence!r}")
        return cls(id=_str(d, "id"), status=_str(d, "status"), risk=_str(d, "risk"),
                   evidence=dict(evidence), remediation=_str(d, "remediation", ""),
                   reason=_str(d, "reason", ""), title=_str(d, "title", ""))
