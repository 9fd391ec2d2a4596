"""The one seam between the host agent and NVML (``nvidia-ml-py``, ``import pynvml``).

Plain functions returning plain values.  Any NVML failure becomes
``NvmlUnavailable`` (no library, no driver, no GPU) or ``None`` for a single
field a GPU does not support, so callers never see pynvml's exception zoo.
Tests replace this module with a fake that has the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "NvmlUnavailable",
    "device_count",
    "driver_version",
    "gpu_info",
    "init",
    "nvlink_count",
    "shutdown",
    "topology_level",
]

T = TypeVar("T")

# NVML common-ancestor levels -> nvidia-smi topo -m names.
LEVEL_NAMES = {0: "X", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this machine; the message says why."""


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable("NVML unavailable: nvidia-ml-py is not installed") from exc
    return pynvml


def _call(fn: Callable[..., T], *args: Any) -> T:
    pynvml = _pynvml()
    try:
        return fn(*args)
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML unavailable: {exc}") from exc


def _optional(fn: Callable[..., T], *args: Any) -> T | None:
    pynvml = _pynvml()
    try:
        return fn(*args)
    except (pynvml.NVMLError, AttributeError):
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def init() -> None:
    pynvml = _pynvml()
    _call(pynvml.nvmlInit)


def shutdown() -> None:
    pynvml = _pynvml()
    _optional(pynvml.nvmlShutdown)


def driver_version() -> str:
    pynvml = _pynvml()
    return _text(_call(pynvml.nvmlSystemGetDriverVersion))


def device_count() -> int:
    pynvml = _pynvml()
    return int(_call(pynvml.nvmlDeviceGetCount))


def _handle(index: int) -> Any:
    pynvml = _pynvml()
    return _call(pynvml.nvmlDeviceGetHandleByIndex, index)


def _cpus_from_masks(masks: Any, bits: int = 64) -> list[int]:
    return [w * bits + b for w, mask in enumerate(masks or []) for b in range(bits)
            if int(mask) >> b & 1]


def gpu_info(index: int) -> dict[str, Any]:
    """One GPU's identity, placement and health, as plain values (None = not reported)."""
    pynvml = _pynvml()
    h = _handle(index)
    mem = _optional(pynvml.nvmlDeviceGetMemoryInfo, h)
    pci = _optional(pynvml.nvmlDeviceGetPciInfo, h)
    ecc = _optional(pynvml.nvmlDeviceGetEccMode, h)
    remap = _optional(pynvml.nvmlDeviceGetRemappedRows, h)
    retired = _optional(pynvml.nvmlDeviceGetRetiredPagesPendingStatus, h)
    persistence = _optional(pynvml.nvmlDeviceGetPersistenceMode, h)
    return {
        "index": index,
        "uuid": _text(_call(pynvml.nvmlDeviceGetUUID, h)),
        "name": _text(_call(pynvml.nvmlDeviceGetName, h)),
        "pci_bus_id": _text(pci.busId) if pci is not None else None,
        "memory_mib": int(mem.total) // 2**20 if mem is not None else None,
        "numa_node": _optional(pynvml.nvmlDeviceGetNumaNodeId, h),
        "cpu_affinity": _cpus_from_masks(_optional(pynvml.nvmlDeviceGetCpuAffinity, h, 64)),
        "vbios_version": _optional(lambda: _text(pynvml.nvmlDeviceGetVbiosVersion(h))),
        "ecc_mode": None if ecc is None else bool(ecc[0]),
        "persistence_mode": None if persistence is None else bool(persistence),
        "retired_pages_pending": None if retired is None else bool(retired),
        # nvmlDeviceGetRemappedRows -> (corrected, uncorrected, pending, failure)
        "remapped_rows_pending": None if remap is None else bool(remap[2]),
        "remapped_rows_failure": None if remap is None else bool(remap[3]),
    }


def topology_level(a: int, b: int) -> int:
    """NVML common-ancestor level between two GPUs (0, 10, 20, 30, 40, 50)."""
    pynvml = _pynvml()
    return int(_call(pynvml.nvmlDeviceGetTopologyCommonAncestor, _handle(a), _handle(b)))


def nvlink_count(a: int, b: int) -> int:
    """Active NVLinks from GPU ``a`` whose far end is GPU ``b``."""
    pynvml = _pynvml()
    ha = _handle(a)
    pci_b = _optional(pynvml.nvmlDeviceGetPciInfo, _handle(b))
    if pci_b is None:
        return 0
    count = 0
    for link in range(int(pynvml.NVML_NVLINK_MAX_LINKS)):
        if not _optional(pynvml.nvmlDeviceGetNvLinkState, ha, link):
            continue
        remote = _optional(pynvml.nvmlDeviceGetNvLinkRemotePciInfo, ha, link)
        if remote is not None and _text(remote.busId).lower() == _text(pci_b.busId).lower():
            count += 1
    return count
