"""Mediated devices (time-sliced vGPU) through sysfs: the one seam to mdev.

A GPU share is a mediated device created on the GPU's PCI function by writing
its UUID into ``mdev_supported_types/<type>/create``, and removed by writing
``1`` into ``/sys/bus/mdev/devices/<uuid>/remove``. ``root`` lets tests (and
captured trees) stand in for ``/``.

The profile: NVIDIA's vGPU types describe themselves with ``max_instance=N``
in ``description``: a type that splits the GPU N ways gives each VM 1/N of
it. The share ``milli`` needs 1/N ≥ milli/1000, so the best type is the one
with the largest such N that still has an instance available.
"""

from __future__ import annotations

import re
from pathlib import Path

_MAX_INSTANCE = re.compile(r"max_instance=(\d+)")


class MdevError(RuntimeError):
    """An mdev operation failed; the message names the file and the value."""


def _device(root: Path, pci: str) -> Path:
    return root / "sys/bus/pci/devices" / pci


def _types(root: Path, pci: str) -> dict[str, tuple[int, int]]:
    """type name → (ways the GPU is split, instances still available)."""
    base = _device(root, pci) / "mdev_supported_types"
    found: dict[str, tuple[int, int]] = {}
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        try:
            description = (entry / "description").read_text()
            available = int((entry / "available_instances").read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        match = _MAX_INSTANCE.search(description)
        if match:
            found[entry.name] = (int(match.group(1)), available)
    return found


def pick_type(root: Path | str, pci: str, milli: int) -> str:
    """The vGPU type that gives at least ``milli``/1000 of the GPU, splitting it most."""
    root = Path(root)
    fits = [(ways, name) for name, (ways, available) in _types(root, pci).items()
            if available > 0 and ways * milli <= 1000]
    if not fits:
        raise MdevError(f"{_device(root, pci)}/mdev_supported_types: no available vGPU type "
                        f"gives {milli}/1000 of the GPU")
    return max(fits)[1]


def create(root: Path | str, pci: str, uuid: str, *, milli: int, mdev_type: str = "") -> str:
    """Create the mediated device (idempotent: an existing one is kept). Returns its type."""
    root = Path(root)
    existing = root / "sys/bus/mdev/devices" / uuid
    if existing.exists():
        return mdev_type or existing.joinpath("mdev_type").resolve().name
    mdev_type = mdev_type or pick_type(root, pci, milli)
    create_file = _device(root, pci) / "mdev_supported_types" / mdev_type / "create"
    try:
        create_file.write_text(uuid)
    except OSError as exc:
        raise MdevError(f"{create_file}: cannot write {uuid}: {exc.strerror}") from exc
    return mdev_type


def remove(root: Path | str, uuid: str) -> bool:
    """Remove the mediated device; False if it was already gone (idempotent)."""
    remove_file = Path(root) / "sys/bus/mdev/devices" / uuid / "remove"
    if not remove_file.exists():
        return False
    try:
        remove_file.write_text("1")
    except OSError as exc:
        raise MdevError(f"{remove_file}: cannot write 1: {exc.strerror}") from exc
    return True
