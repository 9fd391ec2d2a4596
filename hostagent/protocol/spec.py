"""The provision spec: everything a host needs to start one job's VM (console → agent).

Parts of ``ProvisionCommand`` (``hostagent.protocol.messages``); each checks its
own rules in ``__post_init__`` (also when built in code), and every error is a
``SpecError`` naming the field. Unknown keys are refused: a typo fails loudly.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec.structs import force_setattr

from hostagent.protocol.wire import Part, SpecError

__all__ = ["FILE_NAME_RE", "IMAGE_FORMATS", "PCI_ADDRESS_RE", "SHA256_RE", "CgroupSettings",
           "GpuShare", "ImageSpec", "IoLimit", "NumaCell", "ProvisionSpec",
           "validate_domain_name"]

DOMAIN_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PCI_ADDRESS_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
MAJ_MIN_RE = re.compile(r"^\d+:\d+$")
DEV_PATH_RE = re.compile(r"^/dev/[A-Za-z0-9_./-]+$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MDEV_TYPE_RE = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
IMAGE_FORMATS = ("qcow2", "raw")
MAX_DOMAIN_NAME = 64


def validate_domain_name(name: object) -> str:
    """A libvirt domain name: ``[A-Za-z0-9_.-]``, 1 to 64 characters."""
    if not isinstance(name, str) or not DOMAIN_NAME_RE.match(name) or name in (".", ".."):
        raise SpecError(
            f"name: {name!r} is not a valid domain name "
            f"(1-{MAX_DOMAIN_NAME} characters from A-Z a-z 0-9 _ . -)"
        )
    return name


def _count(value: int, label: str, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{label}: expected an integer, got {value!r}")
    if value < minimum:
        raise SpecError(f"{label}: {value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise SpecError(f"{label}: {value} is above the maximum {maximum}")


def _distinct(values: tuple, label: str) -> None:
    if len(set(values)) != len(values):
        raise SpecError(f"{label}: duplicate entries in {list(values)}")


def _non_negative(values: tuple[int, ...], label: str) -> None:
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise SpecError(f"{label}: {item!r} is not a non-negative integer")
    _distinct(values, label)


def _pci_list(obj: Part, key: str, example: str) -> tuple[str, ...]:
    out = []
    for value in getattr(obj, key):
        addr = value.lower() if isinstance(value, str) else value
        if not isinstance(addr, str) or not PCI_ADDRESS_RE.match(addr):
            raise SpecError(f"{key}: {value!r} is not a PCI address like {example}")
        out.append(addr)
    force_setattr(obj, key, tuple(out))
    return tuple(out)


class GpuShare(Part, frozen=True, kw_only=True):
    """A time-sliced share of one GPU, given to the VM as a mediated device.

    ``milli`` is the share the scheduler allocated (1–999); ``mdev_uuid`` names
    the mediated device the agent creates on the GPU and passes through
    (``hostdev type='mdev'``); ``mdev_type`` is the vGPU profile on the host
    (empty: the agent picks the smallest profile that fits the share).
    """

    strict = True
    pci: str
    milli: int
    mdev_uuid: str
    mdev_type: str = ""

    def __post_init__(self) -> None:
        pci = self.pci.lower()
        if not PCI_ADDRESS_RE.match(pci):
            raise SpecError(f"pci: {self.pci!r} is not a PCI address like 0000:3b:00.0")
        _count(self.milli, "milli", 1, 999)
        if not UUID_RE.match(self.mdev_uuid.lower()):
            raise SpecError(f"mdev_uuid: {self.mdev_uuid!r} is not a UUID")
        if not MDEV_TYPE_RE.match(self.mdev_type):
            raise SpecError(f"mdev_type: {self.mdev_type!r} is not an mdev type name")
        force_setattr(self, "pci", pci)
        force_setattr(self, "mdev_uuid", self.mdev_uuid.lower())


class NumaCell(Part, frozen=True, kw_only=True):
    """One guest NUMA cell and the host NUMA node behind it: the vCPUs of the cell are
    pinned, in order, to ``cpus`` (host cores of ``host_node``) and its memory is bound
    to ``host_node``. A spec's cells, in order, hold its vCPUs 0..n-1 and its memory."""

    strict = True
    host_node: int
    cpus: tuple[int, ...]
    memory_mib: int

    def __post_init__(self) -> None:
        _count(self.host_node, "host_node", 0)
        _non_negative(self.cpus, "cpus")
        _count(self.memory_mib, "memory_mib", 0)
        if not self.cpus and not self.memory_mib:
            raise SpecError("numa_cells: a cell needs vCPUs or memory")


class IoLimit(Part, frozen=True, kw_only=True):
    """Bandwidth and IOPS limits of one block device; None means unlimited.

    ``device`` is ``MAJ:MIN`` for cgroup ``io.max`` (``CgroupSettings.io_max``)
    and an absolute ``/dev`` path for the domain's ``blkiotune`` (``io_limits``).
    """

    strict = True
    device: str
    rbps: int | None = None
    wbps: int | None = None
    riops: int | None = None
    wiops: int | None = None

    KEYS = ("rbps", "wbps", "riops", "wiops")

    def __post_init__(self) -> None:
        if not (MAJ_MIN_RE.match(self.device) or DEV_PATH_RE.match(self.device)):
            raise SpecError(f"device: {self.device!r} is neither MAJ:MIN (e.g. 8:16) "
                            "nor a /dev path")
        for key in self.KEYS:
            value = getattr(self, key)
            if value is not None:
                _count(value, key, 1)


class ImageSpec(Part, frozen=True, kw_only=True):
    """The boot image of a job's VM, from the console's image catalogue.

    ``disk`` (and ``kernel``/``initrd`` for direct kernel boot) are file names in
    the agent's images directory, never paths: a job cannot name a file elsewhere
    on the host.  ``sha256`` is the disk file's checksum (empty: not verified);
    the agent refuses a disk whose checksum differs.  ``cmdline`` is the kernel
    command line of a direct kernel boot (the agent adds the serial console).
    """

    strict = True
    name: str
    disk: str
    format: str = "qcow2"
    sha256: str = ""
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    min_disk_gib: int = 0

    KEYS = ("name", "disk", "format", "sha256", "kernel", "initrd", "cmdline", "min_disk_gib")

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise SpecError(f"image.name: {self.name!r} must be 1-100 characters")
        for key in ("disk", "kernel", "initrd"):
            value = getattr(self, key)
            if (value or key == "disk") and not FILE_NAME_RE.match(value):
                raise SpecError(f"image.{key}: {value!r} is not a file name in the images "
                                "directory ([A-Za-z0-9_.+-], no slashes)")
        if self.initrd and not self.kernel:
            raise SpecError("image.initrd: an initrd needs a kernel")
        if self.format not in IMAGE_FORMATS:
            raise SpecError(f"image.format: {self.format!r} is not one of {IMAGE_FORMATS}")
        sha = self.sha256.lower()
        if sha and not SHA256_RE.match(sha):
            raise SpecError(f"image.sha256: {sha!r} is not a SHA-256 hex digest")
        force_setattr(self, "sha256", sha)
        if len(self.cmdline) > 1024 or any(c in self.cmdline for c in "\n\r\0"):
            raise SpecError("image.cmdline: at most 1024 characters on one line")
        _count(self.min_disk_gib, "image.min_disk_gib", 0, 65536)


class CgroupSettings(Part, frozen=True, kw_only=True):
    """The job's cgroup v2 limits; memory in bytes, None means ``max``."""

    strict = True
    cpu_weight: int = 100
    memory_high: int | None = None
    memory_max: int | None = None
    io_max: tuple[IoLimit, ...] = ()

    def __post_init__(self) -> None:
        _count(self.cpu_weight, "cgroup.cpu_weight", 1, 10000)
        for key in ("memory_high", "memory_max"):
            if getattr(self, key) is not None:
                _count(getattr(self, key), f"cgroup.{key}", 1)
        high, hard = self.memory_high, self.memory_max
        if high is not None and hard is not None and high > hard:
            raise SpecError(f"cgroup.memory_high ({high}) is above cgroup.memory_max ({hard})")
        for i, io in enumerate(self.io_max):
            if not MAJ_MIN_RE.match(io.device):
                raise SpecError(f"cgroup.io_max[{i}].device: {io.device!r} is not MAJ:MIN "
                                "(e.g. 8:16)")


class ProvisionSpec(Part, frozen=True, kw_only=True):
    """Everything a host needs to start one job's VM; sent by the console.

    ``job_id`` defaults to ``name``; ``cpus`` holds one host core per vCPU (vCPU i
    pinned to ``cpus[i]``); ``hugepages``: 1 GiB pages back the memory (then
    ``memory_mib`` is whole GiB). ``numa_cells`` (empty: one cell, memory strict on
    ``numa_nodes``) mirror the host nodes the job got; ``image`` None: a domain
    without disk (test driver); ``require_kvm``: never QEMU's TCG emulation."""

    strict = True
    name: str
    vcpus: int
    memory_mib: int
    cpus: tuple[int, ...]
    numa_nodes: tuple[int, ...]
    gpus: tuple[str, ...]
    hugepages: bool
    job_id: str | int = ""  # text; an integer (older consoles) is read as text
    cgroup: CgroupSettings = msgspec.field(default_factory=CgroupSettings)
    io_limits: tuple[IoLimit, ...] = ()
    io_weight: int | None = None
    gpu_shares: tuple[GpuShare, ...] = ()
    image: ImageSpec | None = None
    require_kvm: bool = False
    numa_cells: tuple[NumaCell, ...] = ()
    nic_vfs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = validate_domain_name(self.name)
        if isinstance(self.job_id, bool) or not isinstance(self.job_id, str | int):
            raise SpecError(f"job_id: expected a string or integer, got {self.job_id!r}")
        force_setattr(self, "job_id", str(self.job_id) if self.job_id != "" else name)
        _count(self.vcpus, "vcpus", 1, 4096)
        _count(self.memory_mib, "memory_mib", 1)
        _non_negative(self.cpus, "cpus")
        if len(self.cpus) != self.vcpus:
            raise SpecError(f"cpus: {len(self.cpus)} host cores given for {self.vcpus} vcpus "
                            "(one per vCPU)")
        _non_negative(self.numa_nodes, "numa_nodes")
        if not self.numa_nodes:
            raise SpecError("numa_nodes: at least one NUMA node is required")
        gpus = _pci_list(self, "gpus", "0000:3b:00.0")
        _distinct(gpus, "gpus: duplicate PCI addresses")
        if self.hugepages and self.memory_mib % 1024:
            raise SpecError(f"memory_mib: {self.memory_mib} is not a whole number of 1 GiB "
                            "hugepages")
        for i, io in enumerate(self.io_limits):
            if not DEV_PATH_RE.match(io.device):
                raise SpecError(f"io_limits[{i}].device: {io.device!r} is not a /dev path")
        if self.io_weight is not None:
            _count(self.io_weight, "io_weight", 1, 10000)
        shared = {g.pci for g in self.gpu_shares}
        if shared & set(gpus):
            raise SpecError(f"gpu_shares: {sorted(shared & set(gpus))} are also passed "
                            "through whole: a GPU is never both")
        if len({g.mdev_uuid for g in self.gpu_shares}) != len(self.gpu_shares):
            raise SpecError("gpu_shares: duplicate mdev_uuid")
        cells = self.numa_cells
        if cells:
            if tuple(c for cell in cells for c in cell.cpus) != self.cpus:
                raise SpecError("numa_cells: the cells' cpus, in order, must be the spec's cpus")
            if sum(cell.memory_mib for cell in cells) != self.memory_mib:
                raise SpecError(f"numa_cells: the cells' memory does not add up to "
                                f"memory_mib {self.memory_mib}")
            nodes = [cell.host_node for cell in cells]
            if len(set(nodes)) != len(nodes) or set(nodes) != set(self.numa_nodes):
                raise SpecError(f"numa_cells: host nodes {nodes} must be numa_nodes "
                                f"{sorted(self.numa_nodes)}, each once")
        vfs = _pci_list(self, "nic_vfs", "0000:3b:00.2")
        if len(set(vfs)) != len(vfs) or set(vfs) & set(gpus):
            raise SpecError(f"nic_vfs: duplicate PCI addresses in {list(vfs)}")

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)
